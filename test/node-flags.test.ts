// The Node flags npm start runs the origin with: what the process reads of them, and the start-up
// lines that tell an operator whether V8's young generation got its size.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NODE_FLAGS, SEMI_SPACE_MIB, semiSpaceMiB } from '../src/node-flags.ts';
import { logLines, spawnOrigin } from './helpers/origin.ts';
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
    assert.doesNotMatch(origin.output(), HINT);
  } finally {
    await origin.stop();
  }
});

test('given the flag through NODE_OPTIONS (the bin), the origin reads it there', async () => {
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
    assert.equal((await ready(origin.output))[0]?.semiSpaceMiB, undefined);
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
