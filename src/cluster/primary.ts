// WORKERS > 1: this primary process forks the workers (each a full origin: src/server.ts run
// again by node:cluster), restarts any that dies, serves the aggregated metrics on
// METRICS_PORT and drains every worker on SIGTERM/SIGINT. It serves no HTTP itself: the
// workers share the public port through node:cluster (round-robin on Linux).
//
// Why the shutdown takes two steps. Under round-robin the listening socket lives in this
// process, and node:cluster closes it only when the last worker has closed its listener; until
// then it accepts connections and queues each one for a worker. A worker that has closed its
// listener hands back what it is sent, and when the last one closes, node:cluster closes every
// connection still queued (round_robin_handle.js, remove(); one handed back after that stays
// open until this process exits): a client that had written its request there sees ECONNRESET.
// If workers drained one by one, the first one's `Connection: close` answers would send its
// clients to reconnect to a port that is still open and about to drop them (issue 14: requests
// lost in 8 SIGTERMs of 10 under 40 keep-alive clients, up to 20 each). So every worker first
// closes its listener while keeping its connections as they are; once all have said so, the
// port is closed and a reconnecting client is refused, as with one process; only then do the
// workers drain.
import cluster, { type Worker } from 'node:cluster';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { createPurgeFanOut } from '../cache/purge.ts';
import { startRedisPurgeFanOut, withFanOut } from '../cache/redis-fanout.ts';
import type { Config } from '../config.ts';
import { registerPurgeFanOutMetrics } from '../metrics/cache.ts';
import { startMetricsListener } from '../metrics/listener.ts';
import { type Asker, createAsker } from './ask.ts';
import { restartDelay } from './backoff.ts';
import { isMessage, MESSAGE, WORKER_SLOT_ENV } from './messages.ts';
import { type ClusterMetrics, createClusterMetrics } from './metrics.ts';

/** Beyond SHUTDOWN_TIMEOUT_MS (each worker's own bound), how long before workers are killed. */
export const SHUTDOWN_BACKSTOP_MS = 6000;
/** The longest the drain waits for every worker to close its listener (at most half of SHUTDOWN_TIMEOUT_MS). */
export const STOP_ACCEPTING_TIMEOUT_MS = 5000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  ready: boolean;
  startedAt: number;
  /** The delay of this slot's previous restart; undefined until it first restarts. */
  lastRestartDelayMs: number | undefined;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Keeps `count` workers running, one per slot, and stops them all. The process-level parts
 * (signals, the metrics listener, exiting) are runPrimary's.
 */
export class Supervisor {
  readonly metrics: ClusterMetrics;
  readonly #config: Config;
  readonly #log: FastifyBaseLogger;
  readonly #slots: Slot[];
  /** Called when the first workers cannot start: restarting would only loop. */
  readonly #onStartFailure: () => void;
  #everReady = false;
  #stopping: Promise<{ failed: boolean }> | undefined;
  #workerFailedShutdown = false;
  #allExited: (() => void) | undefined;
  /** Asks a worker to close its listener; the first step of stopping (see the top of this file). */
  readonly #stopAccepting: Asker<void>;
  readonly #stopAcceptingWaitMs: number;

  constructor(config: Config, count: number, log: FastifyBaseLogger, onStartFailure: () => void) {
    this.#config = config;
    this.#log = log;
    this.#onStartFailure = onStartFailure;
    this.#slots = Array.from({ length: count }, (_, index) => ({
      index,
      worker: undefined,
      ready: false,
      startedAt: 0,
      lastRestartDelayMs: undefined,
      restartTimer: undefined,
    }));
    this.metrics = createClusterMetrics(() => this.counts());
    // A worker whose event loop is stuck cannot answer, and must not hold the others' drain.
    this.#stopAcceptingWaitMs = Math.min(STOP_ACCEPTING_TIMEOUT_MS, config.SHUTDOWN_TIMEOUT_MS / 2);
    this.#stopAccepting = createAsker(this.#stopAcceptingWaitMs);
  }

  /** Forks every slot's worker. */
  start(): void {
    cluster.on('message', (worker, message) => {
      if (isMessage(message, MESSAGE.stoppedAccepting) && typeof message.id === 'number')
        this.#stopAccepting.answer(message.id, undefined);
      else this.metrics.onMessage(worker, message);
    });
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal));
    for (const slot of this.#slots) this.#fork(slot);
  }

  counts(): { ready: number; starting: number } {
    return {
      ready: this.#slots.filter((s) => s.worker && s.ready).length,
      starting: this.#slots.filter((s) => s.worker && !s.ready).length,
    };
  }

  /** Workers listening and serving: the ones asked for metrics. */
  readyWorkers(): Worker[] {
    return this.#slots.flatMap((s) => (s.worker && s.ready ? [s.worker] : []));
  }

  /**
   * Stops every worker: closes the public port first (each worker's listener), then has each
   * drain as one process does. Resolves once all have exited; `failed` when one exited with a
   * code other than 0 or had to be killed.
   */
  stop(): Promise<{ failed: boolean }> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #stopAll(): Promise<{ failed: boolean }> {
    for (const slot of this.#slots) clearTimeout(slot.restartTimer);
    const live = this.#slots.flatMap((s) => (s.worker ? [s.worker] : []));
    const allExited = new Promise<void>((resolve) => {
      this.#allExited = resolve;
      if (live.length === 0) resolve();
    });
    let killed = false;
    // Each worker bounds its own drain by SHUTDOWN_TIMEOUT_MS; this is the backstop.
    const backstop = setTimeout(() => {
      this.#log.error('workers did not exit in time; killing them');
      killed = true;
      for (const worker of live) worker.process.kill('SIGKILL');
    }, this.#config.SHUTDOWN_TIMEOUT_MS + SHUTDOWN_BACKSTOP_MS);

    this.#log.info({ workers: live.length }, 'shutting down: closing the public port');
    // Settles per worker on its answer, its exit, a closed channel or the timeout.
    const asked = await Promise.all(
      live.map((worker) => this.#stopAccepting.ask(worker, { type: MESSAGE.stopAccepting })),
    );
    if (asked.some((result) => !result.answered && result.reason === 'timeout'))
      this.#log.warn(
        { waitMs: this.#stopAcceptingWaitMs },
        'shutting down: a worker did not confirm it closed its listener in time; draining anyway (new connections may be reset)',
      );
    this.#log.info({ workers: live.length }, 'shutting down: draining every worker');
    for (const worker of live) {
      if (worker.isDead()) continue;
      worker.send({ type: MESSAGE.drain }, (err: Error | null) => {
        if (err) worker.process.kill('SIGTERM');
      });
    }
    await allExited;
    clearTimeout(backstop);
    return { failed: killed || this.#workerFailedShutdown };
  }

  #fork(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.ready = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) });
    slot.worker = worker;
    // IPC to a worker that is exiting fails asynchronously, as an 'error' event: without a
    // listener that would be an uncaught exception in the primary.
    worker.on('error', (err) =>
      this.#log.warn({ err, worker: slot.index }, 'IPC with a worker failed (it is probably exiting)'),
    );
    worker.on('message', (message: unknown) => {
      if (!isMessage(message, MESSAGE.ready)) return;
      slot.ready = true;
      this.#everReady = true;
      this.#log.info({ worker: slot.index, pid: worker.process.pid }, 'worker ready');
    });
  }

  #onExit(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.#slots.find((s) => s.worker === worker);
    if (!slot) return;
    const wasReady = slot.ready;
    slot.worker = undefined;
    slot.ready = false;
    void this.metrics.retire(worker);
    const log = this.#log;
    if (this.#stopping) {
      if (code !== 0) this.#workerFailedShutdown = true;
      log.info({ worker: slot.index, pid: worker.process.pid, code, signal }, 'worker exited');
      if (this.#slots.every((s) => !s.worker)) this.#allExited?.();
      return;
    }
    if (!wasReady && !this.#everReady) {
      // The first workers cannot start (bad build, port in use...): restarting will not help.
      // The worker printed why; stop everything and exit 1 like a single process would.
      log.fatal(
        { worker: slot.index, code, signal },
        'a worker failed to start (see its error above); stopping the primary',
      );
      this.#onStartFailure();
      return;
    }
    const uptimeMs = Date.now() - slot.startedAt;
    const delay = restartDelay(slot.lastRestartDelayMs, uptimeMs);
    slot.lastRestartDelayMs = delay;
    log.error(
      { worker: slot.index, pid: worker.process.pid, code, signal, uptimeMs, restartInMs: delay },
      'worker died; restarting it',
    );
    this.metrics.restarts.inc();
    slot.restartTimer = setTimeout(() => this.#fork(slot), delay);
  }
}

/** Runs the primary until it is told to stop; the process exits from here. */
export async function runPrimary(config: Config, count: number): Promise<void> {
  const log: FastifyBaseLogger = Fastify({ logger: { level: config.LOG_LEVEL } }).log.child({ role: 'primary' });
  let shutdown: (exitCode: number) => Promise<void> = async () => {};
  const supervisor = new Supervisor(config, count, log, () => void shutdown(1));
  // POST /cache/purge reaches every ready worker's cache before it answers; a purge made by the
  // site's code in one worker is passed on to the others. With REDIS_URL this process, not each
  // worker, passes both on to the other instances and relays theirs to every worker.
  const failures = registerPurgeFanOutMetrics(supervisor.metrics.registry);
  const redis = config.REDIS_URL
    ? startRedisPurgeFanOut({
        url: config.REDIS_URL,
        apply: async (request) => {
          const { unconfirmed } = await purges.purge(request);
          if (unconfirmed > 0)
            log.warn({ purge: request, unconfirmed }, "workers did not confirm another instance's purge in time");
        },
        log,
        onFailure: () => failures.inc(),
      })
    : undefined;
  const purges = createPurgeFanOut(() => supervisor.readyWorkers(), {
    onSitePurge: (request) => void redis?.publish(request),
  });
  cluster.on('message', (worker, message) => purges.onMessage(worker, message));
  const listener = config.METRICS_ENABLED
    ? await startMetricsListener(
        {
          contentType: supervisor.metrics.registry.contentType,
          metrics: () => supervisor.metrics.metrics(supervisor.readyWorkers()),
        },
        {
          host: config.METRICS_HOST,
          port: config.METRICS_PORT,
          logger: log,
          purge: { token: config.CACHE_PURGE_TOKEN, purge: withFanOut(purges.purge, redis) },
        },
      )
    : undefined;

  let stopping: Promise<void> | undefined;
  shutdown = (exitCode) => {
    stopping ??= (async () => {
      const { failed } = await supervisor.stop();
      await listener?.server.close();
      await redis?.close();
      const code = failed || exitCode !== 0 ? 1 : 0;
      log.info({ exitCode: code }, 'primary: every worker has exited');
      process.exit(code);
    })();
    return stopping;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void shutdown(0));

  supervisor.start();
  // The listener's own address: the port it got when METRICS_PORT=0, brackets for IPv6.
  log.info({ workers: count, metrics: listener?.url ?? 'off' }, 'primary started');
}
