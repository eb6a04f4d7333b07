// The "cached" row of npm run bench: one docs page (the demo caches /docs/**) three ways, the
// same load each, alternating by round:
//   uncached  our origin with the origin cache off (CACHE_MAX_BYTES=0): every request renders;
//   cached    our origin with the cache on, the page warm in it: every request a hit;
//   static    the same bytes as a file of the build's client dir, served by the same origin.
// Goals (issue 12): cached ≥ 10× uncached req/s, and within 1.5× of the static file.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type LoadResult, loadProblems, runLoad } from './cannon.ts';
import { ROOT } from './paths.ts';
import { bySize, mdxPages } from './site.ts';
import { type Server, spawnOrigin } from './spawn-origin.ts';
import { markdownTable, type Spread, spread, times, withRange } from './stats.ts';

export interface CachedBenchOptions {
  buildDir: string;
  /** A page the demo's route rules cache (a /docs/ page); default: the largest docs MDX page. */
  path?: string;
  connections: number;
  duration: number;
  rounds: number;
  /** Seconds of warm-up per variant before the first round. */
  warmup: number;
  env?: Record<string, string>;
}

export interface CachedBenchResult {
  path: string;
  bytes: number;
  rps: Record<'uncached' | 'cached' | 'static', Spread>;
  /** Per round: cached / uncached, static / cached. */
  speedup: Spread;
  staticOverCached: Spread;
  problems: string[];
  markdown: string;
}

const STATIC_NAME = 'bench-cached-copy.html';

export async function benchCached(o: CachedBenchOptions): Promise<CachedBenchResult> {
  // A copy of the build whose client dir also holds the page as a file: the static plugin
  // lists the client dir at start-up, so the file must be there before the origin starts.
  // Inside the repository, so the build's imports still resolve from its node_modules.
  const copy = mkdtempSync(path.join(ROOT, 'dist-bench-cached-'));
  cpSync(path.resolve(ROOT, o.buildDir), copy, { recursive: true });
  let uncached: Server | undefined;
  let cached: Server | undefined;
  const problems: string[] = [];
  try {
    uncached = await spawnOrigin({ name: 'bench-uncached', buildDir: copy, env: { ...o.env, WORKERS: '1' } });
    const pagePath =
      o.path ||
      (
        await bySize(
          uncached.url,
          mdxPages().filter((p) => p.startsWith('/docs/')),
        )
      )[0]?.path;
    if (!pagePath) throw new Error('no docs MDX page found in demo/pages/docs');
    const page = await fetch(uncached.url + pagePath);
    if (page.status !== 200)
      throw new Error(`${pagePath} answered ${page.status}; pick a docs page with --cached-path`);
    const bytes = Buffer.from(await page.arrayBuffer());
    writeFileSync(path.join(copy, 'client', STATIC_NAME), bytes);
    cached = await spawnOrigin({ name: 'bench-cached', buildDir: copy, cache: true, env: { ...o.env, WORKERS: '1' } });
    const hit = await fetch(cached.url + pagePath, { headers: { 'x-warm': '1' } });
    await hit.arrayBuffer();
    if (!/s-maxage/.test(hit.headers.get('cache-control') ?? ''))
      problems.push(`${pagePath} is not cached by the origin (Cache-Control: ${hit.headers.get('cache-control')})`);
    const variants = [
      { name: 'uncached', url: uncached.url + pagePath },
      { name: 'cached', url: cached.url + pagePath },
      { name: 'static', url: `${cached.url}/${STATIC_NAME}` },
    ] as const;
    for (const v of variants) await runLoad({ url: v.url, connections: o.connections, duration: o.warmup });
    const runs: Record<string, LoadResult[]> = { uncached: [], cached: [], static: [] };
    for (let round = 0; round < o.rounds; round++) {
      // Alternate the order too, so no variant always runs on a machine just warmed by another.
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        const result = await runLoad({ url: v.url, connections: o.connections, duration: o.duration });
        runs[v.name]!.push(result);
        problems.push(...loadProblems(result).map((p) => `${v.name} round ${round + 1}: ${p}`));
        console.error(`cached row, round ${round + 1}: ${v.name} ${Math.round(result.rps)} req/s`);
      }
    }
    const rps = (name: string) => spread(runs[name]!.map((r) => r.rps));
    const perRound = (a: string, b: string) => spread(runs[a]!.map((r, i) => r.rps / runs[b]![i]!.rps));
    const result = {
      path: pagePath,
      bytes: bytes.byteLength,
      rps: { uncached: rps('uncached'), cached: rps('cached'), static: rps('static') },
      speedup: perRound('cached', 'uncached'),
      staticOverCached: perRound('static', 'cached'),
      problems,
    };
    return { ...result, markdown: cachedMarkdown(result, o) };
  } finally {
    await Promise.all([uncached?.stop(), cached?.stop()]);
    rmSync(copy, { recursive: true, force: true });
  }
}

function cachedMarkdown(r: Omit<CachedBenchResult, 'markdown'>, o: CachedBenchOptions): string {
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    `### Cached: the origin cache on a docs page (\`${r.path}\`, ${r.bytes} bytes)`,
    '',
    `Our origin only, WORKERS=1, ${o.connections} connections, ${o.duration} s per run, ${o.rounds} rounds alternating; ` +
      'uncached = CACHE_MAX_BYTES=0 (every request renders), cached = every request a hit, static = the same bytes ' +
      'as a file of the client dir, served by the cached origin. Medians (min–max); ratios per round.',
    '',
    markdownTable(
      ['variant', 'req/s'],
      [
        ['uncached', withRange(r.rps.uncached)],
        ['cached', withRange(r.rps.cached)],
        ['static file', withRange(r.rps.static)],
      ],
    ),
    '',
    `- cached / uncached: ${withRange(r.speedup, times)} (goal ≥ 10×: ${mark(r.speedup.median >= 10)})`,
    `- static / cached: ${withRange(r.staticOverCached, times)} (goal ≤ 1.5×: ${mark(r.staticOverCached.median <= 1.5)})`,
    ...r.problems.map((p) => `- invalid: ${p}`),
  ].join('\n');
}
