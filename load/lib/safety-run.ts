// The concurrency-safety scenario as functions: one probe load against a URL, and one run per
// pool policy against a freshly spawned origin. load/safety.ts (npm run load) and
// test/load/safety.test.ts (npm test) both call these.
import type { PoolPolicyName } from '../../src/config.ts';
import { type LoadResult, loadProblems, runLoad } from './cannon.ts';
import { type ProbeCounts, ProbeLedger } from './probe.ts';
import { spawnOrigin } from './spawn-origin.ts';
import { fixed, int, markdownTable } from './stats.ts';

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
  /** The pool policy of the origin spawned for the run, or the URL of the origin probed. */
  policy: PoolPolicyName | string;
}

/** Spawns the origin with POOL_POLICY=policy, runs the probe load, stops the origin. */
export async function runSafety(o: SafetyOptions): Promise<SafetyResult & { policy: PoolPolicyName }> {
  const origin = await spawnOrigin({
    name: `safety-${o.policy}`,
    buildDir: o.buildDir,
    env: { POOL_POLICY: o.policy, ...o.env },
  });
  try {
    const result = await runProbe({
      url: origin.url,
      connections: o.connections,
      amount: o.amount,
      duration: o.duration,
    });
    if (origin.child.exitCode !== null)
      result.problems.push(`the origin exited during the run (${origin.child.exitCode}); log ${origin.logFile}`);
    return { policy: o.policy, ...result };
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
