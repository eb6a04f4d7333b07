// npm run bench:workers — req/s of the origin with WORKERS=1 against WORKERS=2, in one run,
// alternating. The scenario only sets WORKERS; when the origin does not fork workers for it
// (no child processes appear), it says so and skips.
import { readFileSync } from 'node:fs';
import { readOptions } from './lib/options.ts';
import { compareOrigins, publishComparison } from './lib/origin-ab.ts';

const opts = readOptions(
  'npm run bench:workers',
  { connections: 50, duration: 10, rounds: 3, warmup: 20, workers: 2, policy: 'off', build: true },
  {
    workers: 'WORKERS of the second variant',
    policy: 'POOL_POLICY of both origins',
    build: 'build dist/ when missing or stale (--no-build to skip)',
  },
);

/** Child processes of `pid` (Linux /proc). */
function childPids(pid: number): number[] {
  try {
    const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return tasks.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const ONE = 'WORKERS=1';
const MANY = `WORKERS=${opts.workers}`;
const result = await compareOrigins({
  ...opts,
  variants: [
    { name: ONE, env: { WORKERS: '1', POOL_POLICY: opts.policy }, measureCpu: false },
    { name: MANY, env: { WORKERS: String(opts.workers), POOL_POLICY: opts.policy }, measureCpu: false },
  ],
  async check(servers) {
    // Workers may still be forking when the first one answers /readyz.
    const pid = servers.get(MANY)!.child.pid!;
    let children: number[] = [];
    for (let i = 0; i < 50 && children.length < opts.workers; i++) {
      children = childPids(pid);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.error(`${MANY}: the origin process ${pid} has ${children.length} child process(es)`);
    if (children.length < opts.workers) {
      return `the origin ignores WORKERS=${opts.workers}: process ${pid} forked ${children.length} worker(s) (expected ${opts.workers}). Nothing to compare yet.`;
    }
    return undefined;
  },
});

if (result.skipped) {
  console.log(`SKIPPED: ${result.skipped}`);
} else {
  publishComparison(
    'bench-workers',
    `WORKERS=1 vs ${MANY}`,
    `Both origins are alive during the whole run; autocannon shares the same cores, so ${MANY} competes with the load generator.`,
    result,
  );
}
