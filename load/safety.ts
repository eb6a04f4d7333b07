// npm run load — the concurrency-safety scenario, once per pool policy.
// Every request carries a unique token; every response must show its own token exactly
// PROBE_TOKEN_COUNT times and no other request's token. Exits 1 on any violation, error,
// timeout or non-2xx response. With --target URL it probes an origin that is already running
// (the compose stack's `load` service does: --target http://origin:4321) instead of spawning one
// per policy; that origin must serve the demo site (its /probe pages).
import { POOL_POLICIES, type PoolPolicyName } from '../src/config.ts';
import { buildDirFor } from './lib/build.ts';
import { runCacheHammer, runCacheSafety } from './lib/cache-run.ts';
import { list, readOptions } from './lib/options.ts';
import { PROBE_TOKEN_COUNT } from './lib/probe.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { runProbe, runSafety, type SafetyResult, SHARED_BIG_POOL, safetyTable } from './lib/safety-run.ts';

const opts = readOptions(
  'npm run load',
  {
    policies: POOL_POLICIES.join(','),
    sharedBigPool: SHARED_BIG_POOL,
    connections: 200,
    amount: 20_000,
    duration: 0,
    build: true,
    target: '',
    cache: true,
  },
  {
    policies: 'pool policies to run, comma-separated (each in an origin of its own)',
    sharedBigPool:
      'with shared among the policies, one more shared run with this POOL_SIZE, big enough to reuse most nodes (0: none)',
    connections: 'concurrent connections',
    amount: 'requests per policy (0: use --duration)',
    duration: 'seconds per policy when --amount is 0',
    build: 'build dist/ first when missing or stale (--no-build to skip)',
    target: 'probe this running origin (http://host:port, serving the demo) instead of spawning one per policy',
    cache: 'also run the origin-cache scenarios: the probe with the cache on, and one cached page hammered',
  },
);

const target = opts.target ? targetUrl(opts.target) : undefined;
const policies = target ? [] : (list(opts.policies) as PoolPolicyName[]);
for (const p of policies) if (!POOL_POLICIES.includes(p)) throw new Error(`unknown policy ${p}`);
const buildDir = target ? undefined : await buildDirFor('origin', opts.build);

console.log(
  `Concurrency safety: ${target ?? policies.join(', ')}; ${opts.connections} connections; ` +
    `${opts.amount ? `${opts.amount} requests` : `${opts.duration} s`} per policy; /probe, /probe-astro and /probe-large in turn, ` +
    `token in query / header / both; each response must show its token ${PROBE_TOKEN_COUNT}× and no other.`,
);
const results: SafetyResult[] = [];
if (target) {
  const result = {
    policy: target,
    ...(await runProbe({ url: target, connections: opts.connections, amount: opts.amount, duration: opts.duration })),
  };
  results.push(result);
  console.log(
    `${target}: ${result.problems.length === 0 ? 'PASS' : 'FAIL'} — ${result.counts.verified} responses checked`,
  );
  for (const problem of result.problems) console.log(`  ${problem}`);
}
const runs = policies.map((policy) => ({ policy, env: {} as Record<string, string> }));
if (policies.includes('shared') && opts.sharedBigPool > 0)
  runs.push({ policy: 'shared', env: { POOL_SIZE: String(opts.sharedBigPool) } });
for (const { policy, env } of runs) {
  const result = await runSafety({
    policy,
    connections: opts.connections,
    amount: opts.amount,
    duration: opts.duration,
    buildDir,
    env,
  });
  results.push(result);
  console.log(
    `${result.policy}: ${result.problems.length === 0 ? 'PASS' : 'FAIL'} — ${result.counts.verified} responses checked`,
  );
  for (const problem of result.problems) console.log(`  ${problem}`);
}

const cacheLines = target || !opts.cache ? [] : await cacheScenarios();
const table = safetyTable(results, opts.connections);
const failed = results.some((r) => r.problems.length > 0) || cacheLines.some((l) => l.includes('FAIL'));
const markdown = [
  `# Concurrency safety (${new Date().toISOString()})`,
  '',
  table,
  '',
  `\\* The probe's async components sleep 0–3 ms each, so req/s is not a throughput figure. ${machineNote()}`,
  ...results.flatMap((r) => r.problems.map((p) => `- ${r.policy}: ${p}`)),
  ...(cacheLines.length > 0 ? ['', '## With the origin cache on', '', ...cacheLines] : []),
].join('\n');
console.log(`\n${table}\n`);
writeReport('safety', markdown, results);
console.log(
  failed ? 'FAIL: concurrency-safety violations (see above)' : 'PASS: no violation, error, timeout or non-2xx response',
);
process.exitCode = failed ? 1 : 0;

/**
 * The origin cache on: the probe (tokens must never cross, though /cache/probe is stored and
 * evicted under load), then one cacheable page hammered (rendered once per maxAge).
 */
async function cacheScenarios(): Promise<string[]> {
  const lines: string[] = [];
  const safety = await runCacheSafety({
    connections: opts.connections,
    amount: opts.amount,
    duration: opts.duration,
    buildDir,
  });
  const { miss, hit, evictions } = safety.cache;
  lines.push(
    `- probe, cache on: ${safety.problems.length === 0 ? 'PASS' : 'FAIL'} — ${safety.counts.verified} responses checked ` +
      `(${safety.counts.byPath['/cache/probe'] ?? 0} on /cache/probe), ${safety.counts.violating} violations; ` +
      `cache: ${miss} stored, ${hit} hits, ${evictions} evictions`,
    ...safety.problems.map((p) => `  - ${p}`),
  );
  const hammer = await runCacheHammer({ connections: opts.connections, seconds: 6, maxAge: 2, buildDir });
  lines.push(
    `- hammer, cache on: ${hammer.problems.length === 0 ? 'PASS' : 'FAIL'} — ${hammer.responses} requests to ` +
      `\`${hammer.path}\` in ${hammer.seconds.toFixed(1)} s, ${hammer.renders} renders (at most ${hammer.allowed})`,
    ...hammer.problems.map((p) => `  - ${p}`),
  );
  for (const line of lines) console.log(line);
  return lines;
}

/** --target: an http(s) origin URL without a path; exits with a clear message otherwise. */
function targetUrl(value: string): string {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url && /^https?:$/.test(url.protocol)) return url.origin;
  console.error(
    `--target must be an http:// or https:// URL such as http://127.0.0.1:4321 (got ${JSON.stringify(value)})`,
  );
  process.exit(2);
}
