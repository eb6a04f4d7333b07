// The build's client dir: public/ files, hashed /_astro/* assets and prerendered pages, served
// as @astrojs/node 10.1.4 serves them (base, trailingSlash, build.format, index.html, .html
// extensions, /.well-known/*), decided from a listing made once at start-up.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { StaticHeadersEntry } from '../adapter/index.ts';
import { ROUTE_LABELS, setRouteLabel } from '../route-label.ts';

export interface StaticFilesOptions {
  clientDir: string;
  /** URL prefix of Astro's content-hashed assets, without the base, e.g. "/_astro/". */
  assetsPrefix: string;
  /** The site's `base` as Astro's manifest has it ("/", "/app", "/app/"). */
  base?: string;
  trailingSlash?: 'always' | 'never' | 'ignore';
  buildFormat?: 'directory' | 'file' | 'preserve';
  /** Cache-Control of every file but the hashed assets (public/ files, prerendered pages). */
  cacheControl?: string;
  /** Headers of prerendered pages (CSP), by pathname without the base. */
  staticHeaders?: StaticHeadersEntry[];
}

/** Hashed assets never change under their name. */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/**
 * Unhashed files (favicon, robots.txt, prerendered pages) may change on deploy: caches keep them
 * briefly and revalidate with the ETag. The STATIC_CACHE_CONTROL setting overrides it.
 */
export const DEFAULT_STATIC_CACHE_CONTROL = 'public, max-age=60, must-revalidate';

export type StaticDecision =
  | { kind: 'file'; file: string; cacheControl: string; headers: StaticHeadersEntry['headers'] }
  | { kind: 'redirect'; location: string };

/** Paths whose decision the resolver remembers, at most, and the longest it remembers. */
export const RESOLVER_MEMO_MAX_ENTRIES = 4096;
export const RESOLVER_MEMO_MAX_PATH = 512;

type PathDecision =
  | Extract<StaticDecision, { kind: 'file' }>
  | { kind: 'redirect'; location: string /** The request's query goes on the location. */; withQuery: boolean };

const UP_PATH = /(?:^|[\\/])\.\.(?:[\\/]|$)/;
const WITH_FILE_EXT = /\/[^/]+\.\w+$/;
const INTERNAL_PREFIXES = new Set(['/_', '/@', '/.', '//']);
const JUST_SLASHES = /^\/{2,}$/;
const isInternalPath = (p: string) => INTERNAL_PREFIXES.has(p.slice(0, 2)) && !JUST_SLASHES.test(p);

/**
 * Decides, from the list of client files alone (no filesystem access), what a GET or HEAD of
 * `rawUrl` gets: a file, a trailing-slash redirect, or nothing (Astro renders it). The rules are
 * @astrojs/node's (serve-static.js and the `send` package it calls), step by step:
 * strip the base; a URL naming a directory is redirected or resolved to its index.html as
 * trailingSlash says; the path is decoded; "..", NUL and dotfiles outside /.well-known/ are
 * refused; "/x/" means x/index.html; with build.format file or preserve, "/x" may be x.html.
 */
export function createStaticResolver(files: Iterable<string>, options: Omit<StaticFilesOptions, 'clientDir'>) {
  const base = options.base ?? '/';
  const baseWithoutSlash = base.endsWith('/') ? base.slice(0, -1) : base;
  const trailingSlash = options.trailingSlash ?? 'ignore';
  const htmlExtension = options.buildFormat === 'file' || options.buildFormat === 'preserve';
  const cacheControl = options.cacheControl ?? DEFAULT_STATIC_CACHE_CONTROL;
  // File and directory names relative to the client dir, exactly as on disk ("about/index.html").
  const fileSet = new Set<string>();
  const dirSet = new Set<string>(['']);
  for (const file of files) {
    const rel = file.replace(/^\/+/, '');
    fileSet.add(rel);
    for (let dir = path.posix.dirname(rel); dir !== '.'; dir = path.posix.dirname(dir)) dirSet.add(dir);
  }
  const headersByPath = new Map<string, StaticHeadersEntry['headers']>();
  for (const entry of options.staticHeaders ?? []) headersByPath.set(pageKey(entry.pathname), entry.headers);

  const removeBase = (pathname: string) => {
    const p = pathname.replace(/^\/{2,}/, '/');
    return p.startsWith(base) ? p.slice(baseWithoutSlash.length + 1) : p;
  };
  // path.join(clientDir, rel) is a directory, on the undecoded path as @astrojs/node checks it.
  const isDirectory = (rel: string) => {
    const normalized = path.posix.normalize(`./${rel}`).replace(/\/+$/, '');
    if (normalized === '..' || normalized.startsWith('../')) return false;
    return dirSet.has(normalized === '.' ? '' : normalized);
  };

  function fileDecision(file: string, sendPath: string, urlPath: string): Extract<StaticDecision, { kind: 'file' }> {
    const isAsset = sendPath.startsWith(options.assetsPrefix);
    const headers = file.endsWith('.html') ? (headersByPath.get(pageKey(removeBase(urlPath))) ?? []) : [];
    return { kind: 'file', file, cacheControl: isAsset ? IMMUTABLE_CACHE_CONTROL : cacheControl, headers };
  }

  // What a URL path (no query) gets; a redirect's location is completed with the query below.
  function decide(urlPath: string): PathDecision | undefined {
    const isDir = isDirectory(removeBase(urlPath));
    const hasSlash = urlPath.endsWith('/');
    let pathname = urlPath;
    if (trailingSlash === 'always') {
      if (!hasSlash && !WITH_FILE_EXT.test(urlPath) && !isInternalPath(urlPath)) {
        return { kind: 'redirect', location: `${urlPath}/`, withQuery: true };
      }
    } else {
      if (trailingSlash === 'never' && isDir && urlPath !== '/' && hasSlash) {
        return { kind: 'redirect', location: urlPath.slice(0, -1), withQuery: true };
      }
      if (isDir && !hasSlash) pathname = `${urlPath}/index.html`;
    }
    const stripped = removeBase(pathname);
    const sendPath = path.posix.normalize(stripped.startsWith('/') ? stripped : `/${stripped}`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(sendPath);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0')) return undefined;
    const rel = path.posix.normalize(`./${decoded}`);
    if (UP_PATH.test(rel)) return undefined;
    // @astrojs/node tests the URL before decoding, so "/.well-known/%2e%2e/.env" would pass
    // there; here the decoded, normalised path decides.
    if (!rel.startsWith('.well-known/') && rel.split('/').some((part) => part.length > 1 && part[0] === '.')) {
      return undefined;
    }
    if (decoded.endsWith('/')) {
      const index = `${rel === './' ? '' : rel}index.html`;
      return fileSet.has(index) ? fileDecision(index, sendPath, urlPath) : undefined;
    }
    if (fileSet.has(rel)) return fileDecision(rel, sendPath, urlPath);
    // `send` answers a directory without its slash with a redirect to the path it was given.
    if (dirSet.has(rel)) {
      return { kind: 'redirect', location: `${sendPath.replace(/^\/{2,}/, '/')}/`, withQuery: false };
    }
    if (htmlExtension && !path.posix.extname(rel) && fileSet.has(`${rel}.html`)) {
      return fileDecision(`${rel}.html`, sendPath, urlPath);
    }
    return undefined;
  }

  // Most requests ask for the same few paths, and most are pages, not files: remembering the
  // decision per path spares the decoding and normalising above (~7 µs a request, measured).
  // Bounded: long paths are not kept, and a full memo starts over.
  const memo = new Map<string, PathDecision | null>();
  return function resolve(rawUrl: string): StaticDecision | undefined {
    const hash = rawUrl.indexOf('#');
    const url = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
    const q = url.indexOf('?');
    const urlPath = q === -1 ? url : url.slice(0, q);
    let decision = memo.get(urlPath);
    if (decision === undefined) {
      decision = decide(urlPath) ?? null;
      if (urlPath.length <= RESOLVER_MEMO_MAX_PATH) {
        if (memo.size >= RESOLVER_MEMO_MAX_ENTRIES) memo.clear();
        memo.set(urlPath, decision);
      }
    }
    if (decision === null) return undefined;
    if (decision.kind === 'file') return decision;
    return {
      kind: 'redirect',
      location: decision.withQuery && q !== -1 ? decision.location + url.slice(q) : decision.location,
    };
  };
}

/** "/about", "/about/", "/about.html", "/about/index.html" → "/about"; "/" stays. */
function pageKey(pathname: string): string {
  const p = `/${pathname.replace(/^\/+/, '')}`
    .replace(/\/index\.html$/, '/')
    .replace(/\.html$/, '')
    .replace(/\/+$/, '');
  return p === '' ? '/' : p;
}

/** Every file under the client dir as a URL path ("/_astro/x.js"), read once at start-up. */
export async function listClientFiles(clientDir: string): Promise<string[]> {
  try {
    const entries = await readdir(clientDir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => `/${path.relative(clientDir, path.join(e.parentPath, e.name)).split(path.sep).join('/')}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Serves the client dir in front of the catch-all routes (`/*`). The client dir is listed once at
 * start-up: deciding "file, redirect or page?" costs no syscall per request, and a path that is
 * not a known file never reaches the filesystem. Only GET and HEAD; other methods go to Astro.
 */
async function staticFiles(fastify: import('fastify').FastifyInstance, options: StaticFilesOptions): Promise<void> {
  if (!options || typeof options.clientDir !== 'string' || !path.isAbsolute(options.clientDir)) {
    throw new TypeError('static-files: options.clientDir must be an absolute path (the build’s client dir)');
  }
  if (typeof options.assetsPrefix !== 'string' || !/^\/.*\/$/.test(options.assetsPrefix)) {
    throw new TypeError(`static-files: options.assetsPrefix must look like "/_astro/" (got ${options.assetsPrefix})`);
  }
  const resolve = createStaticResolver(await listClientFiles(options.clientDir), options);
  // serve: false: only reply.sendFile (send: ETag, Last-Modified, Range, 304, Content-Type);
  // which file, if any, is decided above.
  await fastify.register(fastifyStatic, {
    root: options.clientDir,
    serve: false,
    cacheControl: false,
    etag: true,
    lastModified: true,
    acceptRanges: true,
    // Dotfiles are refused by the resolver (all but /.well-known/*) before send sees a path.
    dotfiles: 'allow',
  });
  const serve: onRequestHookHandler = (request: FastifyRequest, reply: FastifyReply, done) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return done();
    const decision = resolve(request.raw.url ?? '/');
    if (!decision) return done();
    setRouteLabel(request, ROUTE_LABELS.static);
    if (decision.kind === 'redirect') {
      reply.code(301).header('location', decision.location).send();
      return;
    }
    reply.header('cache-control', decision.cacheControl);
    for (const { key, value } of decision.headers) reply.header(key, value);
    reply.sendFile(`/${decision.file}`);
  };
  // Files shadow the catch-all routes only, as a static route would: /healthz stays /healthz
  // whatever trailingSlash says.
  fastify.addHook('onRoute', (route) => {
    if (!route.url.endsWith('*')) return;
    const existing = route.onRequest;
    route.onRequest = [serve, ...(Array.isArray(existing) ? existing : existing ? [existing] : [])];
  });
}

export default fp(staticFiles, { name: 'astro-origin-static-files', fastify: '5.x' });
