import { Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp } from './app.ts';
import { loadBuild } from './astro/load-build.ts';
import { answerPurgeRequests, forwardSitePurges, localPurger } from './cache/purge.ts';
import { type RedisPurgeFanOut, startRedisPurgeFanOut, withFanOut } from './cache/redis-fanout.ts';
import { configureOriginCache, type PurgeRequest, sitePurgeChannel } from './cache/store.ts';
import { answerMetricsRequests } from './cluster/metrics.ts';
import type { Config } from './config.ts';
import { registerPurgeFanOutMetrics } from './metrics/cache.ts';
import { createRegistry, startMetricsListener } from './metrics/index.ts';
import { allocationSitePretenuring, memoryReducer, nodeFlags, SEMI_SPACE_MIB, semiSpaceMiB } from './node-flags.ts';
import { appliedV8Flags } from './runtime-v8-flags.ts';

export interface RunningOrigin {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:4321 */
  url: string;
  /** e.g. http://127.0.0.1:9464/metrics; undefined when METRICS_ENABLED=false or in a cluster worker. */
  metricsUrl: string | undefined;
  /**
   * Closes the listening socket only: new connections are refused (or, in a cluster worker, no
   * longer handed to this process), while the open connections carry on as usual, keep-alive
   * included. close() does it too; a cluster primary calls this on every worker first, so that
   * no worker tells clients to reconnect while another still takes new connections.
   */
  stopAccepting(): void;
  /**
   * Graceful shutdown: readiness turns 503, the listener closes (new connections are refused),
   * requests in flight finish and every response closes its connection, idle keep-alive
   * connections are closed, then the app. Resolves { forced: true } if connections were still
   * busy after SHUTDOWN_TIMEOUT_MS and had to be cut.
   */
  close(): Promise<{ forced: boolean }>;
}

export interface StartOptions {
  logger?: FastifyServerOptions['logger'];
  /**
   * Set in a cluster worker (WORKERS > 1): the worker's slot, 0..WORKERS-1. The worker does
   * not open the metrics listener (the primary serves aggregated metrics), and its pool and
   * event-loop series carry worker="<slot>".
   */
  workerSlot?: string;
  /** Aborted before the origin listens: close what was built and reject with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Idle keep-alive connections are closed this long after draining starts (at most a quarter
 * of SHUTDOWN_TIMEOUT_MS). Closing them at once races clients that are sending a request on
 * them at that moment; a busy client gets its next response with Connection: close before
 * this, and one idle this long is not about to send.
 */
export const IDLE_GRACE_MS = 1000;

/** Loads the Astro build, builds the app and listens: one process serving one build. */
export async function startOrigin(
  config: Config,
  { logger, workerSlot, signal }: StartOptions = {},
): Promise<RunningOrigin> {
  const build = await loadBuild(config.BUILD_DIR);
  const cache = configureOriginCache({ maxBytes: config.CACHE_MAX_BYTES, debugHeader: config.CACHE_DEBUG_HEADER });
  // A worker purges when its primary says so (the primary owns POST /cache/purge and Redis),
  // and tells it of the purges the site's code makes here.
  if (workerSlot !== undefined) {
    answerPurgeRequests(cache);
    forwardSitePurges();
  }
  signal?.throwIfAborted();
  const registry = config.METRICS_ENABLED ? createRegistry() : undefined;
  const perProcess: Record<string, string> = workerSlot === undefined ? {} : { worker: workerSlot };
  const app = await buildApp({
    config,
    build,
    logger,
    metrics: registry ? { registry, perProcess } : undefined,
    requestIdPrefix: workerSlot === undefined ? undefined : `w${workerSlot}-`,
  });
  if (config.MAX_CONNECTIONS > 0) {
    // Past the limit Node closes new connections at once (a load balancer retries them on
    // another instance). Say so, at most every 10 s.
    app.server.maxConnections = config.MAX_CONNECTIONS;
    let warned = 0;
    app.server.on('drop', () => {
      if (Date.now() - warned < 10_000) return;
      warned = Date.now();
      app.log.warn(
        { maxConnections: config.MAX_CONNECTIONS },
        'connection refused: MAX_CONNECTIONS connections are open (raise it, or add workers or instances)',
      );
    });
  }
  if (signal?.aborted) {
    // Told to stop while loading: never open the port (in a cluster it may be closed already).
    await app.close();
    signal.throwIfAborted();
  }
  await app.listen({ host: config.HOST, port: config.PORT });
  // One process, one instance: its purges go to the other instances and theirs come here.
  let fanOut: RedisPurgeFanOut | undefined;
  let publishSitePurge: ((request: unknown) => void) | undefined;
  if (workerSlot === undefined) {
    const failures = registry ? registerPurgeFanOutMetrics(registry) : undefined;
    if (config.REDIS_URL) {
      const redis = startRedisPurgeFanOut({
        url: config.REDIS_URL,
        apply: (request) => cache.invalidate(request),
        log: app.log,
        onFailure: () => failures?.inc(),
      });
      publishSitePurge = (request) => void redis.publish(request as PurgeRequest);
      sitePurgeChannel.subscribe(publishSitePurge);
      fanOut = redis;
    }
  }
  let metrics: Awaited<ReturnType<typeof startMetricsListener>> | undefined;
  if (registry && workerSlot !== undefined) answerMetricsRequests(registry);
  else if (registry)
    metrics = await startMetricsListener(registry, {
      host: config.METRICS_HOST,
      port: config.METRICS_PORT,
      logger: app.log,
      purge: { token: config.CACHE_PURGE_TOKEN, purge: withFanOut(localPurger(cache), fanOut) },
    });
  // Ready means purges from the other instances reach this one (unless Redis is down at start).
  await fanOut?.subscribed;
  app.lifecycle.ready = true;
  const semiSpace = semiSpaceMiB();
  app.log.info(
    {
      poolPolicy: app.poolPolicy.name,
      poolCapacity: app.poolPolicy.capacity,
      buildDir: config.BUILD_DIR,
      worker: workerSlot,
      semiSpaceMiB: semiSpace,
      allocationSitePretenuring: allocationSitePretenuring([...nodeFlags(), ...appliedV8Flags]),
      memoryReducer: memoryReducer(),
    },
    'origin ready',
  );
  // Once, not from every worker: workers run with the flags the primary was started with.
  if (semiSpace === undefined && (workerSlot ?? '0') === '0')
    app.log.info(
      `V8's young generation is at its default size: start node with --max-semi-space-size=${SEMI_SPACE_MIB} --min-semi-space-size=${SEMI_SPACE_MIB} --no-memory-reducer (as npm start does, and the astro-fastify-origin bin by itself on Node >= 22.15 outside Windows) for 21-29 % less CPU a request under load (measured; README, "Node flags")`,
    );
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  let closing: Promise<{ forced: boolean }> | undefined;
  // Close the listening socket only: http.Server.close() would also drop the idle keep-alive
  // connections right now. The callback runs once every connection has ended.
  let allClosed: Promise<void> | undefined;
  const stopAccepting = () =>
    (allClosed ??= new Promise<void>((resolve) => NetServer.prototype.close.call(app.server, () => resolve())));
  return {
    app,
    url: `http://${host}:${port}`,
    metricsUrl: metrics?.url,
    stopAccepting() {
      void stopAccepting();
    },
    close() {
      closing ??= (async () => {
        const result = await drain(app, config.SHUTDOWN_TIMEOUT_MS, stopAccepting);
        await metrics?.server.close();
        if (publishSitePurge) sitePurgeChannel.unsubscribe(publishSitePurge);
        await fanOut?.close();
        return result;
      })();
      return closing;
    },
  };
}

/** The shutdown sequence of RunningOrigin.close(). */
async function drain(
  app: FastifyInstance,
  timeoutMs: number,
  stopAccepting: () => Promise<void>,
): Promise<{ forced: boolean }> {
  const started = performance.now();
  const server = app.server;
  app.lifecycle.draining = true; // /readyz answers 503; every response gets Connection: close
  // Resolves once every connection has ended.
  const allClosed = stopAccepting();
  const deadline = sleep(timeoutMs, 'timeout' as const, { ref: false });
  await Promise.race([allClosed, sleep(Math.min(IDLE_GRACE_MS, timeoutMs / 4), undefined, { ref: false })]);
  // From now on, close connections as soon as they are idle: those still busy finish their
  // response (with Connection: close, or without it if the response started before draining).
  server.closeIdleConnections();
  const reaper = setInterval(() => server.closeIdleConnections(), 100);
  const outcome = await Promise.race([allClosed.then(() => 'drained' as const), deadline]);
  clearInterval(reaper);
  const forced = outcome === 'timeout';
  if (forced) {
    app.log.warn(
      { timeoutMs },
      'shutdown: requests were still in flight after SHUTDOWN_TIMEOUT_MS; closing their connections (raise SHUTDOWN_TIMEOUT_MS if renders legitimately take this long)',
    );
    server.closeAllConnections();
  }
  await app.close();
  app.log.info({ drainMs: Math.round(performance.now() - started), forced }, 'shutdown: drained');
  await new Promise<void>((resolve) => {
    const log = app.log as { flush?: (cb: () => void) => void };
    if (typeof log.flush === 'function') log.flush(() => resolve());
    else resolve();
  });
  return { forced };
}
