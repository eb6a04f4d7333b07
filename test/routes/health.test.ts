import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildApp } from '../../src/app.ts';
import { loadBuild } from '../../src/astro/load-build.ts';
import { DEMO_BUILD, startTestOrigin, testConfig } from '../helpers/origin.ts';

test('/readyz is 503 until the origin is listening with its Astro app, then 200', async () => {
  const app = await buildApp({ config: testConfig(), build: await loadBuild(DEMO_BUILD), logger: false });
  const starting = await app.inject('/readyz');
  assert.equal(starting.statusCode, 503);
  assert.deepEqual(starting.json(), { status: 'starting' });
  assert.equal((await app.inject('/healthz')).statusCode, 200, 'alive while starting');
  await app.close();

  const origin = await startTestOrigin();
  try {
    const ready = await fetch(`${origin.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
  } finally {
    await origin.close();
  }
});

test('/readyz turns 503 as soon as shutdown begins, before in-flight work ends', async () => {
  const origin = await startTestOrigin();
  origin.app.lifecycle.draining = true; // what close() does first
  const res = await origin.app.inject('/readyz');
  assert.equal(res.statusCode, 503);
  assert.deepEqual(res.json(), { status: 'draining' });
  assert.equal((await origin.app.inject('/healthz')).statusCode, 200, 'still alive while draining');
  await origin.close();
});
