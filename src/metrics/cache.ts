import { Counter, Gauge, type Registry } from 'prom-client';
import {
  CACHE_RESULTS,
  type CacheEvent,
  cacheChannel,
  originCacheInstance,
  REVALIDATION_OUTCOMES,
} from '../cache/store.ts';

/**
 * The origin cache (src/cache/): requests by result, revalidations, evictions and purges (fed
 * by the cache's diagnostics channel), bytes and entries (read at scrape). Summed across
 * workers every one stays meaningful: each worker has its own cache.
 */
export function registerCacheMetrics(registry: Registry): () => void {
  const requests = new Counter({
    name: 'origin_cache_requests_total',
    help: 'Astro requests by origin-cache result: hit (fresh copy, or a render shared with a concurrent miss), stale (served stale while one background render revalidates), miss (rendered and stored), bypass (rendered, not storable: method, Authorization, no maxAge, Set-Cookie, private/no-store, status, size).',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const result of CACHE_RESULTS) requests.inc({ result }, 0);
  const revalidations = new Counter({
    name: 'origin_cache_revalidations_total',
    help: 'Background renders of stale entries by outcome: success (replaced), error (render failed or 5xx; the stale copy is kept), dropped (no longer cacheable; removed).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  for (const outcome of REVALIDATION_OUTCOMES) revalidations.inc({ outcome }, 0);
  const evictions = new Counter({
    name: 'origin_cache_evictions_total',
    help: 'Entries removed, least recently used first, to stay within CACHE_MAX_BYTES.',
    registers: [registry],
  });
  const purges = new Counter({
    name: 'origin_cache_purges_total',
    help: 'Purges carried out (POST /cache/purge, or cache.invalidate() in the site), per process.',
    registers: [registry],
  });
  new Gauge({
    name: 'origin_cache_bytes',
    help: 'Bytes the origin cache holds (bodies, headers, keys), counted against CACHE_MAX_BYTES.',
    registers: [registry],
    collect() {
      this.set(originCacheInstance().bytes);
    },
  });
  new Gauge({
    name: 'origin_cache_entries',
    help: 'Responses the origin cache holds.',
    registers: [registry],
    collect() {
      this.set(originCacheInstance().size);
    },
  });
  const onEvent = (message: unknown) => {
    const event = message as CacheEvent;
    if (event.type === 'request') requests.inc({ result: event.result });
    else if (event.type === 'revalidation') revalidations.inc({ outcome: event.outcome });
    else if (event.type === 'eviction') evictions.inc();
    else purges.inc();
  };
  cacheChannel.subscribe(onEvent);
  return () => cacheChannel.unsubscribe(onEvent);
}

/**
 * Purges made on this instance that could not be passed on to the others over Redis (REDIS_URL;
 * src/cache/redis-fanout.ts). Registered in the process that publishes them, once per instance:
 * the single process, or the cluster primary (never in its workers, whose series it sums).
 */
export function registerPurgeFanOutMetrics(registry: Registry): Counter {
  return new Counter({
    name: 'origin_cache_purge_fanout_failures_total',
    help: 'Purges carried out on this instance that Redis did not take for the other instances (REDIS_URL down or not answering): the other instances keep their copies until these expire or are purged again.',
    registers: [registry],
  });
}
