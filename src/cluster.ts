// WORKERS > 1: this primary process forks the workers (each a full origin: src/server.ts run
// again by node:cluster), restarts any that dies, serves the aggregated metrics on
// METRICS_PORT and drains every worker on SIGTERM/SIGINT. It serves no HTTP itself: the
// workers share the public port through node:cluster (round-robin on Linux).
import cluster, { type Worker } from 'node:cluster';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { createPurgeFanOut } from './cache/purge.ts';
import type { Config } from './config.ts';
import { createClusterMetrics } from './metrics/cluster.ts';
import { startMetricsListener } from './metrics/listener.ts';

/** Worker → primary: listening and ready for traffic. */
export const WORKER_READY_MESSAGE = 'astro-fastify-origin:ready';
/** Primary → worker: drain and exit. */
export const SHUTDOWN_MESSAGE = 'astro-fastify-origin:shutdown';
/** The worker's slot (0..WORKERS-1), stable across restarts: its metrics label `worker`. */
export const WORKER_SLOT_ENV = 'ORIGIN_WORKER_SLOT';

/** Restart backoff: the first restart after this, doubling up to MAX, back to MIN after STABLE of uptime. */
export const RESTART_BACKOFF = { minMs: 100, maxMs: 10_000, stableMs: 60_000 } as const;

interface Slot {
  index: number;
  worker: Worker | undefined;
  ready: boolean;
  startedAt: number;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** Runs the primary until it is told to stop; the process exits from here. */
export async function runPrimary(config: Config, count: number): Promise<void> {
  const log: FastifyBaseLogger = Fastify({ logger: { level: config.LOG_LEVEL } }).log.child({ role: 'primary' });
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    worker: undefined,
    ready: false,
    startedAt: 0,
    backoffMs: RESTART_BACKOFF.minMs,
    restartTimer: undefined,
  }));
  let everReady = false;
  let shuttingDown = false;

  const metrics = createClusterMetrics(() => ({
    ready: slots.filter((s) => s.worker && s.ready).length,
    starting: slots.filter((s) => s.worker && !s.ready).length,
  }));
  cluster.on('message', (worker, message) => metrics.onMessage(worker, message));
  // POST /cache/purge reaches every ready worker's cache before it answers; a purge made by the
  // site's code in one worker is passed on to the others.
  const purges = createPurgeFanOut(() => slots.flatMap((s) => (s.worker && s.ready ? [s.worker] : [])));
  cluster.on('message', (worker, message) => purges.onMessage(worker, message));

  const fork = (slot: Slot) => {
    slot.restartTimer = undefined;
    slot.ready = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) });
    slot.worker = worker;
    // IPC to a worker that is exiting fails asynchronously, as an 'error' event: without a
    // listener that would be an uncaught exception in the primary.
    worker.on('error', (err) =>
      log.warn({ err, worker: slot.index }, 'IPC with a worker failed (it is probably exiting)'),
    );
    worker.on('message', (message: { type?: string }) => {
      if (message?.type !== WORKER_READY_MESSAGE) return;
      slot.ready = true;
      everReady = true;
      log.info({ worker: slot.index, pid: worker.process.pid }, 'worker ready');
    });
  };

  let onAllExited: (() => void) | undefined;
  let workerFailedShutdown = false;
  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.find((s) => s.worker === worker);
    if (!slot) return;
    const wasReady = slot.ready;
    slot.worker = undefined;
    slot.ready = false;
    void metrics.retire(worker);
    if (shuttingDown) {
      if (code !== 0) workerFailedShutdown = true;
      log.info({ worker: slot.index, pid: worker.process.pid, code, signal }, 'worker exited');
      if (slots.every((s) => !s.worker)) onAllExited?.();
      return;
    }
    if (!wasReady && !everReady) {
      // The first workers cannot start (bad build, port in use...): restarting will not help.
      // The worker printed why; stop everything and exit 1 like a single process would.
      log.fatal(
        { worker: slot.index, code, signal },
        'a worker failed to start (see its error above); stopping the primary',
      );
      void shutdown(1);
      return;
    }
    const uptime = Date.now() - slot.startedAt;
    if (uptime >= RESTART_BACKOFF.stableMs) slot.backoffMs = RESTART_BACKOFF.minMs;
    const delay = slot.backoffMs;
    slot.backoffMs = Math.min(slot.backoffMs * 2, RESTART_BACKOFF.maxMs);
    log.error(
      { worker: slot.index, pid: worker.process.pid, code, signal, uptimeMs: uptime, restartInMs: delay },
      'worker died; restarting it',
    );
    metrics.restarts.inc();
    slot.restartTimer = setTimeout(() => fork(slot), delay);
  });

  const listener = config.METRICS_ENABLED
    ? await startMetricsListener(
        {
          contentType: metrics.registry.contentType,
          metrics: () => metrics.metrics(slots.flatMap((s) => (s.worker && s.ready ? [s.worker] : []))),
        },
        {
          host: config.METRICS_HOST,
          port: config.METRICS_PORT,
          logger: log,
          purge: {
            token: config.CACHE_PURGE_TOKEN,
            purge: purges.purge,
          },
        },
      )
    : undefined;

  let stopping: Promise<void> | undefined;
  const shutdown = (exitCode: number) => {
    stopping ??= (async () => {
      shuttingDown = true;
      for (const slot of slots) clearTimeout(slot.restartTimer);
      const live = slots.flatMap((s) => (s.worker ? [s.worker] : []));
      log.info({ workers: live.length }, 'shutting down: draining every worker');
      const allExited = new Promise<void>((resolve) => {
        onAllExited = resolve;
        if (live.length === 0) resolve();
      });
      let failed = exitCode !== 0;
      for (const worker of live) {
        worker.send({ type: SHUTDOWN_MESSAGE }, (err: Error | null) => {
          if (err) worker.process.kill('SIGTERM');
        });
      }
      // Each worker bounds its own drain by SHUTDOWN_TIMEOUT_MS; this is the backstop.
      const backstop = setTimeout(() => {
        log.error('workers did not exit in time; killing them');
        failed = true;
        for (const worker of live) worker.process.kill('SIGKILL');
      }, config.SHUTDOWN_TIMEOUT_MS + 6000);
      await allExited;
      clearTimeout(backstop);
      if (workerFailedShutdown) failed = true;
      await listener?.server.close();
      log.info({ exitCode: failed ? 1 : 0 }, 'primary: every worker has exited');
      process.exit(failed ? 1 : 0);
    })();
    return stopping;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void shutdown(0));

  for (const slot of slots) fork(slot);
  log.info(
    { workers: count, metrics: listener ? `http://${config.METRICS_HOST}:${config.METRICS_PORT}/metrics` : 'off' },
    'primary started',
  );
}
