import type { ServerOptions } from 'node:http';
import { constants as zlib } from 'node:zlib';
import fastifyCompress from '@fastify/compress';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import astroRoutes, { UNMATCHED_ROUTE } from '../routes/astro.ts';
import healthRoutes from '../routes/health.ts';
import type { LoadedBuild } from './astro/load-build.ts';
import { applyPoolPolicy, type PoolPolicy } from './astro/pool-policy.ts';
import type { Config } from './config.ts';
import { logAstroFaults } from './plugins/faults.ts';
import { clientErrorHandler, createFrameworkErrors, registerHardening } from './plugins/hardening.ts';
import { registerOverload } from './plugins/overload.ts';
import staticFiles from './plugins/static-files.ts';
import { OneLinePerRequest } from './request-log.ts';

export interface AppOptions {
  config: Config;
  build: LoadedBuild;
  /** Fastify logger options; defaults to pino at config.LOG_LEVEL. */
  logger?: FastifyServerOptions['logger'];
  /** Registered before the routes, e.g. the HTTP metrics hooks. */
  plugins?: Array<(fastify: FastifyInstance, policy: PoolPolicy) => Promise<void>>;
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

/**
 * The app factory: registers plugins and routes and never listens (src/server.ts does, tests
 * use inject() or listen on port 0). Applies the node-pool policy to the build's App.
 */
export async function buildApp({
  config,
  build,
  logger,
  plugins = [],
  requestIdPrefix,
}: AppOptions): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions(config, requestIdPrefix), logger: logger ?? { level: config.LOG_LEVEL } });
  const policy = applyPoolPolicy(build.app, config.POOL_POLICY, config.POOL_SIZE);
  logAstroFaults(build.app, fastify.log);

  const lifecycle = { ready: false, draining: false };
  fastify.decorate('lifecycle', lifecycle);
  fastify.decorate('poolPolicy', policy);
  fastify.decorateRequest('astroRoute', undefined);
  fastify.decorateRequest('astroLocals', undefined);
  fastify.decorateRequest('renderFailed', false);
  fastify.decorateRequest('routeLabel', function routeLabel(this: import('fastify').FastifyRequest) {
    return this.routeOptions.config.routeLabel ?? this.astroRoute ?? this.routeOptions.url ?? UNMATCHED_ROUTE;
  });

  for (const plugin of plugins) await plugin(fastify, policy);
  registerHardening(fastify, config);
  await registerOverload(fastify, config);
  // While draining, every response closes its connection: the client reconnects, and the
  // listener is closed by then, so it reaches another instance (see RunningOrigin.close()).
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (lifecycle.draining) reply.header('connection', 'close');
    done(null, payload);
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
  await fastify.register(staticFiles, {
    clientDir: build.clientDir,
    assetsPrefix: build.assetsPrefix,
    base: build.base,
    trailingSlash: build.trailingSlash,
    buildFormat: build.buildFormat,
    cacheControl: config.STATIC_CACHE_CONTROL,
    staticHeaders: build.staticHeaders,
  });
  await fastify.register(astroRoutes, { build, policy });
  return fastify;
}
