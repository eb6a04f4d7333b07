// The node-pool policy, proven from the exported metrics and by tagging every queue node with
// the request that acquired it.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { after, describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { buildApp } from '../../src/app.ts';
import type { NodePool } from '../../src/astro/astro-internals.ts';
import { loadBuild } from '../../src/astro/load-build.ts';
import { hammer } from '../helpers/load.ts';
import { DEMO_BUILD, testConfig } from '../helpers/origin.ts';

const build = await loadBuild(DEMO_BUILD);

// Test-only instrumentation of the real App: which request is rendering, and which request
// acquired each queue node last. A node acquired by two requests crossed between them.
const rendering = new AsyncLocalStorage<string>();
const lastOwner = new WeakMap<object, string>();
let crossings = 0;
const pipeline = (build.app as unknown as { pipeline: { createNodePool(size: number, stats: boolean): NodePool } })
  .pipeline;
const createNodePool = pipeline.createNodePool.bind(pipeline);
pipeline.createNodePool = (size, stats) => {
  const pool = createNodePool(size, stats) as NodePool & { acquire(type: string, content?: string): object };
  const acquire = pool.acquire.bind(pool);
  pool.acquire = (type, content) => {
    const node = acquire(type, content);
    const owner = rendering.getStore() ?? '(none)';
    const previous = lastOwner.get(node);
    if (previous !== undefined && previous !== owner) crossings = crossings + 1;
    lastOwner.set(node, owner);
    return node;
  };
  return pool;
};
const render = build.app.render.bind(build.app);
build.app.render = (request, options) =>
  rendering.run(String((options?.locals as { requestId?: string } | undefined)?.requestId), () =>
    render(request, options),
  );

async function serve(policy: string) {
  const registry = new Registry();
  const app = await buildApp({
    config: testConfig({ POOL_POLICY: policy, POOL_SIZE: '1000' }),
    build,
    logger: false,
    metrics: { registry },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
    assert.ok(metric, `${name} is exported`);
    const sample = metric.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    assert.ok(sample, `${name}${JSON.stringify(labels)} has a sample`);
    return sample.value;
  };
  return { app, url, value };
}

const probe = (url: string) => (i: number) => `${url}/probe?token=t${i}`;
let open: Awaited<ReturnType<typeof serve>>['app'] | undefined;
after(() => open?.close());

describe('POOL_POLICY', () => {
  test('off: nothing is reused, every release is dropped, and metrics alone show it', async () => {
    const { app, url, value } = await serve('off');
    open = app;
    crossings = 0;
    const statuses = await hammer(300, 20, probe(url));
    assert.deepEqual([...statuses], [[200, 300]]);
    const reused = await value('astro_queue_pool_acquires_total', { source: 'reused' });
    const fresh = await value('astro_queue_pool_acquires_total', { source: 'new' });
    assert.equal(reused, 0);
    assert.ok(fresh >= 300 * 20, `new acquires: ${fresh}`);
    assert.equal(await value('astro_queue_pool_hit_ratio'), 0);
    assert.equal(await value('astro_queue_pool_releases_total', { outcome: 'pooled' }), 0);
    assert.equal(await value('astro_queue_pool_releases_total', { outcome: 'dropped' }), fresh);
    assert.equal(await value('astro_queue_pool_capacity_nodes'), 0);
    assert.equal(await value('astro_queue_pool_policy_info', { policy: 'off' }), 1);
    assert.equal(crossings, 0);
    await app.close();
  });

  test('per-request: no node is ever seen by two requests', async () => {
    const { app, url, value } = await serve('per-request');
    open = app;
    crossings = 0;
    const statuses = await hammer(300, 20, probe(url));
    assert.deepEqual([...statuses], [[200, 300]]);
    assert.equal(crossings, 0, 'a queue node crossed between requests');
    assert.ok((await value('astro_queue_pool_acquires_total', { source: 'new' })) > 0);
    assert.equal(await value('astro_queue_pool_policy_info', { policy: 'per-request' }), 1);
    await app.close();
  });

  test('shared: nodes are reused across requests, hit ratio > 0.9 after warm-up', async () => {
    const { app, url, value } = await serve('shared');
    open = app;
    crossings = 0;
    await hammer(300, 20, probe(url));
    const ratio = await value('astro_queue_pool_hit_ratio');
    assert.ok(ratio > 0.9, `hit ratio ${ratio}`);
    assert.ok((await value('astro_queue_pool_available_nodes')) > 0);
    assert.equal(await value('astro_queue_pool_capacity_nodes'), 1000);
    // The control for the per-request test: the same tagging does see crossings here.
    assert.ok(crossings > 0, 'shared pool reuse should move nodes between requests');
    await app.close();
  });
});
