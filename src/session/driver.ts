// Astro's session driver for the origin, chosen when the server starts rather than at build: one
// build then runs on a laptop (sessions on disk) and as replicas behind a load balancer (sessions
// in Redis, REDIS_URL). Astro bundles this module into the server build (session.driver's
// entrypoint) and calls its default export once, on the first request that touches a session.
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Driver } from 'unstorage';
import fsLiteDriver from 'unstorage/drivers/fs-lite';
import type redisDriverType from 'unstorage/drivers/redis';

/**
 * unstorage's Redis driver, and with it ioredis, loaded only when REDIS_URL asks for it: loaded,
 * their modules stay in the heap for the life of the process (~2 MiB after a full GC), which every
 * major GC marks again. Astro loads this module on the first request that renders a page, so a
 * static import put them in every origin. Loaded synchronously (unstorage's CommonJS build of the
 * same driver), as Astro calls the default export synchronously.
 */
function loadRedisDriver(): typeof redisDriverType {
  // Its CommonJS build exports the driver factory itself.
  const loaded = createRequire(import.meta.url)('unstorage/drivers/redis') as
    | typeof redisDriverType
    | { default: typeof redisDriverType };
  return typeof loaded === 'function' ? loaded : loaded.default;
}

/** The build-time options the adapter passes (session.driver.config). */
export interface SessionDriverOptions {
  /** The fs-lite directory used without REDIS_URL (the adapter: <cacheDir>/sessions). */
  base?: string;
  /** Key prefix in Redis, so the sessions of several sites can share one Redis. */
  redisPrefix?: string;
}

/** Keys are `<prefix>:<session id>`; Astro sets each key's TTL from `session.ttl`. */
export const DEFAULT_REDIS_PREFIX = 'astro-session';

/** Redis when REDIS_URL is set in the server's environment, otherwise files under `base`. */
export default function sessionDriver(options: SessionDriverOptions = {}, env = process.env): Driver {
  const url = env.REDIS_URL;
  if (url) {
    // A Redis that is down fails the request that reads the session (Astro answers 500) rather
    // than hanging it: ioredis would queue commands while it reconnects, for ever by default.
    const driver = loadRedisDriver()({
      url,
      base: options.redisPrefix ?? DEFAULT_REDIS_PREFIX,
      maxRetriesPerRequest: 2,
      lazyConnect: true, // created here to listen for errors; connected by the first command
    });
    reportOutages(driver.getInstance?.() as EventEmitter | undefined, url);
    return driver;
  }
  return fsLiteDriver({ base: options.base ?? '.astro/sessions' });
}

/**
 * One line when Redis becomes unreachable and one when it is back. Without an 'error' listener
 * ioredis prints a stack trace on every reconnect attempt, several a second.
 */
function reportOutages(client: EventEmitter | undefined, url: string): void {
  if (!client) return;
  const where = new URL(url);
  if (where.password) where.password = '***';
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    console.error(
      `astro-fastify-origin: Redis at ${where} is unreachable (${err.message}); requests that use a session fail until it is back (check REDIS_URL and the server)`,
    );
  });
  client.on('ready', () => {
    if (down) console.error(`astro-fastify-origin: Redis at ${where} is reachable again`);
    down = false;
  });
}
