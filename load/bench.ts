// npm run bench — the peer comparison: this origin vs the official @astrojs/node adapter
// (standalone), the same demo site built twice, identical autocannon loads alternating A/B on
// an MDX page, an .astro page and a static asset; plus the in-process ceiling (app.render()
// in a loop, no HTTP, one process) and, with --profile, where each server's CPU time goes.
import { POOL_POLICIES, type PoolPolicyName } from '../src/config.ts';
import { alternate, pairedRatio, spreadOf, type Target, type Variant } from './lib/ab.ts';
import { benchCached, type CachedBenchResult } from './lib/bench-cached.ts';
import { buildDirFor } from './lib/build.ts';
import { runLoad } from './lib/cannon.ts';
import { measureCeiling } from './lib/ceiling.ts';
import { newestProfile, profileMarkdown, summarizeProfile } from './lib/cpuprofile.ts';
import { readOptions } from './lib/options.ts';
import { reportsDir, stamp } from './lib/paths.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { benchTargets } from './lib/site.ts';
import { preloadArgs, type Server, spawnAstroNode, spawnOrigin } from './lib/spawn-origin.ts';
import { fixed, int, markdownTable, percent, type Spread, spread, times, withRange } from './lib/stats.ts';

const opts = readOptions(
  'npm run bench',
  {
    connections: 50,
    duration: 10,
    rounds: 3,
    warmup: 24,
    ceilingWarmup: 10,
    ceilingDuration: 5,
    policy: 'off',
    mdxPath: '',
    astroPath: '/',
    assetPath: '',
    build: true,
    profile: false,
    profileSeconds: 10,
    cached: true,
    cachedOnly: false,
    cachedPath: '',
  },
  {
    connections: 'autocannon connections (both servers)',
    duration: 'seconds per measured run',
    rounds: 'A/B rounds (each target, each server)',
    warmup: 'seconds of warm-up per server, spread over the targets',
    ceilingWarmup: 'seconds of warm-up of the in-process ceiling, per page',
    ceilingDuration: 'seconds per ceiling round (same number of rounds)',
    policy: `our POOL_POLICY (${POOL_POLICIES.join('|')}); @astrojs/node always runs Astro's default`,
    mdxPath: 'the MDX page (default: the largest MDX page of the site)',
    astroPath: 'the .astro page',
    assetPath: 'the static asset (default: the largest /_astro/ file)',
    build: 'build dist/ and dist-node/ when missing or stale (--no-build to skip)',
    profile: 'after the bench, profile both servers (--cpu-prof) under the same load',
    profileSeconds: 'seconds of load per target while profiling',
    cached: 'add the "cached" row: a docs page uncached, from the origin cache, and as a static file',
    cachedOnly: 'run only the "cached" row',
    cachedPath: 'the docs page of the cached row (default: the largest docs MDX page)',
  },
);
const policy = opts.policy as PoolPolicyName;
if (!POOL_POLICIES.includes(policy)) throw new Error(`unknown policy ${policy}`);

const ourBuild = await buildDirFor('origin', opts.build);
if (opts.cachedOnly) await cachedRowOnly();
const nodeBuild = await buildDirFor('node', opts.build);
const OURS = 'astro-fastify-origin';
const NODE = '@astrojs/node';
const ourEnv = { POOL_POLICY: policy, WORKERS: '1' };

let ours: Server | undefined;
let node: Server | undefined;
let targets: Target[];
let runs: Awaited<ReturnType<typeof alternate>>;
try {
  ours = await spawnOrigin({ name: OURS, buildDir: ourBuild, env: ourEnv });
  node = await spawnAstroNode({ name: NODE, buildDir: nodeBuild });

  targets = await benchTargets(ours.url, ourBuild, {
    mdxPath: opts.mdxPath,
    astroPath: opts.astroPath,
    assetPath: opts.assetPath,
    withAsset: true,
  });
  console.error(`targets: ${targets.map((t) => `${t.name} ${t.paths[0]}`).join(', ')}`);

  const variants: Variant[] = [
    { name: OURS, url: ours.url },
    { name: NODE, url: node.url },
  ];
  runs = await alternate({
    variants,
    targets,
    rounds: opts.rounds,
    connections: opts.connections,
    duration: opts.duration,
    warmup: opts.warmup,
  });
} finally {
  await Promise.all([ours?.stop(), node?.stop()]);
}

console.error('in-process ceiling (app.render() in a loop, no HTTP, 1 process)…');
// Renders in flight: 1 (no interleaving) and as many as the load's connections. Large pages
// render faster one at a time (less live memory, cheaper GC), so the ceiling is the better of the two.
const ceilingConcurrency = [...new Set([1, opts.connections])];
const ceilings = new Map<string, { byConcurrency: Record<number, Spread>; best: Spread }>();
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

const rps = (r: { load: { rps: number } }) => r.load.rps;
const p99 = (r: { load: { p99: number } }) => r.load.p99;
const rows = targets.map((t) => {
  const oursRps = spreadOf(runs.runs, OURS, t.name, rps);
  const nodeRps = spreadOf(runs.runs, NODE, t.name, rps);
  const ceiling = ceilings.get(t.name)?.best;
  return {
    target: t,
    oursRps,
    nodeRps,
    rpsRatio: pairedRatio(runs.runs, OURS, NODE, t.name, rps),
    oursP99: spreadOf(runs.runs, OURS, t.name, p99),
    nodeP99: spreadOf(runs.runs, NODE, t.name, p99),
    p99Ratio: pairedRatio(runs.runs, OURS, NODE, t.name, p99),
    ceiling,
    oursOfCeiling: ceiling ? oursRps.median / ceiling.median : NaN,
    nodeOfCeiling: ceiling ? nodeRps.median / ceiling.median : NaN,
  };
});

const ms = (v: number) => fixed(v, 1);
const table = markdownTable(
  [
    'target',
    'path',
    `${OURS} req/s`,
    `${NODE} req/s`,
    'req/s ratio (ours / node)',
    'ours p99 ms',
    'node p99 ms',
    'p99 ratio (ours / node)',
    'ceiling renders/s (best)',
    'ours % of ceiling',
    'node % of ceiling',
  ],
  rows.map((r) => [
    r.target.name,
    `\`${r.target.paths[0]}\``,
    withRange(r.oursRps),
    withRange(r.nodeRps),
    withRange(r.rpsRatio, times),
    withRange(r.oursP99, ms),
    withRange(r.nodeP99, ms),
    withRange(r.p99Ratio, times),
    r.ceiling ? withRange(r.ceiling) : 'n/a',
    percent(r.oursOfCeiling, 0),
    percent(r.nodeOfCeiling, 0),
  ]),
);

// The goals of the issue: ≥ 1.5× on small pages, ≥ 1.15× on large ones, p99 no worse,
// ≥ 80 % of the in-process ceiling.
const goals: string[] = [];
for (const r of rows) {
  const need = r.target.name === 'mdx' ? 1.15 : r.target.name === 'astro' ? 1.5 : 1;
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  goals.push(
    `- ${r.target.name}: req/s ${times(r.rpsRatio.median)} of @astrojs/node (goal ≥ ${need}×: ${mark(r.rpsRatio.median >= need)}); ` +
      `p99 ${times(r.p99Ratio.median)} (goal ≤ 1×: ${mark(r.p99Ratio.median <= 1)})` +
      (r.ceiling
        ? `; ${percent(r.oursOfCeiling, 0)} of the in-process ceiling (goal ≥ 80 %: ${mark(r.oursOfCeiling >= 0.8)})`
        : ''),
  );
}

let profiles = '';
if (opts.profile) profiles = await profileBoth(targets);
const cached = opts.cached ? await cachedRow() : undefined;

const markdown = [
  `# Peer comparison: ${OURS} vs ${NODE} (${new Date().toISOString()})`,
  '',
  `${opts.connections} connections, ${opts.duration} s per run, ${opts.rounds} rounds alternating A/B, ${opts.warmup} s warm-up per server; ` +
    `our POOL_POLICY=${policy}, WORKERS=1, LOG_LEVEL=warn, metrics on; medians with (min–max) over the rounds; ` +
    `ratios are per-round pairs. Ceiling: app.render() of our build in one process, no HTTP, ${ceilingConcurrency.join(' or ')} renders in flight ` +
    `(the better counts), ${opts.ceilingWarmup} s warm-up then ${opts.rounds} × ${opts.ceilingDuration} s.`,
  '',
  table,
  '',
  markdownTable(
    ['ceiling', ...ceilingConcurrency.map((c) => `${c} in flight`)],
    [...ceilings].map(([name, c]) => [name, ...ceilingConcurrency.map((k) => withRange(c.byConcurrency[k]!))]),
  ),
  '',
  ...goals,
  '',
  machineNote(),
  ...(runs.problems.length ? ['', '**Invalid runs:**', ...runs.problems.map((p) => `- ${p}`)] : []),
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
  cached,
});
process.exitCode = runs.problems.length || cached?.problems.length ? 1 : 0;

/** The origin cache's row (issue 12), same load settings as the peer comparison. */
function cachedRow(): Promise<CachedBenchResult> {
  console.error('cached row: a docs page uncached, from the origin cache, and as a static file…');
  return benchCached({
    buildDir: ourBuild,
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
async function profileBoth(targetsToLoad: Target[]): Promise<string> {
  const parts: string[] = ['### CPU profiles (--cpu-prof, same load per target)'];
  const spawners: Array<[string, (dir: string) => Promise<Server>]> = [
    [
      OURS,
      (dir) =>
        spawnOrigin({
          name: `${OURS}-profile`,
          buildDir: ourBuild,
          env: ourEnv,
          nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
        }),
    ],
    [
      NODE,
      (dir) =>
        spawnAstroNode({
          name: `${NODE}-profile`,
          buildDir: nodeBuild,
          env: { PRELOAD_EXIT_ON_SIGTERM: '1' },
          nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir, ...preloadArgs()],
        }),
    ],
  ];
  for (const target of targetsToLoad) {
    for (const [name, spawn] of spawners) {
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
