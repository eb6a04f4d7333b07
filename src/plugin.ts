// The origin as a Fastify plugin: an Astro build served by the app it is registered in, beside
// the app's own routes and hooks. `buildApp` (src/app.ts) is Fastify + this + the production
// plugins; a user's own server registers just this.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import astroRoutes from '../routes/astro.ts';
import { memoizePageModules } from './astro/astro-internals.ts';
import { logAstroFaults } from './astro/faults.ts';
import { type LoadedBuild, loadBuild } from './astro/load-build.ts';
import { applyPoolPolicy, type PoolPolicy } from './astro/pool-policy.ts';
import {
  createRenderTurns,
  DEFAULT_RENDER_SLICE_MS,
  DEFAULT_RENDER_TURNS_AFTER_ACCEPT_MS,
  type RenderTurns,
} from './astro/render-turns.ts';
import { POOL_POLICIES, type PoolPolicyName } from './config.ts';
import { PluginOptionsError } from './errors.ts';
import staticFiles from './plugins/static-files.ts';
import { decorateRouteLabel } from './route-label.ts';

export const PLUGIN_NAME = 'astro-fastify-origin';
export const DEFAULT_POOL_POLICY: PoolPolicyName = 'off';
export const DEFAULT_POOL_SIZE = 1000;

export interface AstroOriginOptions {
  /** The directory `astro build` wrote with the astro-fastify-origin adapter (holds server/entry.mjs). */
  buildDir?: string;
  /** A build already loaded with loadBuild(); instead of buildDir. */
  build?: LoadedBuild;
  /** Queue-node pool policy: 'off' (default), 'per-request' or 'shared'. */
  poolPolicy?: PoolPolicyName;
  /** Nodes a pool may keep ('shared': process-wide; 'per-request': per request). Default 1000. */
  poolSize?: number;
  /** Cache-Control of public/ files and prerendered pages (hashed assets stay immutable). */
  staticCacheControl?: string;
  /**
   * Milliseconds of rendering one event-loop turn may start before later renders wait (in
   * arrival order) for a later turn, so a busy origin keeps accepting connections. 0: no limit.
   * Default 5.
   */
  renderSliceMs?: number;
  /**
   * Milliseconds render turns apply after the server accepts a connection (turns are for taking
   * new connections in, and cost CPU under a steady load). 0: always. Default 1000.
   */
  renderTurnsAfterAcceptMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The node-pool policy in force: the one way its users (metrics, logs) reach it. */
    poolPolicy: PoolPolicy;
    /** The Astro build being served. */
    astroBuild: LoadedBuild;
    /** Where renders wait for a turn of the event loop; the overload plugin reads how long. */
    renderTurns: RenderTurns;
  }
  interface FastifyRequest {
    /** Extra Astro.locals for this request; a hook of the app may set them before the catch-all runs. */
    astroLocals: Record<string, unknown> | undefined;
    /** The body failed after the response had started (it was cut): a 500, not a client abort. */
    renderFailed: boolean;
  }
}

/** An optional option of milliseconds: unset, or a number from 0 to `max`. */
const isMsUpTo = (value: unknown, max: number) =>
  value === undefined || (typeof value === 'number' && value >= 0 && value <= max);

function checkOptions(options: AstroOriginOptions): void {
  if ((options.build === undefined) === (options.buildDir === undefined))
    throw new PluginOptionsError('pass exactly one of `buildDir` (the directory astro build wrote) and `build`');
  if (options.buildDir !== undefined && (typeof options.buildDir !== 'string' || options.buildDir === ''))
    throw new PluginOptionsError('`buildDir` must be a non-empty path');
  if (options.poolPolicy !== undefined && !POOL_POLICIES.includes(options.poolPolicy))
    throw new PluginOptionsError(`\`poolPolicy\` must be one of ${POOL_POLICIES.join(', ')}`);
  const size = options.poolSize;
  if (size !== undefined && !(Number.isInteger(size) && size >= 0 && size <= 1_000_000))
    throw new PluginOptionsError('`poolSize` must be an integer from 0 to 1000000');
  const cache = options.staticCacheControl;
  if (cache !== undefined && (typeof cache !== 'string' || cache === ''))
    throw new PluginOptionsError('`staticCacheControl` must be a non-empty Cache-Control value');
  if (!isMsUpTo(options.renderSliceMs, 60_000))
    throw new PluginOptionsError('`renderSliceMs` must be a number of milliseconds from 0 (no limit) to 60000');
  if (!isMsUpTo(options.renderTurnsAfterAcceptMs, 3_600_000))
    throw new PluginOptionsError(
      '`renderTurnsAfterAcceptMs` must be a number of milliseconds from 0 (turns always) to 3600000',
    );
}

const astroOriginPlugin: FastifyPluginAsync<AstroOriginOptions> = async (fastify, options) => {
  checkOptions(options);
  const build = options.build ?? (await loadBuild(options.buildDir as string));
  const policy = applyPoolPolicy(
    build.app,
    options.poolPolicy ?? DEFAULT_POOL_POLICY,
    options.poolSize ?? DEFAULT_POOL_SIZE,
  );
  // Astro re-imports the page's module on every render; once is enough (astro-internals.ts).
  memoizePageModules(build.app);
  logAstroFaults(build.app, fastify.log);
  fastify.decorate('poolPolicy', policy);
  fastify.decorate('astroBuild', build);
  const turns = createRenderTurns(
    options.renderSliceMs ?? DEFAULT_RENDER_SLICE_MS,
    options.renderTurnsAfterAcceptMs ?? DEFAULT_RENDER_TURNS_AFTER_ACCEPT_MS,
  );
  // The app's server, whoever made it (buildApp, a user's app, a serverFactory).
  fastify.server.on('connection', () => turns.connectionAccepted());
  fastify.decorate('renderTurns', turns);
  fastify.decorateRequest('astroLocals', undefined);
  fastify.decorateRequest('renderFailed', false);
  decorateRouteLabel(fastify);
  // One encapsulated scope: the catch-all's content-type parsers and the static files' hook
  // (which sits in front of the catch-all only) stay there, and the app's own routes win over
  // the catch-all.
  await fastify.register(async (scope) => {
    await scope.register(staticFiles, {
      clientDir: build.clientDir,
      assetsPrefix: build.assetsPrefix,
      base: build.base,
      trailingSlash: build.trailingSlash,
      buildFormat: build.buildFormat,
      cacheControl: options.staticCacheControl,
      staticHeaders: build.staticHeaders,
    });
    await scope.register(astroRoutes, { build });
  });
};

/**
 * `fastify.register(astroOrigin, { buildDir: 'dist' })`: static files of the build, then every
 * other path for GET/HEAD/POST/PUT/PATCH/DELETE/OPTIONS rendered by Astro. Decorates the app
 * with `poolPolicy`, `astroBuild` and `renderTurns`.
 */
export const astroOrigin = fp(astroOriginPlugin, { name: PLUGIN_NAME, fastify: '5.x' });
export default astroOrigin;
