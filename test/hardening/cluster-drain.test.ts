// SIGTERM under keep-alive load, WORKERS=1 and WORKERS=2 (issue 14): every request written to a
// connection the origin had accepted gets its answer; only new connections after the listener
// closed may be refused. Clients send their next request as soon as the previous answer is
// complete, so some request is always on its way when the signal lands. Before the two-step
// cluster shutdown (src/cluster/primary.ts), WORKERS=2 lost requests in 8 runs of 10 here (up
// to 20 per run): the first worker to drain sent its clients to reconnect while the primary
// still accepted connections for the second, and those were closed when the second closed its
// listener. Each setting runs DRAIN_RUNS times: 3 by default (~30 s per setting on a shared
// 2-core machine; at 8 in 10, three clean runs by chance are under 1 %), DRAIN_RUNS=10 for the
// README's figure.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { type KeepAliveResult, startKeepAliveClients } from '../helpers/keep-alive-clients.ts';
import { logLines, spawnOrigin } from '../helpers/origin.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { waitForReadyWorkers } from '../helpers/workers.ts';

const RUNS = Number(process.env.DRAIN_RUNS ?? 3);
const CLIENTS = 40;
/** A .astro page whose render awaits 24 async components (0–3 ms each): requests overlap. */
const PAGE = '/probe-astro?token=drain';

interface DrainRun extends KeepAliveResult {
  exitCode: number | null;
  exitMs: number;
}

async function sigtermUnderKeepAliveLoad(workers: number): Promise<DrainRun> {
  const origin = await spawnOrigin(
    { WORKERS: String(workers), LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0' },
    { nodeArgs: ['--experimental-async-context-frame'] },
  );
  if (workers > 1) await waitForReadyWorkers(origin, workers);
  const clients = startKeepAliveClients(origin.url, PAGE, { clients: CLIENTS });
  try {
    // Steady keep-alive traffic: every client has its connection and has been answered (a
    // loaded origin can take seconds to answer the last of 40 first requests).
    await waitFor('every client to be answered', 20_000, () => clients.served() === CLIENTS, 50);
    await sleep(300);
  } catch (err) {
    origin.child.kill('SIGKILL');
    throw err;
  }
  const exited = once(origin.child, 'exit');
  const signalled = performance.now();
  clients.mark();
  origin.child.kill('SIGTERM');
  const [exitCode] = (await exited) as [number | null];
  const exitMs = Math.round(performance.now() - signalled);
  const result = await clients.stop();
  return { ...result, exitCode, exitMs };
}

for (const workers of [1, 2]) {
  describe(`WORKERS=${workers}, SIGTERM under ${CLIENTS} keep-alive clients`, () => {
    test(`${RUNS} runs: every request written to an accepted connection is answered, exit 0`, {
      timeout: RUNS * 40_000,
    }, async () => {
      const line = (r: DrainRun) =>
        `sent ${r.sent}, answered ${JSON.stringify(r.byStatus)} (${r.connectionClose} with Connection: close), ` +
        `refused ${r.refused}, failed ${r.failures.length}, exit ${r.exitCode} after ${r.exitMs} ms`;
      const runs: DrainRun[] = [];
      for (let i = 0; i < RUNS; i++) {
        runs.push(await sigtermUnderKeepAliveLoad(workers));
        console.log(`# WORKERS=${workers} run ${i + 1}: ${line(runs[i])}`);
      }
      const failedPerRun = runs.map((r) => r.failures.length);
      console.log(`# WORKERS=${workers}: requests failed per run: ${failedPerRun.join(', ')}`);
      for (const [i, r] of runs.entries()) {
        const detail = `run ${i + 1}: ${line(r)}; failures ${JSON.stringify(r.failures.slice(0, 10))}`;
        assert.equal(r.failures.length, 0, `no request written to an accepted connection fails: ${detail}`);
        assert.equal(r.exitCode, 0, `exit 0: ${detail}`);
        assert.deepEqual(Object.keys(r.byStatus), ['200'], `only 200s: ${detail}`);
        // The drain was exercised: answers told their clients to reconnect, and reconnecting
        // clients found the listener closed.
        assert.ok(r.connectionClose > 0, `some answers carried Connection: close: ${detail}`);
        assert.ok(r.refused > 0, `new connections were refused after the signal: ${detail}`);
      }
    });
  });
}

test('WORKERS=2, one worker stopped under keep-alive load: its clients move to the other, none fails, it comes back', {
  timeout: 90_000,
}, async () => {
  const origin = await spawnOrigin(
    { WORKERS: '2', LOG_LEVEL: 'info', MAX_EVENT_LOOP_DELAY_MS: '0' },
    { nodeArgs: ['--experimental-async-context-frame'] },
  );
  const ready = () => logLines(origin.output()).filter((l) => l.msg === 'worker ready');
  try {
    await waitFor('two ready workers', 20_000, () => ready().length === 2);
    const victim = ready().find((l) => l.worker === 0)?.pid as number;
    const clients = startKeepAliveClients(origin.url, PAGE, { clients: CLIENTS });
    await waitFor('every client to be answered', 20_000, () => clients.served() === CLIENTS, 50);
    clients.mark();
    // As an uncaught exception or an operator would: the worker drains by itself and exits.
    process.kill(victim, 'SIGTERM');
    await waitFor('slot 0 to be ready again', 20_000, () => ready().length === 3);
    const answeredBefore = clients.answered();
    await waitFor('traffic to go on', 20_000, () => clients.answered() > answeredBefore + 100, 50);
    const r = await clients.stop();
    const detail = `${JSON.stringify({ ...r, failures: r.failures.slice(0, 10) })}`;
    console.log(
      `# one worker stopped: sent ${r.sent}, answered ${JSON.stringify(r.byStatus)} (${r.connectionClose} with Connection: close), refused ${r.refused}, failed ${r.failures.length}`,
    );
    assert.equal(r.failures.length, 0, `no request written to an accepted connection fails: ${detail}`);
    assert.deepEqual(Object.keys(r.byStatus), ['200'], `only 200s: ${detail}`);
    assert.ok(r.connectionClose > 0, `the stopped worker told its clients to reconnect: ${detail}`);
    assert.equal(r.refused, 0, `the port stayed open: ${detail}`);
    const exit = logLines(origin.output()).find((l) => l.msg === 'worker died; restarting it');
    assert.equal(exit?.code, 0, 'the worker drained and exited 0');
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});
