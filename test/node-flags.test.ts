// The Node flags npm start runs the origin with: what the process reads of them, and the start-up
// lines that tell an operator whether V8's young generation got its size.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import autocannon from 'autocannon';
import {
  allocationSitePretenuring,
  applyRuntimeV8Flags,
  flagName,
  memoryReducer,
  NODE_FLAGS,
  RUNTIME_V8_FLAGS,
  restartArgv,
  SEMI_SPACE_MIB,
  semiSpaceMiB,
  V8_ONLY_NODE_FLAGS,
} from '../src/node-flags.ts';
import { LARGE_DOCS_PAGE, logLines, spawnOrigin } from './helpers/origin.ts';
import { waitFor } from './helpers/wait.ts';

const HINT = /young generation is at its default size: start node with --max-semi-space-size=64/;

test('semiSpaceMiB reads the flag in either spelling, the last one given wins, undefined without it', () => {
  assert.equal(semiSpaceMiB(['--max-semi-space-size=64']), 64);
  assert.equal(semiSpaceMiB(['--max_semi_space_size=32']), 32);
  assert.equal(semiSpaceMiB(['--max-semi-space-size=16', '--inspect', '--max-semi-space-size=128']), 128);
  assert.equal(semiSpaceMiB(['--experimental-async-context-frame', '--max-old-space-size=512']), undefined);
  assert.equal(semiSpaceMiB([]), undefined);
  assert.ok(NODE_FLAGS.includes(`--max-semi-space-size=${SEMI_SPACE_MIB}`));
});

test('the bin restarts only without a semi-space size, adds only the flags missing and known, and keeps the rest', () => {
  const context = {
    execPath: '/usr/bin/node',
    execArgv: ['--inspect'],
    argv: ['/usr/bin/node', '/app/bin.js', 'dist'],
    known: process.allowedNodeEnvironmentFlags,
  };
  assert.deepEqual(restartArgv([], context), ['/usr/bin/node', ...NODE_FLAGS, '--inspect', '/app/bin.js', 'dist']);
  // Given by the operator, whatever the size (16: V8's own), or given by the restart itself.
  assert.equal(restartArgv(['--max-semi-space-size=16'], context), undefined);
  assert.equal(restartArgv([...NODE_FLAGS], context), undefined);
  const heapFlags = NODE_FLAGS.filter((flag) => flag !== '--experimental-async-context-frame');
  assert.deepEqual(restartArgv(['--experimental-async-context-frame'], context), [
    '/usr/bin/node',
    ...heapFlags,
    '--inspect',
    '/app/bin.js',
    'dist',
  ]);
  // A node that no longer knows a flag does not get it (it would refuse to start).
  const withoutFrame = { ...context, known: new Set(['--max-semi-space-size']) };
  assert.deepEqual(restartArgv([], withoutFrame)?.slice(0, heapFlags.length + 2), [
    '/usr/bin/node',
    ...heapFlags,
    '--inspect',
  ]);
  assert.equal(restartArgv([], { ...context, known: new Set() }), undefined);
});

test('the V8 flags of NODE_FLAGS are the ones Node does not list, and this node’s V8 knows them', () => {
  // A flag V8 does not know stops node at start ("bad option"): the restart would exit.
  const v8Options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  assert.deepEqual(
    NODE_FLAGS.filter((flag) => !process.allowedNodeEnvironmentFlags.has(flag.split('=')[0]!)),
    [...V8_ONLY_NODE_FLAGS],
  );
  for (const flag of V8_ONLY_NODE_FLAGS) {
    assert.match(v8Options, new RegExp(`^  --${flagName(flag)} \\(`, 'm'), flag);
  }
  assert.equal(memoryReducer([]), true);
  assert.equal(memoryReducer([...NODE_FLAGS]), false);
  assert.equal(memoryReducer([...NODE_FLAGS, '--memory_reducer']), true);
});

test('allocation-site pretenuring: on unless turned off, the last flag wins; the origin turns it off unless the command line names it', () => {
  assert.equal(allocationSitePretenuring([]), true);
  assert.equal(allocationSitePretenuring(['--no-allocation-site-pretenuring']), false);
  assert.equal(allocationSitePretenuring(['--no_allocation_site_pretenuring', '--allocation-site-pretenuring']), true);
  assert.deepEqual(RUNTIME_V8_FLAGS, ['--no-allocation-site-pretenuring']);
  // Named either way by the operator: left as given.
  assert.deepEqual(applyRuntimeV8Flags(['--allocation-site-pretenuring']), []);
  assert.deepEqual(applyRuntimeV8Flags(['--no-allocation-site-pretenuring']), []);
});

test('under load the origin moves no allocation site to the old generation; opted out on the command line, V8 does', {
  timeout: 120_000,
}, async () => {
  // V8's pretenuring statistics, a line per allocation site per scavenge: "old => new decision".
  const decisions = /=> tenure$/m;
  const run = async (nodeArgs: string[]) => {
    const origin = await spawnOrigin(
      { LOG_LEVEL: 'info', CACHE_MAX_BYTES: '0' },
      { nodeArgs: [...NODE_FLAGS, '--trace-pretenuring-statistics', ...nodeArgs] },
    );
    let line: Record<string, unknown> | undefined;
    try {
      [line] = await ready(origin.output);
      // ~1.6 MB allocated a render: several scavenges of the 64 MiB semi-space.
      const result = await autocannon({ url: origin.url + LARGE_DOCS_PAGE, connections: 20, amount: 400 });
      assert.equal(result.non2xx + result.errors, 0);
    } finally {
      await origin.stop();
    }
    // After the exit: V8 prints its trace through C's stdio, which holds it until then.
    return { allocationSitePretenuring: line?.allocationSitePretenuring, decisions: decisions.test(origin.output()) };
  };
  assert.deepEqual(await run([]), { allocationSitePretenuring: false, decisions: false });
  assert.deepEqual(await run(['--allocation-site-pretenuring']), { allocationSitePretenuring: true, decisions: true });
});

function readyLines(output: string): Array<Record<string, unknown>> {
  return logLines(output).filter((l) => l.msg === 'origin ready');
}

/**
 * The `origin ready` lines once there are `count` of them: log lines are written in batches
 * (up to 1 s after /readyz answers), and a cluster primary is ready with its first worker.
 */
function ready(output: () => string, count = 1): Promise<Array<Record<string, unknown>>> {
  return waitFor(`${count} 'origin ready' line(s)`, 20_000, () => {
    const lines = readyLines(output());
    return lines.length === count && lines;
  });
}

test('started with npm start’s flags, the origin reports its semi-space and gives no hint', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info' }, { nodeArgs: [...NODE_FLAGS] });
  try {
    const [line] = await ready(origin.output);
    assert.equal(line?.semiSpaceMiB, SEMI_SPACE_MIB);
    assert.equal(line?.memoryReducer, false);
    assert.doesNotMatch(origin.output(), HINT);
    // V8 took the minimum: the young generation starts at its working size, not at 1 MiB.
    assert.equal(await newSpaceMiB(origin.metricsUrl), SEMI_SPACE_MIB);
  } finally {
    await origin.stop();
  }
});

/** The new space's size as V8 reports it (getHeapSpaceStatistics, through prom-client), in MiB. */
async function newSpaceMiB(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
  assert.ok(m, 'the new space on /metrics');
  return Number(m[1]) / 2 ** 20;
}

test('given the flag through NODE_OPTIONS, the origin reads it there', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info', NODE_OPTIONS: `--max-semi-space-size=${SEMI_SPACE_MIB}` });
  try {
    assert.equal((await ready(origin.output))[0]?.semiSpaceMiB, SEMI_SPACE_MIB);
    assert.doesNotMatch(origin.output(), HINT);
  } finally {
    await origin.stop();
  }
});

test('the command line wins over NODE_OPTIONS, as it does in V8', async () => {
  const origin = await spawnOrigin(
    { LOG_LEVEL: 'info', NODE_OPTIONS: '--max-semi-space-size=16' },
    { nodeArgs: [...NODE_FLAGS] },
  );
  try {
    assert.equal((await ready(origin.output))[0]?.semiSpaceMiB, SEMI_SPACE_MIB);
  } finally {
    await origin.stop();
  }
});

test('started without it, the origin says once at info which flag to add', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info', NODE_OPTIONS: '' });
  try {
    const [line] = await ready(origin.output);
    assert.equal(line?.semiSpaceMiB, undefined);
    assert.equal(line?.memoryReducer, true);
    assert.ok((await newSpaceMiB(origin.metricsUrl)) < SEMI_SPACE_MIB);
    const hints = logLines(origin.output()).filter((l) => HINT.test(String(l.msg)));
    assert.equal(hints.length, 1);
    assert.equal(hints[0]?.level, 30);
  } finally {
    await origin.stop();
  }
});

test('cluster workers run with the flags the primary was started with, and the hint is not repeated', async () => {
  const withFlag = await spawnOrigin({ LOG_LEVEL: 'info', WORKERS: '2' }, { nodeArgs: [...NODE_FLAGS] });
  try {
    assert.deepEqual(
      (await ready(withFlag.output, 2)).map((l) => l.semiSpaceMiB),
      [SEMI_SPACE_MIB, SEMI_SPACE_MIB],
    );
  } finally {
    await withFlag.stop();
  }
  const without = await spawnOrigin({ LOG_LEVEL: 'info', WORKERS: '2', NODE_OPTIONS: '' });
  try {
    await ready(without.output, 2);
    assert.equal(logLines(without.output()).filter((l) => HINT.test(String(l.msg))).length, 1);
  } finally {
    await without.stop();
  }
});

// As users run it: the compiled bin, as npm links it, with no flags and type stripping off (as
// under node_modules). process.execve exists from Node 22.15, as here.
const BIN = { entry: 'lib/src/bin.js', nodeArgs: ['--no-experimental-strip-types'] };

test('the bin, started without the flags, replaces itself with a node that has them: same pid, no hint', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info', NODE_OPTIONS: '' }, BIN);
  try {
    const [line] = await ready(origin.output);
    assert.equal(line?.semiSpaceMiB, SEMI_SPACE_MIB);
    assert.equal(line?.pid, origin.child.pid, 'the same process: signals and the orchestrator still reach it');
    assert.equal(line?.memoryReducer, false);
    assert.doesNotMatch(origin.output(), HINT);
    assert.equal((await fetch(`${origin.url}/`)).status, 200);
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});

test('the bin keeps a semi-space size it was given (the way to opt out), and its cluster workers inherit the restart', async () => {
  const given = await spawnOrigin({ LOG_LEVEL: 'info', NODE_OPTIONS: '--max-semi-space-size=16' }, BIN);
  try {
    assert.equal((await ready(given.output))[0]?.semiSpaceMiB, 16);
  } finally {
    await given.stop();
  }
  const cluster = await spawnOrigin({ LOG_LEVEL: 'info', NODE_OPTIONS: '', WORKERS: '2' }, BIN);
  try {
    assert.deepEqual(
      (await ready(cluster.output, 2)).map((l) => [l.semiSpaceMiB, l.memoryReducer]),
      [
        [SEMI_SPACE_MIB, false],
        [SEMI_SPACE_MIB, false],
      ],
    );
  } finally {
    assert.equal(await cluster.stop(), 0);
  }
});
