// A/B benchmark of our origin against itself with one setting changed (metrics on/off,
// WORKERS=1/2): one origin process per variant, all alive at once, the same targets and load
// for each, alternating. Used by bench-metrics.ts and bench-workers.ts.
import { alternate, pairedRatio, type Run, spreadOf, type Target, type Variant } from './ab.ts';
import { buildDirFor } from './build.ts';
import { pacedRate, pacedRatios, pacedSideBySide } from './paced.ts';
import { machineNote, writeReport } from './report-file.ts';
import { benchTargets } from './site.ts';
import { type Server, spawnOrigin } from './spawn-origin.ts';
import { fixed, int, markdownTable, spread, times, withRange } from './stats.ts';

export interface OriginVariant {
  name: string;
  /**
   * Record CPU time per request (default true). Off for WORKERS > 1: /proc of the primary
   * does not count its workers.
   */
  measureCpu?: boolean;
  /** The variant its ratios are to (default: the first). */
  baseline?: string;
  env: Record<string, string>;
  /**
   * Runs for the life of each of this variant's processes, from their start (a /metrics
   * scraper, as Prometheus scrapes an origin from its start); returns its stop.
   */
  during?(server: Server): () => void;
}

export interface CompareOptions {
  variants: readonly OriginVariant[];
  connections: number;
  duration: number;
  rounds: number;
  warmup: number;
  build: boolean;
  /**
   * Then the same pages paced side by side (lib/paced.ts): every variant at once on one CPU at
   * the same rate, for steadier CPU ratios. `load`: the share of that CPU they use together.
   */
  paced?: {
    load: number;
    connections: number;
    warmup: number;
    /**
     * Sets of processes paced in turn: the first is the closed loop's, every further one fresh
     * (two processes of the same origin differ by up to ~8 %, and one set keeps its bias).
     */
    sets?: number;
    /** Seconds of paced warm-up before the first page of a fresh set, when longer than `warmup`. */
    firstWarmup?: number;
  };
  /** Called once every origin is ready: a reason to skip the comparison, or undefined. */
  check?(servers: ReadonlyMap<string, Server>): Promise<string | undefined> | string | undefined;
}

export interface CompareResult {
  skipped?: string;
  table: string;
  problems: string[];
  raw: unknown;
}

/** Starts one variant's origin and its `during` extra, whose stop goes into `stops`. */
async function startVariant(
  v: OriginVariant,
  buildDir: string,
  stops: Array<(() => void) | undefined>,
): Promise<Server> {
  const server = await spawnOrigin({ name: v.name, buildDir, env: v.env });
  stops.push(v.during?.(server));
  return server;
}

export async function compareOrigins(o: CompareOptions): Promise<CompareResult> {
  const buildDir = await buildDirFor('origin', o.build);
  const servers = new Map<string, Server>();
  const stops: Array<(() => void) | undefined> = [];
  try {
    for (const v of o.variants) servers.set(v.name, await startVariant(v, buildDir, stops));
    const skipped = await o.check?.(servers);
    if (skipped) return { skipped, table: '', problems: [], raw: { skipped } };
    const first = servers.get(o.variants[0]!.name)!;
    const targets: Target[] = await benchTargets(first.url, buildDir);
    const variants: Variant[] = o.variants.map((v) => {
      const server = servers.get(v.name)!;
      return { name: v.name, url: server.url, pid: v.measureCpu === false ? undefined : server.child.pid };
    });
    const { runs, problems } = await alternate({
      variants,
      targets,
      rounds: o.rounds,
      connections: o.connections,
      duration: o.duration,
      warmup: o.warmup,
    });
    const firstName = o.variants[0]!.name;
    const pacedPart = o.paced ? await pacedTable(o, o.paced, buildDir, servers, targets, runs, problems) : [];
    const rpsOf = (r: Run) => r.load.rps;
    const cpuOf = (r: Run) => r.extra.cpuUsPerRequest ?? NaN;
    const change = (ratio: number) => {
      const pct = (ratio - 1) * 100;
      return `${pct >= 0 ? '+' : ''}${fixed(pct, 1)} %`;
    };
    const rows = targets.flatMap((t) =>
      o.variants.map((v) => {
        const base = v.baseline ?? firstName;
        const isBase = v.name === base;
        const cpuRatio = pairedRatio(runs, v.name, base, t.name, cpuOf);
        const rpsRatio = pairedRatio(runs, v.name, base, t.name, rpsOf);
        return [
          t.name,
          `\`${t.paths[0]}\``,
          v.name,
          withRange(spreadOf(runs, v.name, t.name, cpuOf)),
          isBase ? '—' : `${withRange(cpuRatio, times)} vs ${base}`,
          isBase ? '—' : change(cpuRatio.median),
          withRange(spreadOf(runs, v.name, t.name, rpsOf)),
          isBase ? '—' : withRange(rpsRatio, times),
          isBase ? '—' : change(rpsRatio.median),
          withRange(
            spreadOf(runs, v.name, t.name, (r) => r.load.p99),
            (x) => fixed(x, 1),
          ),
        ];
      }),
    );
    const table = [
      markdownTable(
        [
          'target',
          'path',
          'variant',
          'CPU µs/request median (min–max)',
          'CPU/request ratio',
          'CPU/request change (median)',
          'req/s median (min–max)',
          'req/s ratio',
          'req/s change (median)',
          'p99 ms',
        ],
        rows,
      ),
      ...pacedPart,
      '',
      `${o.connections} connections, ${o.duration} s per run, ${o.rounds} rounds alternating, ${o.warmup} s warm-up per variant; ratios are per-round pairs, to the variant named. CPU µs/request: user+system time of the origin process (all threads, from /proc) over the run ÷ responses; steadier than req/s when autocannon shares the cores.`,
      machineNote(),
    ].join('\n');
    return { table, problems, raw: { targets, runs } };
  } finally {
    for (const stop of stops) stop?.();
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
}

/** The paced side-by-side runs of the variants that measure CPU, as a table of CPU ratios. */
async function pacedTable(
  o: CompareOptions,
  paced: NonNullable<CompareOptions['paced']>,
  buildDir: string,
  closedLoopServers: ReadonlyMap<string, Server>,
  targets: readonly Target[],
  runs: readonly Run[],
  problems: string[],
): Promise<string[]> {
  const measured = o.variants.filter((v) => v.measureCpu !== false);
  const firstName = measured[0]!.name;
  const cpuOf = (r: Run) => r.extra.cpuUsPerRequest ?? NaN;
  const pacedTargets = targets
    .filter((t) => t.name !== 'static')
    .map((t) => ({
      name: t.name,
      paths: t.paths,
      rate: pacedRate(
        paced.load,
        measured.map((v) => spreadOf(runs, v.name, t.name, cpuOf).median),
      ),
    }));
  const sets = Math.max(1, paced.sets ?? 1);
  const result: Awaited<ReturnType<typeof pacedSideBySide>> = {
    runs: [],
    idleMsPerSecond: {},
    placement: '',
    problems: [],
  };
  for (let set = 1; set <= sets; set++) {
    const fresh = new Map<string, Server>();
    // The closed loop's processes have been scraped since their start; fresh ones are from now.
    const stops: Array<(() => void) | undefined> = [];
    try {
      if (set > 1) {
        console.error(`paced set ${set}/${sets}: fresh processes`);
        for (const v of measured) fresh.set(v.name, await startVariant(v, buildDir, stops));
      }
      const servers = set > 1 ? fresh : closedLoopServers;
      const one = await pacedSideBySide({
        servers: measured.map((v) => ({
          name: v.name,
          url: servers.get(v.name)!.url,
          pid: servers.get(v.name)!.child.pid!,
        })),
        targets: pacedTargets,
        rounds: o.rounds,
        duration: o.duration,
        warmup: paced.warmup,
        firstWarmup: set > 1 ? paced.firstWarmup : undefined,
        connections: paced.connections,
        idleSeconds: 0,
      });
      result.placement = one.placement;
      result.problems.push(...one.problems.map((p) => `paced set ${set}: ${p}`));
      result.runs.push(...one.runs.map((r) => ({ ...r, round: (set - 1) * o.rounds + r.round })));
    } finally {
      for (const stop of stops) stop?.();
      await Promise.all([...fresh.values()].map((s) => s.stop()));
    }
  }
  problems.push(...result.problems);
  const rows = [...new Set(result.runs.map((r) => r.target))].flatMap((t) =>
    measured.map((v) => {
      const base = v.baseline ?? firstName;
      const cpu = spread(
        result.runs.filter((r) => r.server === v.name && r.target === t).map((r) => r.cpuUsPerRequest),
      );
      return [
        t,
        String(result.runs.find((r) => r.target === t)?.rate ?? ''),
        v.name,
        withRange(cpu, int),
        v.name === base ? '—' : `${withRange(spread(pacedRatios(result, v.name, base, t)), times)} vs ${base}`,
      ];
    }),
  );
  return [
    '',
    `Paced side by side (${result.placement}): every variant at once, each at the same fixed rate (together ~${paced.load} of one CPU), ` +
      `${paced.connections} connections each, ${paced.warmup} s then ${o.rounds} × ${o.duration} s per set; CPU ratios per round. ` +
      'The same machine second by second and the same load for all: steadier than the runs above, which take turns. ' +
      (sets > 1
        ? `${sets} sets of processes (the closed loop's, then ${sets - 1} fresh): two processes of the same origin differ by up to ~8 % (A/A, README), and each set keeps its bias.`
        : 'One set of processes throughout: two processes of the same origin differ by up to ~8 % (A/A, README), which the min–max does not show.'),
    '',
    markdownTable(['target', 'req/s each', 'variant', 'CPU µs/request median (min–max)', 'CPU/request ratio'], rows),
  ];
}

/** Prints and writes a comparison's report (reports/<name>-…); exit code 1 when a run was invalid. */
export function publishComparison(name: string, title: string, intro: string, result: CompareResult): void {
  const markdown = [
    `# ${title} (${new Date().toISOString()})`,
    '',
    intro,
    '',
    result.table,
    ...(result.problems.length ? ['', '**Invalid runs:**', ...result.problems.map((p) => `- ${p}`)] : []),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  writeReport(name, markdown, result.raw);
  process.exitCode = result.problems.length ? 1 : 0;
}
