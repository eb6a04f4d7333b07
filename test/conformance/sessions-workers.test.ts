// Sessions survive WORKERS=2: the adapter's default driver keeps them on disk, so the worker
// that did not create a session still reads it. The counter must keep counting while requests
// (each on a new connection, which node:cluster hands out round-robin) reach both workers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { waitForReadyWorkers } from '../helpers/workers.ts';
import { buildDir, ensureConformanceBuilds } from './builds.ts';
import { send } from './harness.ts';

let origin: OriginProcess;
before(async () => {
  await ensureConformanceBuilds();
  origin = await spawnOrigin({ BUILD_DIR: buildDir('default', 'ours'), WORKERS: '2' });
  await waitForReadyWorkers(origin, 2);
});
after(async () => {
  assert.equal(await origin?.stop(), 0);
});

test('one session, counted by both workers, loses no step', async () => {
  const first = await send(origin.url, { path: '/api/session-count' });
  assert.equal(first.status, 200, first.text);
  const cookie = String((first.headers['set-cookie'] as string[])[0]).split(';')[0]!;
  const pids = new Set<number>([JSON.parse(first.text).pid]);
  let expected = 1;
  assert.equal(JSON.parse(first.text).count, expected);
  // Round-robin spreads new connections over the workers; 40 requests bound the test if it does not.
  for (let i = 0; i < 40 && (pids.size < 2 || expected < 6); i++) {
    const res = await send(origin.url, { path: '/api/session-count', headers: { cookie } });
    const body = JSON.parse(res.text) as { count: number; pid: number };
    expected++;
    assert.equal(body.count, expected, `request ${expected} (worker pid ${body.pid}) saw the session`);
    pids.add(body.pid);
  }
  assert.equal(pids.size, 2, `both workers served the session; the origin printed:\n${origin.output()}`);
});
