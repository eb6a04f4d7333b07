// The concurrency-safety scenarios with the origin cache on (npm run load, and
// test/load/cache-safety.test.ts):
//  - isolation: the probe load with every request's own token, on /cache/probe (cacheable, keyed
//    by its query and, through Vary, by x-probe-token) beside the uncached probe pages: every
//    response must still show only its own token, while the cache stores (and evicts) pages;
//  - hammer: one cacheable page under load must be rendered once per maxAge, not once per request.
import { randomBytes } from 'node:crypto';
import { loadProblems, runLoad } from './cannon.ts';
import { runProbe, type SafetyResult } from './safety-run.ts';
import { spawnOrigin } from './spawn-origin.ts';

export const CACHE_PROBE_PATHS = ['/cache/probe', '/probe', '/probe-astro'] as const;
/** Small enough that the probe's stored pages overflow it: eviction runs under load too. */
export const CACHE_PROBE_MAX_BYTES = 4 * 1024 * 1024;

const metric = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

export interface CacheSafetyResult extends SafetyResult {
  /** Requests the cache stored (misses), evicted, and served from a copy (hits). */
  cache: { miss: number; hit: number; evictions: number; bytes: number };
}

/** The probe with the cache on; fails on any crossed token, and if /cache/probe was not stored. */
export async function runCacheSafety(o: {
  connections: number;
  amount?: number;
  duration?: number;
  buildDir?: string;
  maxBytes?: number;
}): Promise<CacheSafetyResult> {
  const maxBytes = o.maxBytes ?? CACHE_PROBE_MAX_BYTES;
  const origin = await spawnOrigin({
    name: 'safety-cache',
    buildDir: o.buildDir,
    cache: true,
    env: { CACHE_MAX_BYTES: String(maxBytes) },
  });
  try {
    const result = await runProbe({
      url: origin.url,
      connections: o.connections,
      amount: o.amount,
      duration: o.duration,
      paths: CACHE_PROBE_PATHS,
    });
    const text = await (await fetch(origin.metricsUrl!)).text();
    const cache = {
      miss: metric(text, /^origin_cache_requests_total\{result="miss"\} (\S+)$/m),
      hit: metric(text, /^origin_cache_requests_total\{result="hit"\} (\S+)$/m),
      evictions: metric(text, /^origin_cache_evictions_total (\S+)$/m),
      bytes: metric(text, /^origin_cache_bytes (\S+)$/m),
    };
    // Every /cache/probe request has a token of its own: each must be a miss that was stored.
    const cacheable = result.counts.byPath['/cache/probe'] ?? 0;
    if (cache.miss !== cacheable)
      result.problems.push(`${cache.miss} responses stored, expected one per /cache/probe request (${cacheable})`);
    if (cache.bytes > maxBytes)
      result.problems.push(`the cache holds ${cache.bytes} bytes, over its budget of ${maxBytes}`);
    if (origin.child.exitCode !== null) result.problems.push(`the origin exited during the run; log ${origin.logFile}`);
    return { policy: 'off, cache on', ...result, cache };
  } finally {
    await origin.stop();
  }
}

export interface HammerResult {
  path: string;
  maxAge: number;
  seconds: number;
  responses: number;
  renders: number;
  /** Most renders one-per-maxAge allows over the run: every window that started, plus one. */
  allowed: number;
  problems: string[];
}

/** One cacheable page (maxAge, no swr) under `connections` for `seconds`: renders ≤ windows + 1. */
export async function runCacheHammer(o: {
  connections: number;
  seconds: number;
  maxAge: number;
  buildDir?: string;
}): Promise<HammerResult> {
  const origin = await spawnOrigin({ name: 'hammer-cache', buildDir: o.buildDir, cache: true });
  try {
    const key = randomBytes(4).toString('hex');
    const path = `/cache/stamp?maxAge=${o.maxAge}&delay=20&hammer=${key}`;
    const load = await runLoad({ url: origin.url + path, connections: o.connections, duration: o.seconds });
    const counts = (await (await fetch(`${origin.url}/cache/renders`)).json()) as { byKey: Record<string, number> };
    const renders = counts.byKey[`GET ${path}`] ?? 0;
    const allowed = Math.ceil(load.seconds / o.maxAge) + 1;
    const problems = loadProblems(load);
    if (renders < 1 || renders > allowed)
      problems.push(
        `${renders} renders in ${load.seconds.toFixed(1)} s with maxAge ${o.maxAge} s (at most ${allowed})`,
      );
    return { path, maxAge: o.maxAge, seconds: load.seconds, responses: load.responses, renders, allowed, problems };
  } finally {
    await origin.stop();
  }
}
