// npm run bench — what our server costs around Astro: this origin against the bare yardstick
// (load/bare-server.ts: node:http around the same build's App, nothing else) and against the
// official @astrojs/node adapter (standalone, the same demo site built with it), identical
// autocannon loads alternating on a tiny .astro page, an .astro page with 20 async components
// and the largest MDX page. For each run: req/s, p99 and the server's CPU time per request
// (from /proc: steadier than req/s when autocannon shares the cores). Our origin runs in its
// default configuration: logs at info, metrics on and scraped every --scrape-interval seconds,
// POOL_POLICY=off. Optional: the in-process ceiling (--ceiling), the static asset (--asset),
// CPU profiles of every server (--profile). Then, unless --no-paced, the same pages paced side
// by side (lib/paced.ts): the three servers at once on one CPU, each at the same fixed rate, for
// CPU-per-request ratios steadier than the closed-loop runs give, and each server's idle CPU.
import { POOL_POLICIES, type PoolPolicyName } from '../src/config.ts';
import { NODE_FLAGS, RUNTIME_V8_FLAGS } from '../src/node-flags.ts';
import { alternate, pairedRatio, type Run, spreadOf, type Target, type Variant } from './lib/ab.ts';
import { benchCached, type CachedBenchResult } from './lib/bench-cached.ts';
import { buildDirFor } from './lib/build.ts';
import { runLoad } from './lib/cannon.ts';
import { measureCeiling } from './lib/ceiling.ts';
import { newestProfile, profileMarkdown, summarizeProfile } from './lib/cpuprofile.ts';
import { readOptions } from './lib/options.ts';
import { firstWarmupSeconds, type PacedResult, pacedRate, pacedRatios, pacedSideBySide } from './lib/paced.ts';
import { reportsDir, stamp } from './lib/paths.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { scrapeEvery, settleSeconds } from './lib/scrape.ts';
import { benchTargets } from './lib/site.ts';
import { benchOursEnv, preloadArgs, type Server, spawnAstroNode, spawnBare, spawnOrigin } from './lib/spawn-origin.ts';
import { fixed, int, markdownTable, type Spread, spread, times, withRange } from './lib/stats.ts';

const opts = readOptions(
  'npm run bench',
  {
    connections: 50,
    duration: 10,
    rounds: 3,
    sets: 1,
    warmup: 30,
    policy: 'off',
    logLevel: 'info',
    scrapeInterval: 15,
    tinyPath: '',
    asyncPath: '',
    mdxPath: '',
    astroPath: '',
    asset: false,
    assetPath: '',
    ceiling: false,
    ceilingWarmup: 10,
    ceilingDuration: 5,
    build: true,
    profile: false,
    profileSeconds: 10,
    cached: true,
    cachedOnly: false,
    cachedPath: '',
    paced: true,
    pacedLoad: 0.2,
    pacedConnections: 16,
    pacedWarmup: 20,
    idleSeconds: 10,
  },
  {
    connections: 'autocannon connections (every server)',
    duration: 'seconds per measured run',
    rounds: 'rounds; in each the servers take turns on each target, in a rotated order',
    sets: 'sets of three servers for the closed loop, each freshly started, warmed up and given --rounds rounds (two processes of one server differ by a few per cent for life)',
    warmup: 'seconds of warm-up per server, spread over the targets',
    policy: `our POOL_POLICY (${POOL_POLICIES.join('|')}); the others run Astro's default`,
    logLevel: 'our LOG_LEVEL (info: one line per request, the default configuration)',
    scrapeInterval: 'seconds between two GETs of our /metrics (Prometheus default: 15); 0 = no scraper',
    tinyPath: 'the tiny .astro page (default /bench/tiny)',
    asyncPath: 'the .astro page with 20 async components (default /bench/async-20)',
    mdxPath: 'the MDX page (default: the largest MDX page of the site)',
    astroPath: 'another .astro page to add (e.g. /)',
    asset: 'add the largest static asset (ours and @astrojs/node only: the bare server has no static files)',
    assetPath: 'the static asset (default: the largest /_astro/ file)',
    ceiling: 'then measure the in-process ceiling: app.render() in a loop, no HTTP',
    ceilingWarmup: 'seconds of warm-up of the in-process ceiling, per page',
    ceilingDuration: 'seconds per ceiling round (same number of rounds)',
    build: 'build dist-load/ and dist-node/ when missing or stale (--no-build to skip)',
    profile: 'then profile every server (--cpu-prof) under the same load, one target at a time',
    profileSeconds: 'seconds of load per target while profiling',
    cached: 'add the "cached" row: a docs page uncached, from the origin cache, and as a static file',
    cachedOnly: 'run only the "cached" row',
    cachedPath: 'the docs page of the cached row (default: the largest docs MDX page)',
    paced:
      'then run the pages paced side by side: all servers at once on one CPU, the same rate each (--no-paced to skip)',
    pacedLoad:
      'share of that CPU the servers use together when paced, by their closed-loop CPU per request (evenly paced, a request costs 2-3x that: 0.2 is ~0.5)',
    pacedConnections: 'kept-alive connections per server when paced (lib/pacer.ts)',
    pacedWarmup: 'seconds of paced load per page on each fresh set of servers before it is measured',
    idleSeconds: 'seconds of the idle-CPU measurement before the paced runs (0: none)',
  },
);
const policy = opts.policy as PoolPolicyName;
if (!POOL_POLICIES.includes(policy)) throw new Error(`unknown policy ${policy}`);

const ourBuild = await buildDirFor('origin', opts.build);
if (opts.cachedOnly) await cachedRowOnly();
const nodeBuild = await buildDirFor('node', opts.build);
const BARE = 'bare';
const OURS = 'astro-fastify-origin';
const NODE = '@astrojs/node';
const ourEnv = benchOursEnv({ POOL_POLICY: policy, LOG_LEVEL: opts.logLevel });
/** Paced warm-up: a fresh trio's first page gets long enough for ours' first scrapes to settle (lib/scrape.ts). */
const pacedWarmup = { warmup: opts.pacedWarmup, firstWarmup: settleSeconds(opts.scrapeInterval) };

interface Trio {
  bare: Server;
  ours: Server;
  node: Server;
  /** Stops the scraper and the three servers. */
  stop(): Promise<void>;
}

/** The three servers, ours scraped like Prometheus would (its CPU lands in our figures). */
async function startTrio(): Promise<Trio> {
  const started: Server[] = [];
  let stopScraping: (() => void) | undefined;
  const stop = async () => {
    stopScraping?.();
    await Promise.all(started.map((s) => s.stop()));
  };
  try {
    const bare = await spawnBare({ name: BARE, buildDir: ourBuild });
    started.push(bare);
    const ours = await spawnOrigin({ name: OURS, buildDir: ourBuild, env: ourEnv });
    started.push(ours);
    const node = await spawnAstroNode({ name: NODE, buildDir: nodeBuild });
    started.push(node);
    const metricsUrl = ours.metricsUrl;
    if (opts.scrapeInterval > 0 && metricsUrl) stopScraping = scrapeEvery(metricsUrl, opts.scrapeInterval * 1000);
    return { bare, ours, node, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

if (!(opts.sets >= 1)) throw new Error(`--sets ${opts.sets}: give the number of server sets, 1 or more`);
let found: Target[] | undefined;
const runs: Awaited<ReturnType<typeof alternate>> = { runs: [], problems: [] };
let paced: PacedResult | undefined;
for (let set = 1; set <= opts.sets; set++) {
  if (opts.sets > 1) console.error(`closed loop, set ${set}/${opts.sets}: three fresh servers`);
  let trio: Trio | undefined;
  try {
    trio = await startTrio();
    const { bare, ours, node } = trio;
    found ??= await benchTargets(ours.url, ourBuild, {
      tinyPath: opts.tinyPath,
      asyncPath: opts.asyncPath,
      mdxPath: opts.mdxPath,
      astroPath: opts.astroPath,
      assetPath: opts.assetPath,
      withAsset: opts.asset,
    });
    if (set === 1) console.error(`targets: ${found.map((t) => `${t.name} ${t.paths[0]}`).join(', ')}`);

    const variants: Variant[] = [
      { name: OURS, url: ours.url, pid: ours.child.pid },
      { name: BARE, url: bare.url, pid: bare.child.pid, skip: (t) => t.name === 'static' },
      { name: NODE, url: node.url, pid: node.child.pid },
    ];
    const result = await alternate({
      variants,
      targets: found,
      rounds: opts.rounds,
      connections: opts.connections,
      duration: opts.duration,
      warmup: opts.warmup,
    });
    // Rounds numbered across the sets: ratios pair the servers of one round, so of one set.
    const offset = (set - 1) * opts.rounds;
    runs.runs.push(...result.runs.map((r) => ({ ...r, round: r.round + offset })));
    runs.problems.push(...result.problems.map((p) => (opts.sets > 1 ? `set ${set}: ${p}` : p)));
  } finally {
    await trio?.stop();
  }
}
const targets: Target[] = found!;
if (opts.paced) paced = await pacedRuns();

/**
 * The paced side-by-side rounds, each on three freshly started servers: one process keeps its
 * JIT and heap layout for its whole life, and two runs of the same server in two processes
 * differ by up to ~8 % (measured A/A), so a ratio from one set of processes is biased by that
 * much however many rounds it has. A new set per round puts that spread into the min–max.
 */
async function pacedRuns(): Promise<PacedResult> {
  const merged: PacedResult = { runs: [], idleMsPerSecond: {}, placement: '', problems: [] };
  const idle: Record<string, number[]> = {};
  for (let round = 1; round <= opts.rounds; round++) {
    console.error(`paced round ${round}/${opts.rounds}: three fresh servers`);
    const fresh = await startTrio();
    try {
      const servers = [fresh.ours, fresh.bare, fresh.node].map((s) => ({
        name: s.name,
        url: s.url,
        pid: s.child.pid as number,
      }));
      const result = await pacedSideBySide({
        servers,
        // Static files are not rendered: the paced comparison is about the cost around app.render().
        targets: targets
          .filter((t) => t.name !== 'static')
          .map((t) => ({ name: t.name, paths: t.paths, rate: pacedRateOf(t) })),
        rounds: 1,
        duration: opts.duration,
        ...pacedWarmup,
        connections: opts.pacedConnections,
        idleSeconds: opts.idleSeconds,
      });
      merged.placement = result.placement;
      merged.runs.push(...result.runs.map((r) => ({ ...r, round })));
      merged.problems.push(...result.problems.map((p) => p.replace('paced round 1', `paced round ${round}`)));
      for (const [name, v] of Object.entries(result.idleMsPerSecond)) idle[name] = [...(idle[name] ?? []), v];
    } finally {
      await fresh.stop();
    }
  }
  for (const [name, values] of Object.entries(idle)) merged.idleMsPerSecond[name] = spread(values).median;
  return merged;
}

/**
 * Requests per second each server gets when paced: together they use --paced-load of one CPU,
 * judged by their closed-loop CPU per request on the page (below 1, so none saturates).
 */
function pacedRateOf(target: Target): number {
  const cpu = (r: Run) => r.extra.cpuUsPerRequest ?? NaN;
  return pacedRate(
    opts.pacedLoad,
    [OURS, BARE, NODE].map((name) => spreadOf(runs.runs, name, target.name, cpu).median),
  );
}

const ceilingConcurrency = [...new Set([1, opts.connections])];
const ceilings = new Map<string, { byConcurrency: Record<number, Spread>; best: Spread }>();
if (opts.ceiling) {
  console.error('in-process ceiling (app.render() in a loop, no HTTP, 1 process)…');
  // Renders in flight: 1 (no interleaving) and as many as the load's connections. Large pages
  // render faster one at a time (less live memory, cheaper GC), so the ceiling is the better of the two.
  for (const target of targets.filter((t) => t.name !== 'static')) {
    const byConcurrency: Record<number, Spread> = {};
    for (const concurrency of ceilingConcurrency) {
      const perRound = await measureCeiling({
        buildDir: ourBuild,
        paths: target.paths,
        concurrency,
        warmup: opts.ceilingWarmup,
        duration: opts.ceilingDuration,
        rounds: opts.rounds,
        policy,
      });
      byConcurrency[concurrency] = spread(perRound);
      console.error(
        `ceiling ${target.name} ${target.paths[0]}, ${concurrency} in flight: ${perRound.map((v) => int(v)).join(', ')} renders/s`,
      );
    }
    const best = Object.values(byConcurrency).sort((a, b) => b.median - a.median)[0]!;
    ceilings.set(target.name, { byConcurrency, best });
  }
}

const rps = (r: Run) => r.load.rps;
const p99 = (r: Run) => r.load.p99;
const cpu = (r: Run) => r.extra.cpuUsPerRequest ?? NaN;
const ms = (v: number) => fixed(v, 1);
const us = (v: number) => int(v);
const ratioOr = (a: string, b: string, t: string, figure: (r: Run) => number) => {
  const s = pairedRatio(runs.runs, a, b, t, figure);
  return s.n ? withRange(s, times) : 'n/a';
};

const table = markdownTable(
  [
    'page',
    'path',
    'CPU µs/request: ours',
    'bare',
    '@astrojs/node',
    'CPU ours / bare',
    'CPU ours / node',
    'req/s: ours',
    'bare',
    '@astrojs/node',
    'req/s ours / bare',
    'req/s ours / node',
    'p99 ms: ours',
    'bare',
    '@astrojs/node',
    'p99 ours / node',
  ],
  targets.map((t) => [
    t.name,
    `\`${t.paths[0]}\``,
    withRange(spreadOf(runs.runs, OURS, t.name, cpu), us),
    withRange(spreadOf(runs.runs, BARE, t.name, cpu), us),
    withRange(spreadOf(runs.runs, NODE, t.name, cpu), us),
    ratioOr(OURS, BARE, t.name, cpu),
    ratioOr(OURS, NODE, t.name, cpu),
    withRange(spreadOf(runs.runs, OURS, t.name, rps)),
    withRange(spreadOf(runs.runs, BARE, t.name, rps)),
    withRange(spreadOf(runs.runs, NODE, t.name, rps)),
    ratioOr(OURS, BARE, t.name, rps),
    ratioOr(OURS, NODE, t.name, rps),
    withRange(spreadOf(runs.runs, OURS, t.name, p99), ms),
    withRange(spreadOf(runs.runs, BARE, t.name, p99), ms),
    withRange(spreadOf(runs.runs, NODE, t.name, p99), ms),
    ratioOr(OURS, NODE, t.name, p99),
  ]),
);

const pacedPart: string[] = [];
if (paced) {
  const pacedCpu = (server: string, target: string) =>
    spread(paced!.runs.filter((r) => r.server === server && r.target === target).map((r) => r.cpuUsPerRequest));
  const pacedTargets = [...new Set(paced.runs.map((r) => r.target))];
  const pacedRatio = (a: string, b: string, t: string) => {
    const s = spread(pacedRatios(paced!, a, b, t));
    return s.n ? withRange(s, times) : 'n/a';
  };
  pacedPart.push(
    '',
    `### Paced side by side (${paced.placement})`,
    '',
    `The three servers at once, each at the same fixed rate, one request every 1/rate s (lib/pacer.ts; together ~${opts.pacedLoad} of one CPU by the ` +
      `closed-loop CPU per request above), ${opts.pacedConnections} connections each; ${opts.rounds} rounds, each on ` +
      `three freshly started servers: ${opts.pacedWarmup} s warm-up (${firstWarmupSeconds(pacedWarmup)} s before the first page: ours' first scrapes disturb its JIT once) then ${opts.duration} s per page. Same machine ` +
      'second by second, same load: steadier CPU ratios than the closed-loop ones. Below saturation, they include what ' +
      'a server spends per second whatever its traffic (timers, samplers), spread over its requests.',
    '',
    markdownTable(
      ['page', 'req/s each', 'CPU µs/request: ours', 'bare', '@astrojs/node', 'CPU ours / bare', 'CPU ours / node'],
      pacedTargets.map((t) => [
        t,
        String(paced!.runs.find((r) => r.target === t)?.rate ?? ''),
        withRange(pacedCpu(OURS, t), us),
        withRange(pacedCpu(BARE, t), us),
        withRange(pacedCpu(NODE, t), us),
        pacedRatio(OURS, BARE, t),
        pacedRatio(OURS, NODE, t),
      ]),
    ),
  );
  if (Object.keys(paced.idleMsPerSecond).length)
    pacedPart.push(
      '',
      `Idle CPU (no requests; our /metrics still scraped; median of the rounds): ${Object.entries(paced.idleMsPerSecond)
        .map(([name, v]) => `${name} ${fixed(v, 1)} ms/s`)
        .join(', ')}.`,
    );
}

// The goals of issue 11: CPU per request ≤ 1.2× bare on the small pages; req/s ≥ 1.5×
// @astrojs/node on small pages and ≥ 1.1× on the MDX page; p99 no worse than @astrojs/node.
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
const goals: string[] = [];
for (const t of targets) {
  if (t.name === 'static') continue;
  const small = t.name !== 'mdx';
  const cpuVsBare = pairedRatio(runs.runs, OURS, BARE, t.name, cpu).median;
  const rpsVsNode = pairedRatio(runs.runs, OURS, NODE, t.name, rps).median;
  const p99VsNode = pairedRatio(runs.runs, OURS, NODE, t.name, p99).median;
  const pacedVsBare = paced ? spread(pacedRatios(paced, OURS, BARE, t.name)).median : NaN;
  const needRps = small ? 1.5 : 1.1;
  goals.push(
    `- ${t.name}: ` +
      (small
        ? `CPU/request ${times(cpuVsBare)} of bare closed-loop (goal ≤ 1.2×: ${mark(cpuVsBare <= 1.2)})` +
          (Number.isFinite(pacedVsBare)
            ? `, ${times(pacedVsBare)} paced side by side (${mark(pacedVsBare <= 1.2)}); `
            : '; ')
        : '') +
      `req/s ${times(rpsVsNode)} of @astrojs/node (goal ≥ ${needRps}×: ${mark(rpsVsNode >= needRps)}); ` +
      `p99 ${times(p99VsNode)} of @astrojs/node (goal ≤ 1×: ${mark(p99VsNode <= 1)})`,
  );
}

const ceilingPart = opts.ceiling
  ? [
      '',
      `In-process ceiling: app.render() of our build in one process, no HTTP, ${ceilingConcurrency.join(' or ')} renders in flight, ` +
        `${opts.ceilingWarmup} s warm-up then ${opts.rounds} × ${opts.ceilingDuration} s (renders/s).`,
      '',
      markdownTable(
        ['ceiling', ...ceilingConcurrency.map((c) => `${c} in flight`), 'ours % of best', 'bare % of best'],
        [...ceilings].map(([name, c]) => [
          name,
          ...ceilingConcurrency.map((k) => withRange(c.byConcurrency[k]!)),
          `${fixed((100 * spreadOf(runs.runs, OURS, name, rps).median) / c.best.median, 0)} %`,
          `${fixed((100 * spreadOf(runs.runs, BARE, name, rps).median) / c.best.median, 0)} %`,
        ]),
      ),
    ]
  : [];

let profiles = '';
if (opts.profile) profiles = await profileAll(targets);
const cached = opts.cached ? await cachedRow() : undefined;

const markdown = [
  `# Per-request cost: ${OURS} vs bare node:http vs ${NODE} (${new Date().toISOString()})`,
  '',
  `${opts.connections} connections, ${opts.duration} s per run, ${opts.rounds} rounds (servers take turns, rotated order)` +
    (opts.sets > 1 ? ` on each of ${opts.sets} sets of freshly started servers` : '') +
    ', ' +
    `${opts.warmup} s warm-up per server. Ours: POOL_POLICY=${policy}, WORKERS=1, LOG_LEVEL=${opts.logLevel} (lines to a file), ` +
    `metrics on, /metrics scraped every ${opts.scrapeInterval || '∞'} s. Bare: load/bare-server.ts on the same build, its App as built (it re-imports the page's module every render; ours imports it once). ` +
    `Ours and bare run with ${NODE_FLAGS.join(' ')} (as npm start), and ${RUNTIME_V8_FLAGS.join(' ')} (ours sets it for itself, bare is given it); @astrojs/node as its docs run it. ` +
    'CPU µs/request: user+system time of the server process (all threads, /proc) over the run ÷ responses. ' +
    'Medians with (min–max) over the rounds; ratios are per-round pairs.',
  '',
  table,
  ...pacedPart,
  ...ceilingPart,
  '',
  ...goals,
  '',
  machineNote(),
  ...(runs.problems.length || paced?.problems.length
    ? ['', '**Invalid runs:**', ...[...runs.problems, ...(paced?.problems ?? [])].map((p) => `- ${p}`)]
    : []),
  ...(cached ? ['', cached.markdown] : []),
  ...(profiles ? ['', profiles] : []),
].join('\n');
console.log(`\n${markdown}\n`);
writeReport('bench', markdown, {
  opts,
  targets,
  runs: runs.runs,
  ceilings: Object.fromEntries(ceilings),
  problems: runs.problems,
  paced,
  cached,
});
process.exitCode = runs.problems.length || paced?.problems.length || cached?.problems.length ? 1 : 0;

/** The origin cache's row (issue 12), same load settings as the peer comparison. */
async function cachedRow(): Promise<CachedBenchResult> {
  console.error('cached row: a docs page uncached, from the origin cache, and as a static file…');
  // The demo as shipped: the build of the other rows has no cache (load/astro.config.load.mjs).
  return benchCached({
    buildDir: await buildDirFor('demo', opts.build),
    path: opts.cachedPath,
    connections: opts.connections,
    duration: opts.duration,
    rounds: opts.rounds,
    warmup: Math.max(2, Math.round(opts.warmup / 4)),
    env: { POOL_POLICY: policy },
  });
}

/** --cached-only: the cached row alone, its own report. */
async function cachedRowOnly(): Promise<never> {
  const result = await cachedRow();
  const [title, ...rest] = result.markdown.split('\n');
  const markdown = [`# ${title!.replace(/^### /, '')} (${new Date().toISOString()})`, ...rest, '', machineNote()].join(
    '\n',
  );
  console.log(`\n${markdown}\n`);
  writeReport('bench-cached', markdown, result);
  process.exit(result.problems.length ? 1 : 0);
}

/** Profiles each server (--cpu-prof) under the same load, one at a time; returns markdown. */
async function profileAll(targetsToLoad: Target[]): Promise<string> {
  const parts: string[] = ['### CPU profiles (--cpu-prof, same load per target)'];
  const cpuProf = (dir: string) => ['--cpu-prof', '--cpu-prof-dir', dir];
  const spawners: Array<[string, (dir: string) => Promise<Server>]> = [
    [OURS, (dir) => spawnOrigin({ name: `${OURS}-profile`, buildDir: ourBuild, env: ourEnv, nodeArgs: cpuProf(dir) })],
    [
      BARE,
      (dir) =>
        spawnBare({
          name: `${BARE}-profile`,
          buildDir: ourBuild,
          env: { PRELOAD_EXIT_ON_SIGTERM: '1' },
          nodeArgs: [...cpuProf(dir), ...preloadArgs()],
        }),
    ],
    [
      NODE,
      (dir) =>
        spawnAstroNode({
          name: `${NODE}-profile`,
          buildDir: nodeBuild,
          env: { PRELOAD_EXIT_ON_SIGTERM: '1' },
          nodeArgs: [...cpuProf(dir), ...preloadArgs()],
        }),
    ],
  ];
  for (const target of targetsToLoad) {
    for (const [name, spawn] of spawners) {
      if (name === BARE && target.name === 'static') continue;
      const dir = reportsDir('profiles', `${stamp()}-${target.name}-${name.replace(/\W+/g, '_')}`);
      const server = await spawn(dir);
      try {
        // Warm, then the profiled load (the profile covers both; the warm-up share is small).
        await runLoad({
          url: server.url,
          connections: opts.connections,
          duration: opts.profileSeconds,
          requests: [{ method: 'GET', path: target.paths[0] }],
        });
      } finally {
        await server.stop();
      }
      const file = newestProfile(dir);
      if (!file) {
        parts.push(`(no profile written for ${name} ${target.name})`);
        continue;
      }
      console.error(`profile: ${file}`);
      parts.push('', profileMarkdown(`${name}, ${target.name} \`${target.paths[0]}\``, summarizeProfile(file, 12)));
    }
  }
  return parts.join('\n');
}
