// The benchmark protocol every comparison here follows: warm each server up, then rounds in
// which the variants take turns on each target (A B, B A, A B… so drift cancels out), the
// same connections and duration (or request count) for all. Returns every run.
import type autocannon from 'autocannon';
import { type LoadResult, loadProblems, runLoad } from './cannon.ts';
import { cpuSeconds } from './procfs.ts';
import { fixed, int, type Spread, spread } from './stats.ts';

export interface Variant {
  name: string;
  /** Base URL, e.g. http://127.0.0.1:4321 */
  url: string;
  /**
   * The server's process id: each measured run then records the server's CPU time per
   * response (user + system from /proc, every thread) as extra.cpuUsPerRequest. Steadier than
   * req/s when the load generator competes with the server for the cores.
   */
  pid?: number;
  /** Targets this variant does not serve (left out of its runs). */
  skip?(target: Target): boolean;
  /** Called right before each measured run of this variant (e.g. start sampling). */
  before?(target: Target): Promise<void> | void;
  /** Called right after; returns extra figures to keep with the run (e.g. page faults). */
  after?(target: Target, load: LoadResult): Promise<Record<string, number>> | Record<string, number>;
}

export interface Target {
  name: string;
  /** A single path, or several that each connection cycles through. */
  paths: readonly string[];
  /** Per-variant paths when they differ (e.g. a hashed asset name). */
  pathsFor?(variant: Variant): readonly string[];
}

export interface Run {
  round: number;
  variant: string;
  target: string;
  load: LoadResult;
  extra: Record<string, number>;
}

export interface AlternateOptions {
  variants: readonly Variant[];
  targets: readonly Target[];
  rounds: number;
  connections: number;
  /** Seconds per measured run (when amount is 0). */
  duration: number;
  /** Requests per measured run; 0 to run for `duration`. */
  amount?: number;
  /** Seconds of warm-up per variant, spread over the targets. */
  warmup: number;
  /** Pause between runs, ms. */
  pauseMs?: number;
  log?: (line: string) => void;
}

function requestsFor(target: Target, variant: Variant): autocannon.Request[] {
  return (target.pathsFor?.(variant) ?? target.paths).map((path) => ({ method: 'GET', path }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function alternate(o: AlternateOptions): Promise<{ runs: Run[]; problems: string[] }> {
  const log = o.log ?? ((line: string) => console.error(line));
  const runs: Run[] = [];
  const problems: string[] = [];
  const perTarget = o.warmup / o.targets.length;
  // Target by target, the variants in turn, as the rounds go: every variant's first measured run
  // then follows the same pause as its later ones (the others' runs on one target). Warmed up
  // variant by variant, the one measured first had idled through every other's warm-up (a minute
  // in `npm run bench`; V8's memory reducer shrinks a heap idle that long, 204 to 34 MB under
  // --trace-gc), and that first run cost it 1.06-1.16x the CPU a request of its second-round run
  // on the tiny page, in each of three sets.
  for (const target of o.targets) {
    if (o.warmup <= 0) break;
    for (const variant of o.variants) {
      if (variant.skip?.(target)) continue;
      log(`warm-up ${variant.name} ${target.name}: ${fixed(perTarget, 0)} s`);
      const load = await runLoad({
        url: variant.url,
        connections: o.connections,
        duration: perTarget,
        requests: requestsFor(target, variant),
      });
      for (const p of loadProblems(load)) problems.push(`warm-up ${variant.name} ${target.name}: ${p}`);
    }
  }
  for (let round = 1; round <= o.rounds; round++) {
    const shift = (round - 1) % o.variants.length;
    const order = [...o.variants.slice(shift), ...o.variants.slice(0, shift)];
    for (const target of o.targets) {
      for (const variant of order) {
        if (variant.skip?.(target)) continue;
        await sleep(o.pauseMs ?? 500);
        await variant.before?.(target);
        const cpuBefore = variant.pid ? cpuSeconds(variant.pid) : NaN;
        const load = await runLoad({
          url: variant.url,
          connections: o.connections,
          duration: o.duration,
          amount: o.amount || undefined,
          requests: requestsFor(target, variant),
        });
        const cpu = variant.pid ? cpuSeconds(variant.pid) - cpuBefore : NaN;
        const extra = (await variant.after?.(target, load)) ?? {};
        if (variant.pid) extra.cpuUsPerRequest = (cpu * 1e6) / load.responses;
        runs.push({ round, variant: variant.name, target: target.name, load, extra });
        for (const p of loadProblems(load)) problems.push(`round ${round} ${variant.name} ${target.name}: ${p}`);
        log(
          `round ${round}/${o.rounds} ${target.name.padEnd(12)} ${variant.name.padEnd(16)} ${int(load.rps).padStart(7)} req/s  ` +
            `p50 ${fixed(load.p50, 1)} ms  p99 ${fixed(load.p99, 1)} ms  (${int(load.responses)} responses)` +
            (extra.cpuUsPerRequest === undefined ? '' : `  ${int(extra.cpuUsPerRequest)} µs CPU/request`),
        );
      }
    }
  }
  return { runs, problems };
}

/** The spread over rounds of one figure of (variant, target). */
export function spreadOf(runs: readonly Run[], variant: string, target: string, figure: (r: Run) => number): Spread {
  return spread(runs.filter((r) => r.variant === variant && r.target === target).map(figure));
}

/** Per-round ratio a/b of a figure (runs paired by round), as a spread. */
export function pairedRatio(
  runs: readonly Run[],
  a: string,
  b: string,
  target: string,
  figure: (r: Run) => number,
): Spread {
  const values: number[] = [];
  for (const ra of runs.filter((r) => r.variant === a && r.target === target)) {
    const rb = runs.find((r) => r.variant === b && r.target === target && r.round === ra.round);
    if (rb) values.push(figure(ra) / figure(rb));
  }
  return spread(values);
}
