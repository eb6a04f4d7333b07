// Origin-cache purges across instances. With REDIS_URL, the purges made on an instance
// (POST /cache/purge, the site's cache.invalidate()) are published on one Redis pub/sub channel,
// and the purges the other instances publish there are carried out here. The process that owns
// the instance's purges holds the two connections (a subscriber cannot publish): the single
// process, or under WORKERS > 1 the primary, which relays to its workers over IPC. Workers never
// connect, so each purge is published once per instance, not once per worker.
//
// Best effort, like the rest of pub/sub: a purge published while an instance is disconnected
// never reaches it (it keeps its copies until they expire); the publishing instance reports it
// (`fanout: 'failed'`, origin_cache_purge_fanout_failures_total) when Redis refused the message.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import type { FanOutStatus, Purger } from './purge.ts';
import type { PurgeRequest } from './store.ts';

/**
 * The channel is `<prefix>:<database>`. Redis pub/sub ignores the database number, but sites
 * sharing one Redis tell their sessions apart by it (REDIS_URL redis://host:6379/<n>; the session
 * keys' prefix is the same for every site): the channel follows, so one site's purges do not
 * empty another's cache.
 */
export const PURGE_CHANNEL_PREFIX = 'astro-origin:cache-purge';
/** Bounds a publish (Redis reachable but not answering): the endpoint answers within this. */
export const PUBLISH_TIMEOUT_MS = 2000;
/** Reconnection delays grow to this, and reconnecting goes on until Redis is back. */
export const RECONNECT_MAX_DELAY_MS = 2000;
/** How long start-up waits for the subscription before the instance reports ready anyway. */
export const SUBSCRIBE_WAIT_MS = 2000;

export const purgeChannel = (db = 0): string => `${PURGE_CHANNEL_PREFIX}:${db}`;

/** What goes over the channel: the purge and who made it (an instance skips its own). */
export interface PurgeMessage {
  from: string;
  request: PurgeRequest;
}

const strings = (value: unknown, valid: (s: string) => boolean) =>
  value === undefined || (Array.isArray(value) && value.every((s) => typeof s === 'string' && valid(s)));

/** The message in `text`, or undefined when it is not one (not JSON, missing or wrong fields, nothing to purge). */
export function parsePurgeMessage(text: string): PurgeMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { from, request } = (value ?? {}) as { from?: unknown; request?: { tags?: unknown; paths?: unknown } };
  if (typeof from !== 'string' || from === '' || typeof request !== 'object' || request === null) return undefined;
  const { tags, paths } = request;
  if (!strings(tags, (t) => t !== '') || !strings(paths, (p) => p.startsWith('/'))) return undefined;
  const clean: PurgeRequest = {};
  if ((tags as string[] | undefined)?.length) clean.tags = tags as string[];
  if ((paths as string[] | undefined)?.length) clean.paths = paths as string[];
  return clean.tags || clean.paths ? { from, request: clean } : undefined;
}

export interface RedisPurgeFanOutOptions {
  /** REDIS_URL: redis://[user:password@]host:port[/db] or rediss://… */
  url: string;
  /** Carries out a purge another instance made: this process's cache, or every worker's. */
  apply(request: PurgeRequest): unknown;
  log: FastifyBaseLogger;
  /** A purge made here that Redis did not take (origin_cache_purge_fanout_failures_total). */
  onFailure?: () => void;
}

export interface RedisPurgeFanOut {
  /** Random per start: this instance's messages carry it. */
  readonly instanceId: string;
  readonly channel: string;
  /** Resolves once subscribed, or after SUBSCRIBE_WAIT_MS (false): Redis may be down at start. */
  readonly subscribed: Promise<boolean>;
  /** Passes on a purge already carried out here. Never rejects. */
  publish(request: PurgeRequest): Promise<FanOutStatus>;
  close(): Promise<void>;
}

/**
 * ioredis, loaded only when REDIS_URL asks for it: loaded, its modules stay in the heap for the
 * life of the process (~2 MiB after a full GC), which every major GC marks again.
 */
const loadRedis = (): typeof RedisClient =>
  (createRequire(import.meta.url)('ioredis') as typeof import('ioredis')).Redis;

/** Opens the two connections (in the background) and subscribes. */
export function startRedisPurgeFanOut({ url, apply, log, onFailure }: RedisPurgeFanOutOptions): RedisPurgeFanOut {
  if (!/^rediss?:\/\/./.test(url))
    throw new TypeError(`the Redis URL must be redis://host:port[/db] or rediss://…, not ${JSON.stringify(url)}`);
  if (typeof apply !== 'function') throw new TypeError('apply must be a function that carries out a purge');
  const instanceId = randomUUID();
  const options: RedisOptions = {
    lazyConnect: true, // listeners first: an 'error' without a listener would be thrown
    // Fail at once while disconnected instead of queueing: a purge must not wait for Redis.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: PUBLISH_TIMEOUT_MS,
    autoResubscribe: false, // subscribed on every 'ready' below
    retryStrategy: (times) => Math.min(100 * 2 ** times, RECONNECT_MAX_DELAY_MS),
  };
  const Redis = loadRedis();
  const publisher = new Redis(url, { ...options, connectionName: 'astro-origin-purge-pub' });
  const subscriber = new Redis(url, { ...options, connectionName: 'astro-origin-purge-sub' });
  const channel = purgeChannel(publisher.options.db);
  const where = new URL(url);
  if (where.password) where.password = '***';
  const logger = log.child({ redis: where.toString(), channel });

  // One line when Redis becomes unreachable and one when it is back, not one per reconnect.
  let down = false;
  for (const connection of [publisher, subscriber]) {
    connection.on('error', (err: Error) => {
      if (down) return;
      down = true;
      logger.warn(
        { err },
        'Redis is unreachable: cache purges are not passed on to the other instances, nor received from them, until it is back (check REDIS_URL and the server)',
      );
    });
  }
  const back = () => {
    if (!down || publisher.status !== 'ready' || subscriber.status !== 'ready') return;
    down = false;
    logger.info('Redis is reachable again: cache purges are passed on between instances');
  };
  publisher.on('ready', back);

  let markSubscribed: (ok: boolean) => void = () => {};
  const subscribed = new Promise<boolean>((resolve) => {
    markSubscribed = resolve;
    setTimeout(() => resolve(false), SUBSCRIBE_WAIT_MS).unref();
  });
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(
      () => {
        markSubscribed(true);
        back();
      },
      (err: Error) => logger.warn({ err }, 'could not subscribe to the cache purge channel; retrying on reconnect'),
    );
  });
  subscriber.on('message', (received: string, text: string) => {
    if (received !== channel) return;
    const message = parsePurgeMessage(text);
    if (!message) {
      logger.warn(
        { message: text.slice(0, 200) },
        'ignored a message on the cache purge channel that is not a purge (expected {"from": "…", "request": {"tags": […], "paths": ["/…"]}})',
      );
      return;
    }
    if (message.from === instanceId) return; // purged here already
    logger.info({ purge: message.request, from: message.from }, 'origin cache purged by another instance');
    Promise.resolve()
      .then(() => apply(message.request))
      .catch((err: unknown) => logger.error({ err, purge: message.request }, 'a purge from another instance failed'));
  });
  // A failed first attempt is reported through 'error' and retried by retryStrategy.
  for (const connection of [publisher, subscriber]) connection.connect().catch(() => {});

  return {
    instanceId,
    channel,
    subscribed,
    async publish(request) {
      try {
        await publisher.publish(channel, JSON.stringify({ from: instanceId, request } satisfies PurgeMessage));
        return 'published';
      } catch (err) {
        onFailure?.();
        logger.warn(
          { err, purge: request },
          'cache purge carried out here but not passed on to the other instances (Redis did not take it); they keep their copies until these expire: purge again once Redis is back',
        );
        return 'failed';
      }
    },
    async close() {
      await Promise.all(
        [publisher, subscriber].map(async (connection) => {
          if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect());
          else connection.disconnect();
        }),
      );
    },
  };
}

/** `purge`, then the same purge passed on to the other instances; the outcome says how that went. */
export function withFanOut(purge: Purger, fanOut: RedisPurgeFanOut | undefined): Purger {
  if (!fanOut) return purge;
  return async (request) => {
    const [outcome, fanout] = await Promise.all([purge(request), fanOut.publish(request)]);
    return { ...outcome, fanout };
  };
}
