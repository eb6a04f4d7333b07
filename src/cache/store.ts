// The origin cache: rendered responses kept in memory within a byte budget, served fresh, or
// stale while one background render revalidates them; concurrent misses of one key wait for
// one render. It is the engine behind the Astro cache provider (provider.ts) and knows nothing
// of Fastify: the origin reaches the one instance of the process through originCacheInstance().
import diagnostics from 'node:diagnostics_channel';

/** What Astro hands a provider's onRequest (astro/dist/core/cache/types.d.ts). */
export interface CacheRequestContext {
  request: Request;
  url: URL;
  waitUntil?: (promise: Promise<unknown>) => void;
}
export type Next = () => Promise<Response>;

export const CACHE_RESULTS = ['hit', 'miss', 'stale', 'bypass'] as const;
export type CacheResult = (typeof CACHE_RESULTS)[number];
/** success: a fresh copy replaced the stale one; error: the render failed or answered 5xx (the stale copy is kept until its swr window ends); dropped: the page is no longer cacheable (the copy is removed). */
export const REVALIDATION_OUTCOMES = ['success', 'error', 'dropped'] as const;
export type RevalidationOutcome = (typeof REVALIDATION_OUTCOMES)[number];

export type CacheEvent =
  | { type: 'request'; result: CacheResult }
  | { type: 'eviction' }
  | { type: 'revalidation'; outcome: RevalidationOutcome }
  | { type: 'purge'; removed: number };
/** Every counted event, for the metrics module (and anyone else who listens). */
export const cacheChannel = diagnostics.channel('astro-fastify-origin:cache');
/**
 * A PurgeRequest the site's own code made (cache.invalidate() → the provider), after it purged
 * this process's cache: the origin passes it on to the other workers and instances. Purges that
 * arrive from elsewhere are not published here, so they are not passed on again.
 */
export const sitePurgeChannel = diagnostics.channel('astro-fastify-origin:cache-site-purge');

/** Statuses a shared cache may keep (the rest are always rendered). */
export const CACHEABLE_STATUSES: ReadonlySet<number> = new Set([200, 301, 308, 404, 410]);
/** A response larger than budget / this is not stored: a few large pages must not flush the cache. */
export const ENTRY_FRACTION_OF_BUDGET = 8;
/** A key whose response could not be stored skips coalescing this long (it would only queue). */
export const PASS_TTL_MS = 10_000;
const MAX_PASS_MARKERS = 10_000;
const MAX_VARY_RECORDS = 10_000;
/** Per-entry bookkeeping counted in the budget beside body, headers and key. */
const ENTRY_OVERHEAD_BYTES = 256;
const SWEEP_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

export interface OriginCacheSettings {
  /** The byte budget; 0 turns the cache off (every request is rendered, counted as bypass). */
  maxBytes: number;
  /** Add X-Cache: HIT|MISS|STALE|BYPASS to responses. */
  debugHeader: boolean;
}

export interface Entry {
  key: string;
  primary: string;
  /** Path without trailing slash (for purge by path) and the path with its query. */
  pathname: string;
  pathWithQuery: string;
  status: number;
  headers: Array<[string, string]>;
  /** null when the response had no body (Astro treats a bodiless 404 differently). */
  body: Uint8Array<ArrayBuffer> | null;
  bytes: number;
  storedAt: number;
  maxAgeMs: number;
  swrMs: number;
  tags: string[];
  cacheControl: string;
  vary: string[] | undefined;
  varyValues: Record<string, string> | undefined;
  revalidating: boolean;
}

export interface PurgeRequest {
  /** A path purges every query variant of it; a path with `?` exactly that URL. */
  paths?: string[];
  tags?: string[];
}

/** Set per response (age, cache-control, x-cache) or Astro's directives to us, which never leave the origin. */
const NOT_STORED_HEADERS = new Set(['age', 'x-cache', 'cache-control', 'cdn-cache-control', 'cache-tag']);

const trimSlash = (p: string) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);

/** max-age and stale-while-revalidate from the CDN-Cache-Control Astro applied (our setHeaders). */
function directives(header: string | null): { maxAge: number; swr: number } {
  let maxAge = 0;
  let swr = 0;
  for (const part of (header ?? '').split(',')) {
    const [name, value] = part.trim().toLowerCase().split('=');
    if (name === 'max-age') maxAge = Number.parseInt(value ?? '', 10) || 0;
    else if (name === 'stale-while-revalidate') swr = Number.parseInt(value ?? '', 10) || 0;
  }
  return { maxAge, swr };
}

/** Cookies set with Astro.cookies are added to the headers only after the provider returns. */
const ASTRO_COOKIES = Symbol.for('astro.cookies');
function setsCookies(response: Response): boolean {
  if (response.headers.has('set-cookie')) return true;
  const cookies = Reflect.get(response, ASTRO_COOKIES) as { headers?: () => Iterable<string> } | undefined;
  if (!cookies?.headers) return false;
  for (const _ of cookies.headers()) return true;
  return false;
}

/** Astro adds those cookies to the Response the provider returns: keep them on a rewrapped one. */
function withCookiesOf(original: Response, rewrapped: Response): Response {
  const cookies = Reflect.get(original, ASTRO_COOKIES);
  if (cookies) Reflect.set(rewrapped, ASTRO_COOKIES, cookies);
  return rewrapped;
}

/** Why a response must not be stored, or undefined when it may be. */
function refusal(response: Response, maxAge: number): string | undefined {
  if (maxAge <= 0) return 'no maxAge';
  if (!CACHEABLE_STATUSES.has(response.status)) return `status ${response.status}`;
  if (setsCookies(response)) return 'Set-Cookie';
  const cc = response.headers.get('cache-control')?.toLowerCase() ?? '';
  if (/(^|[\s,])(private|no-store|no-cache)($|[\s,=])/.test(cc)) return `Cache-Control: ${cc}`;
  if (response.headers.get('vary')?.trim() === '*') return 'Vary: *';
  return undefined;
}

/** The Cache-Control a CDN in front sees: the site's own, plus s-maxage and swr unless it said them. */
function cdnCacheControl(own: string | null, maxAge: number, swr: number): string {
  const parts = own ? [own] : ['public', 'max-age=0'];
  if (!own || !/s-maxage/i.test(own)) parts.push(`s-maxage=${maxAge}`);
  if (swr > 0 && !/stale-while-revalidate/i.test(own ?? '')) parts.push(`stale-while-revalidate=${swr}`);
  return parts.join(', ');
}

function varyHeaders(response: Response): string[] | undefined {
  const vary = response.headers.get('vary');
  if (!vary) return undefined;
  const names = vary
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  return names.length > 0 ? names.sort() : undefined;
}
const varySuffix = (request: Request, names: readonly string[]) =>
  names.map((name) => `\0${name}=${request.headers.get(name) ?? ''}`).join('');

/** Reads a body whole unless it passes `limit`: then hands back a stream of all of it. */
async function readUpTo(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array<ArrayBuffer> } | { stream: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = typeof value === 'string' ? Buffer.from(value) : value;
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size > limit) {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const c of chunks) controller.enqueue(c);
        },
        async pull(controller) {
          const next = await reader.read();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { stream };
    }
  }
  return { bytes: (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)) as Uint8Array<ArrayBuffer> };
}

export class OriginCache {
  maxBytes: number;
  debugHeader: boolean;
  /** Least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private readonly byTag = new Map<string, Set<Entry>>();
  private readonly byPath = new Map<string, Set<Entry>>();
  /** Vary header names last seen for a primary key. */
  private readonly varyByPrimary = new Map<string, string[]>();
  private readonly inflight = new Map<string, Promise<Entry | undefined>>();
  private readonly passUntil = new Map<string, number>();
  /** Bumped by every purge: a render that started before one does not store its result. */
  private generation = 0;
  private totalBytes = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(settings: OriginCacheSettings) {
    this.maxBytes = settings.maxBytes;
    this.debugHeader = settings.debugHeader;
  }

  get bytes(): number {
    return this.totalBytes;
  }
  get size(): number {
    return this.entries.size;
  }

  configure(settings: Partial<OriginCacheSettings>): void {
    if (settings.debugHeader !== undefined) this.debugHeader = settings.debugHeader;
    if (settings.maxBytes !== undefined) {
      this.maxBytes = settings.maxBytes;
      this.evictFor(0);
    }
  }

  /**
   * A fresh copy for this request, counted as a hit, or undefined (stale, missing, not
   * eligible: Astro's pipeline and the provider handle those). Lets the origin answer a hit
   * without running Astro at all (src/cache/fast-path.ts); bodiless entries are left to Astro,
   * which turns some of them into its error pages.
   */
  freshHit(request: Request): { entry: Entry; now: number } | undefined {
    const method = request.method;
    if (this.entries.size === 0 || (method !== 'GET' && method !== 'HEAD') || request.headers.has('authorization'))
      return undefined;
    const url = new URL(request.url);
    const primary = `${method} ${url.host}${url.pathname}${url.search}`;
    const vary = this.varyByPrimary.get(primary);
    const key = vary ? primary + varySuffix(request, vary) : primary;
    const entry = this.entries.get(key);
    const now = Date.now();
    if (!entry?.body || now - entry.storedAt > entry.maxAgeMs) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.publish({ type: 'request', result: 'hit' });
    return { entry, now };
  }

  /** The provider's onRequest. */
  async handle(context: CacheRequestContext, next: Next): Promise<Response> {
    const { request } = context;
    const method = request.method;
    if (this.maxBytes <= 0 || (method !== 'GET' && method !== 'HEAD') || request.headers.has('authorization'))
      return this.bypass(await next());
    const url = context.url;
    const primary = `${method} ${url.host}${url.pathname}${url.search}`;
    const vary = this.varyByPrimary.get(primary);
    const key = vary ? primary + varySuffix(request, vary) : primary;
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry) {
      const age = now - entry.storedAt;
      if (age <= entry.maxAgeMs) {
        this.entries.delete(key);
        this.entries.set(key, entry);
        return this.serve(entry, request, 'hit', now);
      }
      if (age <= entry.maxAgeMs + entry.swrMs) {
        this.revalidate(entry, context, next);
        return this.serve(entry, request, 'stale', now);
      }
      this.remove(entry);
    }
    if ((this.passUntil.get(primary) ?? 0) > now) return this.bypass(await next());
    const leader = this.inflight.get(key);
    if (leader) {
      const stored = await leader;
      if (stored && this.entries.get(stored.key) === stored && this.varyMatches(stored, request))
        return this.serve(stored, request, 'hit', Date.now());
      // The leader's page could not be shared (or was for other Vary values): render our own.
      return this.miss(context, next, primary, key, false);
    }
    return this.miss(context, next, primary, key, true);
  }

  /** Removes what a purge names; returns how many entries went. */
  invalidate({ paths = [], tags = [] }: PurgeRequest): number {
    this.generation++;
    this.passUntil.clear();
    const doomed = new Set<Entry>();
    for (const path of paths) {
      if (path.includes('?')) {
        for (const e of this.byPath.get(trimSlash(path.slice(0, path.indexOf('?')))) ?? [])
          if (e.pathWithQuery === path || trimSlash(e.pathWithQuery) === trimSlash(path)) doomed.add(e);
      } else for (const e of this.byPath.get(trimSlash(path)) ?? []) doomed.add(e);
    }
    for (const tag of tags) for (const e of this.byTag.get(tag) ?? []) doomed.add(e);
    for (const e of doomed) this.remove(e);
    this.publish({ type: 'purge', removed: doomed.size });
    return doomed.size;
  }

  /** Removes every entry (tests, and a site that wants a clean slate). */
  clear(): void {
    for (const e of [...this.entries.values()]) this.remove(e);
  }

  private async miss(context: CacheRequestContext, next: Next, primary: string, key: string, lead: boolean) {
    const generation = this.generation;
    let settle: (entry: Entry | undefined) => void = () => {};
    if (lead)
      this.inflight.set(
        key,
        new Promise<Entry | undefined>((resolve) => {
          settle = resolve;
        }),
      );
    let stored: Entry | undefined;
    try {
      const { response, entry } = await this.admit(await next(), context.request, primary, generation);
      stored = entry;
      if (!entry) return this.bypass(response);
      return this.mark(response, 'miss');
    } finally {
      if (lead) {
        this.inflight.delete(key);
        settle(stored);
      }
    }
  }

  /** Stores the response when it may be stored; returns what to send and the entry, if stored. */
  private async admit(
    response: Response,
    request: Request,
    primary: string,
    generation: number,
  ): Promise<{ response: Response; entry?: Entry }> {
    const { maxAge, swr } = directives(response.headers.get('cdn-cache-control'));
    const refused = refusal(response, maxAge);
    if (refused) {
      this.pass(primary);
      return { response };
    }
    let body: Uint8Array<ArrayBuffer> | null = null;
    if (response.body) {
      const read = await readUpTo(response.body, this.maxBytes / ENTRY_FRACTION_OF_BUDGET);
      if ('stream' in read) {
        this.pass(primary);
        return { response: withCookiesOf(response, new Response(read.stream, response)) };
      }
      body = read.bytes;
    }
    const sendable = new Response(body, response);
    // Cookies set while a streamed body was produced, or a purge while we rendered: send, do not keep.
    if (setsCookies(response) || generation !== this.generation) {
      if (setsCookies(response)) this.pass(primary);
      return { response: withCookiesOf(response, sendable) };
    }
    const vary = varyHeaders(response);
    const key = vary ? primary + varySuffix(request, vary) : primary;
    this.varyByPrimary.delete(primary);
    if (vary) {
      // Bounded: a forgotten Vary only costs a miss (varied entries are never stored under the bare key).
      if (this.varyByPrimary.size >= MAX_VARY_RECORDS)
        this.varyByPrimary.delete(this.varyByPrimary.keys().next().value!);
      this.varyByPrimary.set(primary, vary);
    }
    const headers: Array<[string, string]> = [];
    let headerBytes = 0;
    for (const [name, value] of response.headers) {
      if (NOT_STORED_HEADERS.has(name)) continue;
      headers.push([name, value]);
      headerBytes += name.length + value.length;
    }
    const url = new URL(request.url);
    const entry: Entry = {
      key,
      primary,
      pathname: trimSlash(url.pathname),
      pathWithQuery: url.pathname + url.search,
      status: response.status,
      headers,
      body,
      bytes: (body?.byteLength ?? 0) + headerBytes + key.length * 2 + ENTRY_OVERHEAD_BYTES,
      storedAt: Date.now(),
      maxAgeMs: maxAge * 1000,
      swrMs: swr * 1000,
      tags: (response.headers.get('cache-tag') ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
      cacheControl: cdnCacheControl(response.headers.get('cache-control'), maxAge, swr),
      vary,
      varyValues: vary ? Object.fromEntries(vary.map((h) => [h, request.headers.get(h) ?? ''])) : undefined,
      revalidating: false,
    };
    if (!this.insert(entry)) return { response: sendable };
    this.passUntil.delete(primary);
    sendable.headers.set('cache-control', entry.cacheControl);
    sendable.headers.set('age', '0');
    return { response: sendable, entry };
  }

  private revalidate(entry: Entry, context: CacheRequestContext, next: Next): void {
    if (entry.revalidating) return;
    entry.revalidating = true;
    const generation = this.generation;
    const task = (async () => {
      let outcome: RevalidationOutcome = 'error';
      try {
        const rendered = await next();
        const { response, entry: fresh } = await this.admit(rendered, context.request, entry.primary, generation);
        if (fresh) outcome = 'success';
        else {
          await response.body?.cancel();
          if (rendered.status < 500 && generation === this.generation) {
            outcome = 'dropped';
            this.remove(entry);
          }
        }
      } catch {
        // The stale copy stays until its window ends; the next stale hit tries again.
      } finally {
        entry.revalidating = false;
        this.publish({ type: 'revalidation', outcome });
      }
    })();
    context.waitUntil?.(task);
  }

  private serve(entry: Entry, request: Request, result: CacheResult, now: number): Response {
    const headers = new Headers(entry.headers);
    headers.set('cache-control', entry.cacheControl);
    headers.set('age', String(Math.max(0, Math.floor((now - entry.storedAt) / 1000))));
    if (this.debugHeader) headers.set('x-cache', result.toUpperCase());
    this.publish({ type: 'request', result });
    return new Response(request.method === 'HEAD' ? null : entry.body, { status: entry.status, headers });
  }

  private bypass(response: Response): Response {
    return this.mark(response, 'bypass');
  }

  private mark(response: Response, result: CacheResult): Response {
    this.publish({ type: 'request', result });
    if (this.debugHeader) {
      try {
        response.headers.set('x-cache', result.toUpperCase());
      } catch {
        // Response.redirect() and friends have immutable headers: nothing to debug there.
      }
    }
    return response;
  }

  private varyMatches(entry: Entry, request: Request): boolean {
    if (!entry.vary || !entry.varyValues) return true;
    return entry.vary.every((h) => (request.headers.get(h) ?? '') === entry.varyValues![h]);
  }

  private pass(primary: string): void {
    if (this.passUntil.size >= MAX_PASS_MARKERS) this.passUntil.delete(this.passUntil.keys().next().value!);
    this.passUntil.set(primary, Date.now() + PASS_TTL_MS);
  }

  /** Makes room within the budget; false when the entry is too large to keep. */
  private insert(entry: Entry): boolean {
    if (entry.bytes > this.maxBytes / ENTRY_FRACTION_OF_BUDGET) return false;
    const old = this.entries.get(entry.key);
    if (old) this.remove(old);
    this.evictFor(entry.bytes);
    this.entries.set(entry.key, entry);
    this.totalBytes += entry.bytes;
    for (const tag of entry.tags) this.index(this.byTag, tag).add(entry);
    this.index(this.byPath, entry.pathname).add(entry);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    return true;
  }

  private evictFor(bytes: number): void {
    while (this.entries.size > 0 && this.totalBytes + bytes > this.maxBytes) {
      this.remove(this.entries.values().next().value!);
      this.publish({ type: 'eviction' });
    }
  }

  private remove(entry: Entry): void {
    if (this.entries.get(entry.key) !== entry) return;
    this.entries.delete(entry.key);
    this.totalBytes -= entry.bytes;
    for (const tag of entry.tags) this.unindex(this.byTag, tag, entry);
    this.unindex(this.byPath, entry.pathname, entry);
  }

  /** Entries past their swr window are dead weight in the byte gauge: drop them. */
  private sweep(): void {
    const now = Date.now();
    for (const e of [...this.entries.values()]) if (now - e.storedAt > e.maxAgeMs + e.swrMs) this.remove(e);
    for (const [primary, until] of this.passUntil) if (until <= now) this.passUntil.delete(primary);
  }

  private index(map: Map<string, Set<Entry>>, name: string): Set<Entry> {
    const found = map.get(name);
    if (found) return found;
    const set = new Set<Entry>();
    map.set(name, set);
    return set;
  }
  private unindex(map: Map<string, Set<Entry>>, name: string, entry: Entry): void {
    const set = map.get(name);
    set?.delete(entry);
    if (set?.size === 0) map.delete(name);
  }

  private publish(event: CacheEvent): void {
    if (cacheChannel.hasSubscribers) cacheChannel.publish(event);
  }
}

const SLOT = Symbol.for('astro-fastify-origin.cache');
type WithSlot = typeof globalThis & { [SLOT]?: OriginCache };

/**
 * The process's one cache. The provider is bundled into the site's build and the origin loads
 * its own copy of this module, so they meet on a global symbol rather than a module variable.
 * Until the origin configures it, CACHE_MAX_BYTES and CACHE_DEBUG_HEADER are read leniently
 * from the environment (a build rendered without the origin server).
 */
export function originCacheInstance(): OriginCache {
  const g = globalThis as WithSlot;
  g[SLOT] ??= new OriginCache({
    maxBytes: envBytes(process.env.CACHE_MAX_BYTES),
    debugHeader: /^(true|1)$/i.test(process.env.CACHE_DEBUG_HEADER ?? ''),
  });
  return g[SLOT];
}

function envBytes(value: string | undefined): number {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isInteger(n) && n >= 0 ? n : DEFAULT_MAX_BYTES;
}

/** The origin's settings (from its validated config), applied to the process's cache. */
export function configureOriginCache(settings: OriginCacheSettings): OriginCache {
  const cache = originCacheInstance();
  cache.configure(settings);
  return cache;
}
