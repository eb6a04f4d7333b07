// Astro's session driver for the origin, chosen when the server starts rather than at build: one
// build then runs on a laptop (sessions on disk) and as replicas behind a load balancer (sessions
// in Redis, REDIS_URL). Astro bundles this module into the server build (session.driver's
// entrypoint) and calls its default export once, on the first request that touches a session.
import type { Driver } from 'unstorage';
import fsLiteDriver from 'unstorage/drivers/fs-lite';
import redisDriver from 'unstorage/drivers/redis';

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
    return redisDriver({ url, base: options.redisPrefix ?? DEFAULT_REDIS_PREFIX, maxRetriesPerRequest: 2 });
  }
  return fsLiteDriver({ base: options.base ?? '.astro/sessions' });
}
