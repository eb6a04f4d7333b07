// Side-by-side paced runs: every server under the same fixed request rate AT THE SAME TIME,
// all of them sharing one CPU, the load generator on another. Closed-loop runs taken in turns
// (lib/ab.ts) let the machine's speed drift between runs and let each server's own speed set
// its load (a faster server batches more requests per event-loop turn): on this 2-core VM their
// CPU-per-request ratios swing ±40 % from round to round. Run side by side, the servers meet
// the same machine second by second and the same request rate, so the ratio of their CPU per
// request is steady (±10 %). Also: CPU per second while idle (timers, samplers), the same way.
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { type LoadResult, loadProblems } from './cannon.ts';
import { runPacedLoad } from './pacer.ts';
import { cpuSeconds } from './procfs.ts';
import { int } from './stats.ts';

export interface PacedServer {
  name: string;
  url: string;
  pid: number;
}

export interface PacedTarget {
  name: string;
  paths: readonly string[];
  /** Requests per second each server gets. */
  rate: number;
  /** Servers left out for this target. */
  skip?: readonly string[];
}

export interface PacedRun {
  round: number;
  target: string;
  server: string;
  /** The pace, requests per second. */
  rate: number;
  cpuUsPerRequest: number;
  load: LoadResult;
}

export interface PacedResult {
  runs: PacedRun[];
  /** CPU milliseconds per second with no requests (scrapes of our /metrics aside), per server. */
  idleMsPerSecond: Record<string, number>;
  /** How the CPUs were split ("servers on CPU 0, load generator on CPU 1", or why not). */
  placement: string;
  problems: string[];
}

export interface PacedOptions {
  servers: readonly PacedServer[];
  targets: readonly PacedTarget[];
  rounds: number;
  /** Seconds per round. */
  duration: number;
  /** Seconds of paced load before the first round of each target. */
  warmup: number;
  /**
   * Seconds of paced load before the first target's first round, when longer than `warmup`:
   * time for a scraped origin's first scrapes to stop disturbing its JIT (SCRAPES_TO_SETTLE).
   */
  firstWarmup?: number;
  connections: number;
  /** Seconds of the idle measurement (0: none). */
  idleSeconds: number;
  log?: (line: string) => void;
}

/** `taskset` every thread of `pid` onto `cpus` ("0", "0-1"); false when that is not possible. */
function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds of paced load before the first target's first round: `warmup`, or `firstWarmup` when longer. */
export function firstWarmupSeconds(o: Pick<PacedOptions, 'warmup' | 'firstWarmup'>): number {
  return Math.max(o.warmup, o.firstWarmup ?? 0);
}

export async function pacedSideBySide(o: PacedOptions): Promise<PacedResult> {
  const log = o.log ?? ((line: string) => console.error(line));
  const cpus = availableParallelism();
  const all = `0-${cpus - 1}`;
  const pinned =
    cpus >= 2 && o.servers.every((s) => pin(s.pid, '0')) && pin(process.pid, String(Math.min(1, cpus - 1)));
  const placement = pinned
    ? 'every server on CPU 0, the load generator on CPU 1 (taskset)'
    : `not pinned (${cpus < 2 ? 'one CPU' : 'taskset failed'}): servers and load generator share the CPUs`;
  log(`paced side by side: ${placement}`);
  const problems: string[] = [];
  const runs: PacedRun[] = [];
  const idleMsPerSecond: Record<string, number> = {};
  try {
    if (o.idleSeconds > 0) {
      await sleep(1000);
      const before = o.servers.map((s) => cpuSeconds(s.pid));
      await sleep(o.idleSeconds * 1000);
      o.servers.forEach((s, i) => {
        idleMsPerSecond[s.name] = ((cpuSeconds(s.pid) - before[i]!) * 1000) / o.idleSeconds;
      });
      log(`idle CPU: ${o.servers.map((s) => `${s.name} ${idleMsPerSecond[s.name]!.toFixed(1)} ms/s`).join(', ')}`);
    }
    for (const target of o.targets) {
      const servers = o.servers.filter((s) => !target.skip?.includes(s.name));
      // Evenly paced (lib/pacer.ts), not autocannon's rate limit: that sends each second's
      // requests in one burst at the top of the second, to every server at once.
      const together = (seconds: number) =>
        Promise.all(
          servers.map((s) =>
            runPacedLoad({
              url: s.url,
              connections: o.connections,
              duration: seconds,
              rate: target.rate,
              paths: target.paths,
            }),
          ),
        );
      log(`paced ${target.name}: ${target.rate} req/s to each of ${servers.length} servers at once`);
      await together(target === o.targets[0] ? firstWarmupSeconds(o) : o.warmup);
      for (let round = 1; round <= o.rounds; round++) {
        await sleep(500);
        const before = servers.map((s) => cpuSeconds(s.pid));
        const loads = await together(o.duration);
        const line: string[] = [];
        servers.forEach((s, i) => {
          const load = loads[i]!;
          const cpuUsPerRequest = ((cpuSeconds(s.pid) - before[i]!) * 1e6) / load.responses;
          runs.push({ round, target: target.name, server: s.name, rate: target.rate, cpuUsPerRequest, load });
          for (const p of loadProblems(load)) problems.push(`paced round ${round} ${s.name} ${target.name}: ${p}`);
          // A server that could not keep the pace was saturated: its CPU per request is then
          // not comparable (it batches more per loop turn).
          if (load.rps < target.rate * 0.9)
            problems.push(`paced round ${round} ${s.name} ${target.name}: ${int(load.rps)} of ${target.rate} req/s`);
          line.push(`${s.name} ${int(cpuUsPerRequest)} µs`);
        });
        log(`paced round ${round}/${o.rounds} ${target.name.padEnd(12)} CPU/request: ${line.join(', ')}`);
      }
    }
  } finally {
    // Every process back on every CPU, also after a pinning that failed half-way.
    if (cpus >= 2) for (const pid of [...o.servers.map((s) => s.pid), process.pid]) pin(pid, all);
  }
  return { runs, idleMsPerSecond, placement, problems };
}

/**
 * Requests per second each server gets so that together they use `load` of one CPU, judged by
 * each one's CPU µs per request (closed-loop medians; unknown ones are left out). 5–2000.
 */
export function pacedRate(load: number, cpuUsPerRequest: readonly number[]): number {
  const sumUs = cpuUsPerRequest.filter((us) => Number.isFinite(us)).reduce((sum, us) => sum + us, 0);
  return Math.max(5, Math.min(2000, Math.round((load * 1e6) / (sumUs || 1000))));
}

/** Per-round ratio of CPU per request, server a over server b, on one target. */
export function pacedRatios(result: PacedResult, a: string, b: string, target: string): number[] {
  const ratios: number[] = [];
  for (const ra of result.runs.filter((r) => r.server === a && r.target === target)) {
    const rb = result.runs.find((r) => r.server === b && r.target === target && r.round === ra.round);
    if (rb) ratios.push(ra.cpuUsPerRequest / rb.cpuUsPerRequest);
  }
  return ratios;
}
