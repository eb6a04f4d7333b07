// `astro-fastify-origin/cache`: the origin cache as an Astro cache provider. Astro imports this
// module (its default export is the provider factory) when a site sets experimental.cache with
// it; the adapter does so by default. `originCache()` is the config helper, as Astro's own
// memoryCache() is:
//   experimental: { cache: { provider: originCache() } }
import { fileURLToPath } from 'node:url';
import {
  type CacheRequestContext,
  type Next,
  type OriginCache,
  originCacheInstance,
  type PurgeRequest,
  sitePurgeChannel,
} from './store.ts';

export {
  CACHE_RESULTS,
  CACHEABLE_STATUSES,
  configureOriginCache,
  originCacheInstance,
  type PurgeRequest,
  REVALIDATION_OUTCOMES,
} from './store.ts';

export const PROVIDER_NAME = 'astro-fastify-origin';

/** What Astro's cache API hands setHeaders (astro/dist/core/cache/types.d.ts, CacheOptions). */
interface CacheOptions {
  maxAge?: number;
  swr?: number;
  tags?: string[];
  lastModified?: Date;
  etag?: string;
}

/** Astro's CacheProvider interface, written out: astro does not export it from a public path. */
export interface OriginCacheProvider {
  name: string;
  setHeaders(options: CacheOptions): Headers;
  onRequest(context: CacheRequestContext, next: Next): Promise<Response>;
  invalidate(options: { path?: string; tags?: string | string[] }): Promise<void>;
}

/** This module's own path: .ts in this repository, .js in the published lib/. */
export const PROVIDER_ENTRYPOINT = fileURLToPath(import.meta.url);

/** `experimental.cache.provider` for astro.config; the adapter sets it when a site leaves it out. */
export function originCache(): { name: string; entrypoint: string } {
  return { name: PROVIDER_NAME, entrypoint: PROVIDER_ENTRYPOINT };
}

/**
 * The provider Astro builds once per App. Astro applies setHeaders' output to the page's
 * response inside `next()`, onRequest reads it back (CDN-Cache-Control, Cache-Tag) to decide,
 * and Astro strips both before the response leaves: the CDN sees Cache-Control and Age instead.
 */
export function createOriginCacheProvider(cache: OriginCache = originCacheInstance()): OriginCacheProvider {
  return {
    name: PROVIDER_NAME,
    setHeaders(options) {
      const headers = new Headers();
      const cc: string[] = [];
      if (options.maxAge !== undefined) cc.push(`max-age=${options.maxAge}`);
      if (options.swr !== undefined) cc.push(`stale-while-revalidate=${options.swr}`);
      if (cc.length > 0) headers.set('CDN-Cache-Control', cc.join(', '));
      if (options.tags?.length) headers.set('Cache-Tag', options.tags.join(', '));
      if (options.lastModified) headers.set('Last-Modified', options.lastModified.toUTCString());
      if (options.etag) headers.set('ETag', options.etag);
      return headers;
    },
    onRequest: (context, next) => cache.handle(context, next),
    async invalidate({ path, tags }) {
      const request: PurgeRequest = {
        paths: path === undefined ? [] : [path],
        tags: tags === undefined ? [] : Array.isArray(tags) ? tags : [tags],
      };
      cache.invalidate(request);
      // The origin passes it on: to the other workers (src/cache/purge.ts), to the other
      // instances over Redis (src/cache/redis-fanout.ts). Outside the origin nobody listens.
      if (sitePurgeChannel.hasSubscribers) sitePurgeChannel.publish(request);
    },
  };
}

export default function originCacheProviderFactory(): OriginCacheProvider {
  return createOriginCacheProvider();
}
