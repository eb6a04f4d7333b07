// The concurrency-safety scenario as functions: one probe load against a URL, and one run per
// pool policy against a freshly spawned origin. load/safety.ts (npm run load) and
// test/load/safety.test.ts (npm test) both call these.
import type { PoolPolicyName } from '../../src/config.ts';
import { type LoadResult, loadProblems, runLoad } from './cannon.ts';
import { type ProbeCounts, ProbeLedger } from './probe.ts';
import { snapshot } from './scrape.ts';
import { spawnOrigin } from './spawn-origin.ts';
import { fixed, int, markdownTable, percent } from './stats.ts';

export interface ProbeRunOptions {
  url: string;
  connections: number;
  /** Requests in all; when 0, run for `duration` seconds instead. */
  amount?: number;
  duration?: number;
  paths?: readonly string[];
  expected?: number;
}

export interface ProbeRunResult {
  load: LoadResult;
  counts: ProbeCounts;
  /** Why the run fails; empty when it passes. */
  problems: string[];
}

export async function runProbe(o: ProbeRunOptions): Promise<ProbeRunResult> {
  const ledger = new ProbeLedger({ paths: o.paths, expected: o.expected });
  const load = await runLoad({
    url: o.url,
    connections: o.connections,
    // Isolation, not latency, is under test: on a busy shared machine a render queued behind 200
    // connections can take longer than autocannon's 10 s default, and a timeout still fails the run.
    timeout: 30,
    amount: o.amount || undefined,
    duration: o.duration,
    requests: ledger.requests(),
  });
  const { counts } = ledger;
  const problems = loadProblems(load);
  if (counts.violating > 0) {
    problems.push(
      `${counts.violating} responses violated the probe (${JSON.stringify(counts.byKind)}): ${counts.examples.join(' | ')}`,
    );
  }
  if (counts.verified !== load.responses)
    problems.push(`checked ${counts.verified} responses but autocannon counted ${load.responses}`);
  if (o.amount && counts.verified !== o.amount)
    problems.push(`checked ${counts.verified} responses, expected ${o.amount}`);
  if (counts.issued - counts.verified > o.connections) {
    problems.push(
      `${counts.issued - counts.verified} requests got no response (more than the ${o.connections} in flight at the end)`,
    );
  }
  return { load, counts, problems };
}

export interface SafetyOptions {
  policy: PoolPolicyName;
  connections: number;
  amount?: number;
  duration?: number;
  buildDir?: string;
  /** Extra origin environment. */
  env?: Record<string, string>;
}

export interface SafetyResult extends ProbeRunResult {
  /** The pool policy of the origin spawned for the run (with its POOL_SIZE when set), or the URL probed. */
  policy: PoolPolicyName | string;
  /** Share of queue-node acquires served from the pool during the run (NaN when unknown). */
  hitRatio?: number;
  /** Nodes the pool kept, at the end of the run. */
  poolAvailable?: number;
}

/** Spawns the origin with POOL_POLICY=policy, runs the probe load, stops the origin. */
export async function runSafety(o: SafetyOptions): Promise<SafetyResult> {
  const size = o.env?.POOL_SIZE;
  const label = size === undefined ? o.policy : `${o.policy} (POOL_SIZE=${size})`;
  const origin = await spawnOrigin({
    name: `safety-${o.policy}${size === undefined ? '' : `-${size}`}`,
    buildDir: o.buildDir,
    env: { POOL_POLICY: o.policy, ...o.env },
  });
  try {
    const before = await snapshot(origin.metricsUrl!);
    const result = await runProbe({
      url: origin.url,
      connections: o.connections,
      amount: o.amount,
      duration: o.duration,
    });
    if (origin.child.exitCode !== null)
      result.problems.push(`the origin exited during the run (${origin.child.exitCode}); log ${origin.logFile}`);
    const after = await snapshot(origin.metricsUrl!);
    const reused = after.poolReused - before.poolReused;
    const all = reused + after.poolNew - before.poolNew;
    return {
      policy: label,
      ...result,
      hitRatio: all > 0 ? reused / all : Number.NaN,
      poolAvailable: after.poolAvailable,
    };
  } finally {
    const code = await origin.stop();
    if (code !== 0 && code !== null) console.error(`origin (${o.policy}) exited with ${code}; log ${origin.logFile}`);
  }
}

/** Markdown table of safety results, one row per policy. */
export function safetyTable(results: readonly SafetyResult[], connections: number): string {
  return markdownTable(
    [
      'policy',
      'connections',
      'requests checked',
      '/probe (MDX, queue)',
      '/probe-astro (recursive)',
      '/probe-large (MDX, 2 700 nodes)',
      'pool hit ratio',
      'violations',
      'errors',
      'timeouts',
      'non-2xx',
      'req/s*',
      'p99 ms',
      'verdict',
    ],
    results.map((r) => [
      r.policy,
      String(connections),
      int(r.counts.verified),
      int(r.counts.byPath['/probe'] ?? 0),
      int(r.counts.byPath['/probe-astro'] ?? 0),
      int(r.counts.byPath['/probe-large'] ?? 0),
      r.hitRatio === undefined ? 'n/a' : percent(r.hitRatio, 1),
      int(r.counts.violating),
      int(r.load.errors - r.load.timeouts),
      int(r.load.timeouts),
      int(r.load.non2xx),
      int(r.load.rps),
      fixed(r.load.p99, 0),
      r.problems.length === 0 ? 'PASS' : 'FAIL',
    ]),
  );
}

/**
 * POOL_SIZE of the extra shared run: enough for every node of the renders that overlap under
 * the probe's 200 connections (/probe-large alone is 2 700 per render).
 */
export const SHARED_BIG_POOL = 100_000;
