// The app factory: Fastify with the production plugins and the origin plugin, composed here
// and nowhere else. It never listens (src/standalone.ts does; tests use inject() or port 0).
import type { ServerOptions } from 'node:http';
import { constants as zlib } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import healthRoutes from '../routes/health.ts';
import type { LoadedBuild } from './astro/load-build.ts';
import type { Config } from './config.ts';
import { type OriginMetricsOptions, originMetrics } from './metrics/index.ts';
import { astroOrigin } from './plugin.ts';
import { clientErrorHandler, createFrameworkErrors, hardening } from './plugins/hardening.ts';
import { lifecycle } from './plugins/lifecycle.ts';
import { overload } from './plugins/overload.ts';
import { logDestination, OneLinePerRequest } from './request-log.ts';

export interface AppOptions {
  config: Config;
  build: LoadedBuild;
  /** Fastify logger options; defaults to pino at config.LOG_LEVEL, to stdout in batches (logDestination()). */
  logger?: FastifyServerOptions['logger'];
  /** Metrics on this registry (off when undefined). */
  metrics?: OriginMetricsOptions;
  /** Prefix of generated request ids ("req-" by default); cluster workers use "w<slot>-" so ids stay unique. */
  requestIdPrefix?: string;
}

const REQUEST_ID = /^[\x21-\x7e]+$/;

/** Fastify server options that come from the configuration (timeouts, limits). */
export function serverOptions(
  config: Config,
  requestIdPrefix = 'req-',
): FastifyServerOptions & { http: ServerOptions } {
  const logController = new OneLinePerRequest();
  let nextId = 0;
  return {
    bodyLimit: config.BODY_LIMIT_BYTES,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    // Passed to http.createServer. Node checks headersTimeout only every
    // connectionsCheckingInterval (30 s by default): check every second so a client that
    // never finishes its request head is dropped close to HEADERS_TIMEOUT_MS.
    http: {
      headersTimeout: config.HEADERS_TIMEOUT_MS,
      maxHeaderSize: config.MAX_HEADER_BYTES,
      connectionsCheckingInterval: 1000,
      // Node answers a missing Host with a bare 400 and keeps the first of duplicate Host
      // headers; the hardening hook answers both with a message instead.
      requireHostHeader: false,
      joinDuplicateHeaders: true,
    },
    maxRequestsPerSocket: 0,
    // Draining is ours (src/standalone.ts): requests that arrive on open connections while
    // draining are served, with Connection: close, instead of Fastify's 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    clientErrorHandler,
    frameworkErrors: createFrameworkErrors(logController),
    logController,
    // X-Request-Id from the CDN or load balancer when it looks like an id (printable, at most
    // 128 characters); anything else is replaced, so a client cannot put 16 KB into every log line.
    requestIdHeader: false,
    genReqId(request) {
      const given = request.headers['x-request-id'];
      if (typeof given === 'string' && given.length <= 128 && REQUEST_ID.test(given)) return given;
      return requestIdPrefix + (++nextId).toString(36);
    },
    trustProxy: false,
  };
}

/** The production origin: hardening, load shedding, metrics, compression, health, then the origin plugin. */
export async function buildApp({
  config,
  build,
  logger,
  metrics,
  requestIdPrefix,
}: AppOptions): Promise<FastifyInstance> {
  const fastify = Fastify({
    ...serverOptions(config, requestIdPrefix),
    logger: logger ?? { level: config.LOG_LEVEL, stream: logDestination() },
  });
  await fastify.register(lifecycle);
  // Metrics first: their hooks must see every route, the origin's included.
  if (metrics) await fastify.register(originMetrics, metrics);
  await fastify.register(hardening, {
    maxUrlBytes: config.MAX_URL_BYTES,
    maxHeadersCount: config.MAX_HEADERS_COUNT,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
  });
  await fastify.register(overload, {
    maxEventLoopDelayMs: config.MAX_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.MAX_EVENT_LOOP_UTILIZATION,
    maxHeapUsedBytes: config.MAX_HEAP_USED_BYTES,
    maxRssBytes: config.MAX_RSS_BYTES,
    retryAfterSeconds: config.OVERLOAD_RETRY_AFTER_SECONDS,
  });
  await fastify.register(fastifyCompress, {
    global: true,
    threshold: config.COMPRESS_THRESHOLD_BYTES,
    encodings: ['br', 'gzip'],
    // Quality 11 (zlib's default) costs ~10x the CPU of 4 for a few % on HTML rendered per
    // request; CDNs use 4-5 for dynamic responses too.
    brotliOptions: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 }, flush: zlib.BROTLI_OPERATION_FLUSH },
    // Flush after each write: a streamed page (or an endpoint's stream) reaches the client as
    // it renders instead of waiting in the compressor. Whole bodies are one write anyway.
    zlibOptions: { flush: zlib.Z_SYNC_FLUSH },
  });
  await fastify.register(healthRoutes);
  await fastify.register(astroOrigin, {
    build,
    poolPolicy: config.POOL_POLICY,
    poolSize: config.POOL_SIZE,
    renderSliceMs: config.RENDER_SLICE_MS,
    renderTurnsAfterAcceptMs: config.RENDER_TURNS_AFTER_ACCEPT_MS,
    staticCacheControl: config.STATIC_CACHE_CONTROL,
  });
  return fastify;
}

// The production plugins, for apps that compose their own server around the origin plugin.
export { createRegistry, originMetrics, startMetricsListener } from './metrics/index.ts';
export { astroOrigin } from './plugin.ts';
export { hardening } from './plugins/hardening.ts';
export { lifecycle } from './plugins/lifecycle.ts';
export { overload } from './plugins/overload.ts';
