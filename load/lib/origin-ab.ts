// A/B benchmark of our origin against itself with one setting changed (metrics on/off,
// WORKERS=1/2): one origin process per variant, all alive at once, the same targets and load
// for each, alternating. Used by bench-metrics.ts and bench-workers.ts.
import { alternate, pairedRatio, spreadOf, type Target, type Variant } from './ab.ts';
import { buildDirFor } from './build.ts';
import { machineNote, writeReport } from './report-file.ts';
import { benchTargets } from './site.ts';
import { type Server, spawnOrigin } from './spawn-origin.ts';
import { fixed, markdownTable, times, withRange } from './stats.ts';

export interface OriginVariant {
  name: string;
  env: Record<string, string>;
  /** Runs while this variant is being measured (e.g. a /metrics scraper); returns its stop. */
  during?(server: Server): () => void;
}

export interface CompareOptions {
  variants: readonly OriginVariant[];
  connections: number;
  duration: number;
  rounds: number;
  warmup: number;
  build: boolean;
  /** Called once every origin is ready: a reason to skip the comparison, or undefined. */
  check?(servers: ReadonlyMap<string, Server>): Promise<string | undefined> | string | undefined;
}

export interface CompareResult {
  skipped?: string;
  table: string;
  problems: string[];
  raw: unknown;
}

export async function compareOrigins(o: CompareOptions): Promise<CompareResult> {
  const buildDir = await buildDirFor('origin', o.build);
  const servers = new Map<string, Server>();
  try {
    for (const v of o.variants) servers.set(v.name, await spawnOrigin({ name: v.name, buildDir, env: v.env }));
    const skipped = await o.check?.(servers);
    if (skipped) return { skipped, table: '', problems: [], raw: { skipped } };
    const first = servers.get(o.variants[0]!.name)!;
    const targets: Target[] = await benchTargets(first.url, buildDir);
    const variants: Variant[] = o.variants.map((v) => {
      const server = servers.get(v.name)!;
      let stop: (() => void) | undefined;
      return {
        name: v.name,
        url: server.url,
        before: () => {
          stop = v.during?.(server);
        },
        after: () => {
          stop?.();
          return {};
        },
      };
    });
    const { runs, problems } = await alternate({
      variants,
      targets,
      rounds: o.rounds,
      connections: o.connections,
      duration: o.duration,
      warmup: o.warmup,
    });
    const base = o.variants[0]!.name;
    const rows = targets.flatMap((t) =>
      o.variants.map((v) => {
        const rps = spreadOf(runs, v.name, t.name, (r) => r.load.rps);
        const p99 = spreadOf(runs, v.name, t.name, (r) => r.load.p99);
        const ratio =
          v.name === base
            ? '1.00×'
            : withRange(
                pairedRatio(runs, v.name, base, t.name, (r) => r.load.rps),
                times,
              );
        const change = (pairedRatio(runs, v.name, base, t.name, (r) => r.load.rps).median - 1) * 100;
        const cost = v.name === base ? '—' : `${change >= 0 ? '+' : ''}${fixed(change, 1)} %`;
        return [t.name, `\`${t.paths[0]}\``, v.name, withRange(rps), ratio, cost, withRange(p99, (x) => fixed(x, 1))];
      }),
    );
    const table = [
      markdownTable(
        [
          'target',
          'path',
          'variant',
          'req/s median (min–max)',
          `req/s vs ${base}`,
          `req/s change vs ${base} (median)`,
          'p99 ms',
        ],
        rows,
      ),
      '',
      `${o.connections} connections, ${o.duration} s per run, ${o.rounds} rounds alternating, ${o.warmup} s warm-up per variant; ratios are per-round pairs.`,
      machineNote(),
    ].join('\n');
    return { table, problems, raw: { targets, runs } };
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
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
