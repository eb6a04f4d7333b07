// The worker's side of WORKERS > 1: a full origin (src/server.ts run again by node:cluster) that
// listens to its primary from the first moment, says when it is ready, and stops in the two
// steps the primary asks for (see primary.ts): stop accepting, then drain.
import cluster from 'node:cluster';
import type { RunningOrigin, StartOptions } from '../standalone.ts';
import { isMessage, MESSAGE, WORKER_SLOT_ENV } from './messages.ts';

/** What the worker runs: start the origin, and hand back how to drain it and exit. */
export type Serve = (options: StartOptions) => Promise<{ origin: RunningOrigin; drain: () => void }>;

/** In a worker: serves until the primary (or a signal, or the primary's death) stops it. */
export async function runWorker(serve: Serve): Promise<void> {
  const workerSlot = process.env[WORKER_SLOT_ENV] ?? String(cluster.worker?.id);
  let origin: RunningOrigin | undefined;
  let drain: (() => void) | undefined;
  let stopAcceptingAsked = false;
  // The id of the primary's question, echoed in the answer (src/cluster/ask.ts).
  let stopAcceptingId: number | undefined;
  let drainAsked = false;
  // Told to stop before listening: startOrigin gives up instead of opening the port.
  const startUp = new AbortController();

  const stopAccepting = () => {
    if (!origin) return;
    origin.stopAccepting();
    // node:cluster sent its own "close" for our listener synchronously above, on the same
    // channel: when the primary reads this answer, it has already taken us off the port.
    process.send?.({ type: MESSAGE.stoppedAccepting, id: stopAcceptingId });
  };
  const askDrain = () => {
    drainAsked = true;
    startUp.abort();
    drain?.();
  };
  // The primary asks over IPC rather than with a signal: on Ctrl-C the terminal signals every
  // process of the group too, and close-with-grace treats a second signal as "exit 1 now".
  process.on('message', (message: unknown) => {
    if (isMessage(message, MESSAGE.stopAccepting)) {
      stopAcceptingAsked = true;
      stopAcceptingId = message.id;
      startUp.abort();
      stopAccepting();
    } else if (isMessage(message, MESSAGE.drain)) askDrain();
  });
  // The primary is gone (killed): nobody will restart us or route to us; drain and exit.
  process.once('disconnect', askDrain);

  try {
    ({ origin, drain } = await serve({ workerSlot, signal: startUp.signal }));
  } catch (err) {
    if (!startUp.signal.aborted) throw err;
    // Stopped while loading the build: it never listened, nothing to drain.
    if (!stopAcceptingAsked || !process.send) process.exit(0);
    process.send({ type: MESSAGE.stoppedAccepting, id: stopAcceptingId }, () => process.exit(0));
    return;
  }
  if (stopAcceptingAsked) stopAccepting();
  if (drainAsked) drain();
  else if (!stopAcceptingAsked) process.send?.({ type: MESSAGE.ready });
}
