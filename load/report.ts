// npm run load:report — the seed study's method (../shared/seed/queue-rendering-memory-study.md)
// applied to SSR: the same fixed work (N requests) for each renderer / pool-policy variant, in
// one run, alternating, with the seed's columns (speed, latency, CPU, memory, page faults,
// context switches, pool reuse). Variants: the recursive renderer (the same pages built with
// the queue flag off), the queue renderer with POOL_POLICY off / per-request / shared, and for
// shared a POOL_SIZE sweep. Two targets: one large page, and the mix of every docs page.
// Process figures come from the origin's own /metrics (what users watch) and the kernel's peak
// RSS (VmHWM, reset before each round); heap after GC is read after a forced full GC.
import { setTimeout as sleep } from 'node:timers/promises';
import { alternate, pairedRatio, type Run, spreadOf, type Target, type Variant } from './lib/ab.ts';
import { type BuildName, buildDirFor } from './lib/build.ts';
import { list, readOptions } from './lib/options.ts';
import { peakRssBytes, resetPeakRss } from './lib/procfs.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { delta, type Snapshot, snapshot, startSampler } from './lib/scrape.ts';
import { bySize, mdxPages } from './lib/site.ts';
import { preloadArgs, type Server, spawnOrigin } from './lib/spawn-origin.ts';
import { fixed, int, markdownTable, median, percent, type Spread, sum, times, withRange } from './lib/stats.ts';

const opts = readOptions(
  'npm run load:report',
  {
    quick: false,
    connections: 50,
    rounds: 3,
    warmup: 10,
    amountLarge: 2000,
    amountMix: 5000,
    sizes: '0,1000,5000,20000,100000',
    policies: 'recursive,off,per-request,shared',
    largePath: '',
    build: true,
  },
  {
    quick: 'a short run (1 round, few requests, 3 s warm-up): checks the report works, measures nothing',
    connections: 'autocannon connections',
    rounds: 'rounds; variants take turns in each (order rotated)',
    warmup: 'seconds of warm-up per variant, over both targets',
    amountLarge: 'requests per round per variant on the large page (the fixed work)',
    amountMix: 'requests per round per variant over the docs pages',
    sizes: 'POOL_SIZE values of the shared-pool sweep',
    policies: 'recursive (queue flag off) and/or the queue pool policies off, per-request, shared',
    largePath: 'the large page (default: the largest MDX page of the site)',
    build: 'build dist-load/ and dist-recursive/ when missing or stale (--no-build to skip)',
  },
);
if (opts.quick) Object.assign(opts, { rounds: 1, warmup: 3, amountLarge: 300, amountMix: 600 });

interface VariantSpec {
  label: string;
  build: BuildName;
  env: Record<string, string>;
}
const specs: VariantSpec[] = list(opts.policies).flatMap((policy): VariantSpec[] => {
  if (policy === 'recursive') return [{ label: 'recursive', build: 'recursive', env: { POOL_POLICY: 'off' } }];
  if (policy === 'off' || policy === 'per-request') {
    return [{ label: `queue, ${policy}`, build: 'origin', env: { POOL_POLICY: policy } }];
  }
  if (policy === 'shared') {
    return list(opts.sizes).map((size) => ({
      label: `queue, shared ${int(Number(size))}`,
      build: 'origin' as const,
      env: { POOL_POLICY: 'shared', POOL_SIZE: String(Number(size)) },
    }));
  }
  throw new Error(`unknown policy ${policy} (known: recursive, off, per-request, shared)`);
});
const OFF = 'queue, off';
const BASE = 'recursive';

const buildDirs = new Map<BuildName, string>();
for (const b of new Set(specs.map((s) => s.build))) buildDirs.set(b, await buildDirFor(b, opts.build));

const mix = mdxPages().filter((p) => p.startsWith('/docs'));
const servers = new Map<string, Server>();
let result: Awaited<ReturnType<typeof alternate>>;
let largePath = opts.largePath;
let largeBytes = Number.NaN;
try {
  for (const spec of specs) {
    servers.set(
      spec.label,
      await spawnOrigin({
        name: `report-${spec.label.replace(/\W+/g, '-')}`,
        buildDir: buildDirs.get(spec.build)!,
        env: { ...spec.env, WORKERS: '1' },
        // --expose-gc and the preload: SIGURG runs a full GC, for "heap after GC".
        nodeArgs: preloadArgs({ gc: true }),
      }),
    );
  }
  const first = servers.values().next().value!;
  const sizes = await bySize(first.url, largePath ? [largePath] : mix);
  largePath ||= sizes[0]!.path;
  largeBytes = sizes.find((s) => s.path === largePath)?.bytes ?? Number.NaN;

  const variants: Variant[] = specs.map((spec) => {
    const server = servers.get(spec.label)!;
    let before: Snapshot;
    let sampler: ReturnType<typeof startSampler>;
    return {
      name: spec.label,
      url: server.url,
      async before() {
        resetPeakRss(server.child.pid!);
        before = await snapshot(server.metricsUrl!);
        sampler = startSampler(server.metricsUrl!, 1000);
      },
      async after() {
        const series = await sampler.stop();
        const after = await snapshot(server.metricsUrl!);
        const peakRss = peakRssBytes(server.child.pid!);
        server.child.kill('SIGURG');
        await sleep(300);
        const settled = await snapshot(server.metricsUrl!);
        return {
          ...delta(before, after),
          peakRssBytes: peakRss,
          peakHeapUsedBytes: Math.max(after.heapUsedBytes, ...series.map((s) => s.heapUsedBytes)),
          heapAfterGcBytes: settled.heapUsedBytes,
          poolAvailable: after.poolAvailable,
        };
      },
    };
  });
  const targets: Target[] = [
    { name: 'large', paths: [largePath] },
    { name: 'mix', paths: mix },
  ];
  console.error(
    `${specs.length} variants × ${opts.rounds} rounds; large page ${largePath} (${int(largeBytes)} bytes): ` +
      `${opts.amountLarge} requests; docs mix (${mix.length} pages): ${opts.amountMix} requests; ${opts.connections} connections`,
  );
  // The fixed work differs per target (a large page is slower), so each target alternates on its own.
  const runs: Run[] = [];
  const problems: string[] = [];
  for (const target of targets) {
    const r = await alternate({
      variants,
      targets: [target],
      rounds: opts.rounds,
      connections: opts.connections,
      duration: 0,
      amount: target.name === 'large' ? opts.amountLarge : opts.amountMix,
      warmup: opts.warmup / targets.length,
    });
    runs.push(...r.runs);
    problems.push(...r.problems);
  }
  result = { runs, problems };
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
}

// ---- tables: one per target, a row per variant, each cell the median of the rounds (min–max)
const runs = result.runs;
const x = (key: string) => (r: Run) => r.extra[key] ?? Number.NaN;
const perRequest = (key: string, scale: number) => (r: Run) => (x(key)(r) / r.load.responses) * scale;
const mib = (v: number) => (Number.isFinite(v) ? (v / 1048576).toFixed(1) : '—');
const nodesPerRender = (r: Run) => (x('poolReused')(r) + x('poolNew')(r)) / r.load.responses;
const hitRatio = (r: Run) => x('poolHitRatio')(r);

interface Column {
  title: string;
  figure: (r: Run) => number;
  format: (v: number) => string;
}
const COLUMNS: Column[] = [
  { title: 'req/s', figure: (r) => r.load.rps, format: int },
  { title: 'p50 ms', figure: (r) => r.load.p50, format: (v) => fixed(v, 0) },
  { title: 'p99 ms', figure: (r) => r.load.p99, format: (v) => fixed(v, 0) },
  { title: 'CPU user µs/req', figure: perRequest('cpuUserSeconds', 1e6), format: int },
  { title: 'CPU sys µs/req', figure: perRequest('cpuSystemSeconds', 1e6), format: int },
  { title: 'max RSS MiB', figure: x('peakRssBytes'), format: mib },
  { title: 'heap peak MiB', figure: x('peakHeapUsedBytes'), format: mib },
  { title: 'heap after GC MiB', figure: x('heapAfterGcBytes'), format: mib },
  { title: 'minor faults', figure: x('minorFaults'), format: int },
  { title: 'major faults', figure: x('majorFaults'), format: int },
  { title: 'vol. cs', figure: x('voluntaryCs'), format: int },
  { title: 'invol. cs', figure: x('involuntaryCs'), format: int },
  { title: 'pool hit ratio', figure: hitRatio, format: (v) => percent(v, 1) },
  { title: 'nodes/render', figure: nodesPerRender, format: (v) => fixed(v, 0) },
  { title: 'available nodes at end', figure: x('poolAvailable'), format: int },
];

function figureTable(target: string): string {
  return markdownTable(
    ['variant', ...COLUMNS.map((c) => c.title)],
    specs.map((s) => [
      s.label,
      ...COLUMNS.map((c) => {
        const sp = spreadOf(runs, s.label, target, c.figure);
        return Number.isFinite(sp.median) ? withRange(sp, c.format) : '—';
      }),
    ]),
  );
}

const RATIO_COLUMNS: Array<{ title: string; figure: (r: Run) => number }> = [
  { title: 'req/s', figure: (r) => r.load.rps },
  { title: 'CPU/req', figure: (r) => (x('cpuUserSeconds')(r) + x('cpuSystemSeconds')(r)) / r.load.responses },
  { title: 'max RSS', figure: x('peakRssBytes') },
  { title: 'heap peak', figure: x('peakHeapUsedBytes') },
  { title: 'minor faults', figure: x('minorFaults') },
  { title: 'vol. cs', figure: x('voluntaryCs') },
];

/** Each variant against `base`, per-round pairs (same round, same target): median (min–max). */
function ratioTable(target: string, base: string): string {
  if (!specs.some((s) => s.label === base)) return '';
  return markdownTable(
    ['variant', ...RATIO_COLUMNS.map((c) => `${c.title} ÷ ${base}`)],
    specs
      .filter((s) => s.label !== base)
      .map((s) => [
        s.label,
        ...RATIO_COLUMNS.map((c) => {
          const sp = pairedRatio(runs, s.label, base, target, c.figure);
          return Number.isFinite(sp.median) ? withRange(sp, times) : '—';
        }),
      ]),
  );
}

/** The machine's noise: the spread of a variant's own rounds, and an A/A pair (off vs shared 0). */
function noise(target: string): string {
  const relSpread = (label: string, figure: (r: Run) => number) => {
    const s: Spread = spreadOf(runs, label, target, figure);
    return s.n > 1 ? (s.max - s.min) / s.median : Number.NaN;
  };
  const rps = median(specs.map((s) => relSpread(s.label, (r) => r.load.rps)).filter(Number.isFinite));
  const cpu = median(specs.map((s) => relSpread(s.label, RATIO_COLUMNS[1]!.figure)).filter((v) => Number.isFinite(v)));
  const aa = 'queue, shared 0';
  const aaLine =
    specs.some((s) => s.label === aa) && specs.some((s) => s.label === OFF)
      ? ` A/A check: \`shared 0\` is \`off\` in effect (a zero-capacity pool); its req/s ÷ off is ` +
        `${withRange(
          pairedRatio(runs, aa, OFF, target, (r) => r.load.rps),
          times,
        )} and its CPU/req ÷ off ` +
        `${withRange(pairedRatio(runs, aa, OFF, target, RATIO_COLUMNS[1]!.figure), times)}: differences of that size are noise.`
      : '';
  return (
    `Noise on this machine (${target}): a variant's own rounds spread by a median ${percent(rps, 0)} in req/s and ` +
    `${percent(cpu, 0)} in CPU per request (max−min over median).${aaLine}`
  );
}

const largeNodes = median(runs.filter((r) => r.target === 'large' && r.variant === OFF).map(nodesPerRender));
const markdown = [
  `# Queue rendering in SSR: seed-style report (${new Date().toISOString()})${opts.quick ? ' — QUICK RUN, not a measurement' : ''}`,
  '',
  `Method: the seed study's (the same fixed work for every variant, process-level figures), applied to an SSR origin. ` +
    `Each variant is its own origin process (WORKERS=1, LOG_LEVEL=warn, AsyncContextFrame on, --expose-gc); ` +
    `${opts.rounds} rounds, variants taking turns (order rotated each round), after ${opts.warmup} s of warm-up each; ` +
    `${opts.connections} connections. Targets: **large** = \`${largePath}\` (${int(largeBytes)} bytes of HTML, ` +
    `${fixed(largeNodes, 0)} queue nodes per render), ${int(opts.amountLarge)} requests per round; **mix** = the ` +
    `${mix.length} docs pages in turn, ${int(opts.amountMix)} requests per round. ` +
    `Counters are per round (deltas of /metrics: process_cpu_{user,system}_seconds_total, process_page_faults_total, ` +
    `process_context_switches_total, astro_queue_pool_acquires_total); max RSS is the kernel's VmHWM, reset before each ` +
    `round; heap peak is the largest of 1 s samples; heap after GC is read after two forced full GCs at the end of the ` +
    `round; available nodes is astro_queue_pool_available_nodes at the end of the round. Cells: median of the rounds ` +
    `(min–max). \`recursive\` is the same site built with the queue flag off (load/astro.config.recursive.mjs).`,
  '',
  ...['large', 'mix'].flatMap((t) => [
    `## ${t === 'large' ? `Large page (\`${largePath}\`)` : `Docs mix (${mix.length} pages)`}`,
    '',
    figureTable(t),
    '',
    'Ratios, per-round pairs, median (min–max):',
    '',
    ratioTable(t, OFF),
    '',
    ratioTable(t, BASE),
    '',
    noise(t),
    '',
  ]),
  `Errors + timeouts + non-2xx over all runs: ${int(sum(runs.map((r) => r.load.errors + r.load.non2xx)))}.`,
  '',
  machineNote(),
  ...(result.problems.length ? ['', '**Invalid runs:**', ...result.problems.map((p) => `- ${p}`)] : []),
].join('\n');
console.log(`\n${markdown}\n`);
writeReport('load-report', markdown, { opts, largePath, largeBytes, mix, specs, runs, problems: result.problems });
process.exitCode = result.problems.length ? 1 : 0;
