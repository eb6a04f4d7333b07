// Purging the origin cache from outside: POST /cache/purge on the metrics listener (bearer
// token), and, under WORKERS > 1, the primary's fan-out to every worker over IPC. The endpoint
// answers once every worker has purged, so a deploy script can purge the CDN right after. The
// other instances get the purge over Redis (redis-fanout.ts), without confirming it.
import type { Worker } from 'node:cluster';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createAsker } from '../cluster/ask.ts';
import { type OriginCache, originCacheInstance, type PurgeRequest, sitePurgeChannel } from './store.ts';

/** Primary → worker: purge these; worker → primary: done. */
export const PURGE_REQUEST_MESSAGE = 'astro-fastify-origin:cache-purge';
export const PURGE_RESPONSE_MESSAGE = 'astro-fastify-origin:cache-purged';
/** Worker → primary: the site purged this worker's cache; purge the other workers too. */
export const PURGE_BROADCAST_MESSAGE = 'astro-fastify-origin:cache-purge-broadcast';
/** A worker that has not confirmed a purge within this fails the request (503). */
export const WORKER_PURGE_TIMEOUT_MS = 5000;
export const PURGE_PATH = '/cache/purge';

export interface PurgeOutcome {
  /** Entries removed, summed over processes. */
  removed: number;
  /** Processes that purged. */
  processes: number;
  /** Workers that did not confirm in time (the purge may not have reached them). */
  unconfirmed: number;
  /**
   * With REDIS_URL only: `published` when the purge went out to the other instances (they apply
   * it as they receive it), `failed` when Redis could not take it (this instance purged anyway).
   */
  fanout?: FanOutStatus;
}
/** What became of passing a purge on to the other instances (src/cache/redis-fanout.ts). */
export type FanOutStatus = 'published' | 'failed';
export type Purger = (request: PurgeRequest) => Promise<PurgeOutcome>;

/** The purge of a single process: its own cache. */
export const localPurger =
  (cache: OriginCache = originCacheInstance()): Purger =>
  async (request) => ({ removed: cache.invalidate(request), processes: 1, unconfirmed: 0 });

const digest = (value: string) => createHash('sha256').update(value).digest();

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tags: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 1024 } },
    paths: { type: 'array', maxItems: 1000, items: { type: 'string', pattern: '^/', maxLength: 8192 } },
  },
} as const;

/**
 * POST /cache/purge {"tags": [...]} or {"paths": [...]} (or both), with
 * `Authorization: Bearer <CACHE_PURGE_TOKEN>`. Not registered without a token: 404.
 */
export function registerPurgeRoute(server: FastifyInstance, { token, purge }: { token: string; purge: Purger }): void {
  if (!token) return;
  const expected = digest(token);
  server.post<{ Body: PurgeRequest }>(
    PURGE_PATH,
    {
      schema: { body: bodySchema },
      // Before the body is read or checked: a caller without the token learns nothing more.
      async onRequest(request, reply) {
        const given = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
        if (given && timingSafeEqual(digest(given), expected)) return;
        reply.code(401).header('www-authenticate', 'Bearer realm="cache-purge"');
        return reply.send({ error: 'Unauthorized', message: 'send Authorization: Bearer <CACHE_PURGE_TOKEN>' });
      },
    },
    async (request, reply) => {
      if (!request.body?.tags?.length && !request.body?.paths?.length) {
        reply.code(400);
        return { error: 'Bad Request', message: 'send {"tags": ["…"]} or {"paths": ["/…"]} (or both), not empty' };
      }
      const outcome = await purge(request.body);
      request.log.info({ purge: request.body, ...outcome }, 'origin cache purged');
      if (outcome.unconfirmed > 0) {
        reply.code(503);
        return {
          error: 'Service Unavailable',
          message: `${outcome.unconfirmed} worker(s) did not confirm the purge within ${WORKER_PURGE_TIMEOUT_MS} ms; retry it`,
          ...outcome,
        };
      }
      return outcome;
    },
  );
}

/** In a worker: carry out the primary's purges on this process's cache and confirm each. */
export function answerPurgeRequests(cache: OriginCache = originCacheInstance()): void {
  process.on('message', (message: { type?: string; id?: number; request?: PurgeRequest }) => {
    if (message?.type !== PURGE_REQUEST_MESSAGE || !message.request) return;
    const removed = cache.invalidate(message.request);
    process.send?.({ type: PURGE_RESPONSE_MESSAGE, id: message.id, removed });
  });
}

/**
 * In a worker: a purge the site's code made here (it already purged this worker's cache) goes
 * to the primary, which passes it on to the other workers and instances.
 */
export function forwardSitePurges(): void {
  sitePurgeChannel.subscribe((request) => process.send?.({ type: PURGE_BROADCAST_MESSAGE, request }));
}

/**
 * The primary's side, over the ready `workers`: `purge` sends a purge to each and resolves once
 * all confirmed (or the timeout passed); `onMessage` (wire it to cluster.on('message')) takes
 * the confirmations, and passes a purge the site's code made in one worker to the others, then
 * to `onSitePurge` (the other instances).
 */
export function createPurgeFanOut(
  workers: () => Worker[],
  {
    timeoutMs = WORKER_PURGE_TIMEOUT_MS,
    onSitePurge,
  }: { timeoutMs?: number; onSitePurge?: (request: PurgeRequest) => void } = {},
): { onMessage(worker: Worker, message: unknown): void; purge: Purger } {
  const asker = createAsker<number>(timeoutMs);
  /** Entries the worker removed; undefined when it did not confirm (the purge may not have reached it). */
  const ask = async (worker: Worker, request: PurgeRequest): Promise<number | undefined> => {
    const result = await asker.ask(worker, { type: PURGE_REQUEST_MESSAGE, request });
    if (result.answered) return result.value;
    // A worker that exits takes its cache with it: nothing left to purge there.
    return result.reason === 'exit' || (result.reason === 'unsent' && worker.isDead()) ? 0 : undefined;
  };
  const purgeAll = async (request: PurgeRequest, except?: Worker): Promise<PurgeOutcome> => {
    const answers = await Promise.all(workers().flatMap((w) => (w === except ? [] : [ask(w, request)])));
    return {
      removed: answers.reduce<number>((sum, n) => sum + (n ?? 0), 0),
      processes: answers.filter((n) => n !== undefined).length,
      unconfirmed: answers.filter((n) => n === undefined).length,
    };
  };
  return {
    onMessage(worker, raw) {
      const message = raw as { type?: string; id?: number; removed?: number; request?: PurgeRequest } | undefined;
      if (message?.type === PURGE_RESPONSE_MESSAGE && message.id !== undefined)
        asker.answer(message.id, message.removed ?? 0);
      else if (message?.type === PURGE_BROADCAST_MESSAGE && message.request) {
        void purgeAll(message.request, worker);
        onSitePurge?.(message.request);
      }
    },
    purge: (request) => purgeAll(request),
  };
}
