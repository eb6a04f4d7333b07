// npm run load:report — the seed study's method (../shared/seed/queue-rendering-memory-study.md)
// applied to SSR: the same fixed work (N requests over the site's MDX pages) for each
// renderer / pool-policy variant, in one run, alternating, and a seed-style table of speed,
// latency, memory, page faults, context switches and pool reuse, with each variant's ratio to
// the recursive renderer. Process figures come from the origin's own /metrics (what users
// watch) and the kernel's peak RSS (VmHWM, reset before each round).
import { alternate, type Run, spreadOf, type Target, type Variant } from './lib/ab.ts';
import { type BuildName, buildDirFor } from './lib/build.ts';
import { list, readOptions } from './lib/options.ts';
import { peakRssBytes, resetPeakRss } from './lib/procfs.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { delta, type Snapshot, snapshot, startSampler } from './lib/scrape.ts';
import { mdxPages } from './lib/site.ts';
import { type Server, spawnOrigin } from './lib/spawn-origin.ts';
import { fixed, int, markdownTable, median, mib, percent, ratio, sum, times, withRange } from './lib/stats.ts';

const opts = readOptions(
  'npm run load:report',
  {
    connections: 50,
    amount: 15_000,
    rounds: 3,
    warmup: 20,
    variants: 'recursive,off,per-request,shared',
    paths: '',
    build: true,
  },
  {
    connections: 'autocannon connections',
    amount: 'requests per round per variant (the fixed work, as the seed builds a fixed site)',
    rounds: 'rounds; variants take turns in each',
    warmup: 'seconds of warm-up per variant',
    variants: 'recursive (queue flag off) and/or queue pool policies off, per-request, shared',
    paths: 'comma-separated pages (default: every MDX page of the site)',
    build: 'build dist/ and dist-recursive/ when missing or stale (--no-build to skip)',
  },
);

interface VariantSpec {
  key: string;
  label: string;
  build: BuildName;
  policy: string;
}
const SPECS: Record<string, VariantSpec> = {
  recursive: { key: 'recursive', label: 'recursive (queue off)', build: 'recursive', policy: 'off' },
  off: { key: 'off', label: 'queue, pool off', build: 'origin', policy: 'off' },
  'per-request': { key: 'per-request', label: 'queue, per-request pool', build: 'origin', policy: 'per-request' },
  shared: { key: 'shared', label: 'queue, shared pool', build: 'origin', policy: 'shared' },
};
const specs = list(opts.variants).map((k) => {
  const spec = SPECS[k];
  if (!spec) throw new Error(`unknown variant ${k} (known: ${Object.keys(SPECS).join(', ')})`);
  return spec;
});
const paths = opts.paths ? list(opts.paths) : mdxPages();

const buildDirs = new Map<BuildName, string>();
for (const b of new Set(specs.map((s) => s.build))) buildDirs.set(b, await buildDirFor(b, opts.build));

const servers = new Map<string, Server>();
let result: Awaited<ReturnType<typeof alternate>>;
try {
  for (const spec of specs) {
    servers.set(
      spec.label,
      await spawnOrigin({
        name: `report-${spec.key}`,
        buildDir: buildDirs.get(spec.build)!,
        env: { POOL_POLICY: spec.policy, WORKERS: '1' },
      }),
    );
  }
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
        const d = delta(before, after);
        return {
          ...d,
          peakRssBytes: peakRssBytes(server.child.pid!),
          peakHeapUsedBytes: Math.max(after.heapUsedBytes, ...series.map((s) => s.heapUsedBytes)),
          poolAvailable: after.poolAvailable,
        };
      },
    };
  });
  const target: Target = { name: 'mdx', paths };
  console.error(
    `${specs.length} variants × ${opts.rounds} rounds × ${opts.amount} requests over ${paths.length} MDX pages, ${opts.connections} connections`,
  );
  result = await alternate({
    variants,
    targets: [target],
    rounds: opts.rounds,
    connections: opts.connections,
    duration: 0,
    amount: opts.amount,
    warmup: opts.warmup,
  });
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
}

// ---- the table: one row per metric, one column per variant, ratio to the recursive baseline
const runs = result.runs;
const base = specs[0]!.label;
const of = (label: string, f: (r: Run) => number) => runs.filter((r) => r.variant === label).map(f);
type Row = {
  metric: string;
  value: (label: string) => number;
  format: (v: number) => string;
  better?: 'lower' | 'higher';
};
const x = (key: string) => (r: Run) => r.extra[key] ?? NaN;
const ms = (v: number) => `${fixed(v, 1)} ms`;
const rowsSpec: Row[] = [
  {
    metric: 'Requests/s (median of rounds)',
    value: (l) => median(of(l, (r) => r.load.rps)),
    format: int,
    better: 'higher',
  },
  {
    metric: `Time for ${int(opts.amount)} requests`,
    value: (l) => median(of(l, (r) => r.load.seconds)),
    format: (v) => `${fixed(v, 2)} s`,
    better: 'lower',
  },
  { metric: 'Latency p50', value: (l) => median(of(l, (r) => r.load.p50)), format: ms, better: 'lower' },
  { metric: 'Latency p97.5', value: (l) => median(of(l, (r) => r.load.p97_5)), format: ms, better: 'lower' },
  { metric: 'Latency p99', value: (l) => median(of(l, (r) => r.load.p99)), format: ms, better: 'lower' },
  {
    metric: 'Errors + timeouts + non-2xx (all rounds)',
    value: (l) => sum(of(l, (r) => r.load.errors + r.load.non2xx)),
    format: int,
    better: 'lower',
  },
  {
    metric: 'CPU time per round (user+sys)',
    value: (l) => median(of(l, x('cpuSeconds'))),
    format: (v) => `${fixed(v, 2)} s`,
    better: 'lower',
  },
  {
    metric: 'Max RSS (kernel VmHWM, max of rounds)',
    value: (l) => Math.max(...of(l, x('peakRssBytes'))),
    format: mib,
    better: 'lower',
  },
  {
    metric: 'Heap used (peak of 1 s samples, max of rounds)',
    value: (l) => Math.max(...of(l, x('peakHeapUsedBytes'))),
    format: mib,
    better: 'lower',
  },
  {
    metric: 'Page faults, minor (per round)',
    value: (l) => median(of(l, x('minorFaults'))),
    format: int,
    better: 'lower',
  },
  {
    metric: 'Page faults, major (per round)',
    value: (l) => median(of(l, x('majorFaults'))),
    format: int,
    better: 'lower',
  },
  {
    metric: 'Vol. context switches (per round)',
    value: (l) => median(of(l, x('voluntaryCs'))),
    format: int,
    better: 'lower',
  },
  {
    metric: 'Invol. context switches (per round)',
    value: (l) => median(of(l, x('involuntaryCs'))),
    format: int,
    better: 'lower',
  },
  {
    metric: 'Queue nodes acquired per request',
    value: (l) => sum(of(l, (r) => x('poolReused')(r) + x('poolNew')(r))) / sum(of(l, (r) => r.load.responses)),
    format: (v) => fixed(v, 1),
  },
  {
    metric: 'Pool hit ratio (reused / acquired)',
    value: (l) => {
      const reused = sum(of(l, x('poolReused')));
      const all = reused + sum(of(l, x('poolNew')));
      return all > 0 ? reused / all : NaN;
    },
    format: (v) => percent(v, 1),
  },
];
const cell = (row: Row, label: string) => {
  const v = row.value(label);
  if (label === base || !Number.isFinite(v)) return row.format(v);
  const b = row.value(base);
  const r = ratio(v, b);
  return Number.isFinite(r) ? `${row.format(v)} (${times(r)})` : row.format(v);
};
const mainTable = markdownTable(
  ['Metric', ...specs.map((s) => (s.label === base ? `${s.label} — baseline` : s.label))],
  rowsSpec.map((row) => [row.metric, ...specs.map((s) => cell(row, s.label))]),
);
const spreadTable = markdownTable(
  ['Variant', 'req/s median (min–max)', 'p99 ms median (min–max)', 'minor faults per round (min–max)'],
  specs.map((s) => [
    s.label,
    withRange(spreadOf(runs, s.label, 'mdx', (r) => r.load.rps)),
    withRange(
      spreadOf(runs, s.label, 'mdx', (r) => r.load.p99),
      (v) => fixed(v, 1),
    ),
    withRange(spreadOf(runs, s.label, 'mdx', x('minorFaults'))),
  ]),
);

const markdown = [
  `# Queue rendering in SSR: seed-style report (${new Date().toISOString()})`,
  '',
  `Method: the seed study's (same fixed work per variant, process-level figures), applied to an SSR origin. ` +
    `Each variant is its own origin process (WORKERS=1, LOG_LEVEL=warn); each round sends ${int(opts.amount)} requests over ` +
    `${paths.length} MDX pages with ${opts.connections} connections; ${opts.rounds} rounds, variants taking turns ` +
    `(order rotated each round), after ${opts.warmup} s of warm-up each. Counters are per round (deltas of /metrics: ` +
    `process_page_faults_total, process_context_switches_total, process_cpu_seconds_total, astro_queue_pool_acquires_total); ` +
    `max RSS is the kernel's VmHWM, reset before each round. Cells show the value and its ratio to the ${base} baseline.`,
  '',
  mainTable,
  '',
  spreadTable,
  '',
  machineNote(),
  ...(result.problems.length ? ['', '**Invalid runs:**', ...result.problems.map((p) => `- ${p}`)] : []),
].join('\n');
console.log(`\n${markdown}\n`);
writeReport('load-report', markdown, { opts, paths, runs, problems: result.problems });
process.exitCode = result.problems.length ? 1 : 0;
