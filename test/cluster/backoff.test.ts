// The restart back-off of the cluster primary, as a pure function.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RESTART_BACKOFF, restartDelay } from '../../src/cluster/backoff.ts';

const { minMs, maxMs, stableMs } = RESTART_BACKOFF;

test('the first restart of a slot waits minMs', () => {
  assert.equal(restartDelay(undefined, 0), minMs);
  assert.equal(restartDelay(undefined, stableMs * 10), minMs);
});

test('a worker that keeps dying waits twice as long each time, up to maxMs', () => {
  const delays: number[] = [];
  let previous: number | undefined;
  for (let i = 0; i < 10; i++) {
    previous = restartDelay(previous, 50);
    delays.push(previous);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
});

test('a worker that ran for stableMs restarts after minMs again, and doubles from there', () => {
  assert.equal(restartDelay(maxMs, stableMs - 1), maxMs);
  assert.equal(restartDelay(maxMs, stableMs), minMs);
  assert.equal(restartDelay(minMs, 10), 2 * minMs);
});

test('another policy', () => {
  const policy = { minMs: 10, maxMs: 25, stableMs: 1000 };
  assert.equal(restartDelay(undefined, 0, policy), 10);
  assert.equal(restartDelay(10, 0, policy), 20);
  assert.equal(restartDelay(20, 0, policy), 25);
  assert.equal(restartDelay(20, 1000, policy), 10);
});
