// Astro 6.4 internals we depend on. When an Astro upgrade moves any of them, this fails first
// and says which.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  countQueueNodes,
  createNodePool,
  enableQueueNodeCounting,
  memoizePageModules,
  queuedRenderingEnabled,
  rendererOf,
  setNodePoolSource,
} from '../../src/astro/astro-internals.ts';
import { loadBuild } from '../../src/astro/load-build.ts';
import { DEMO_BUILD } from '../helpers/origin.ts';

const { app, fetchState } = await loadBuild(DEMO_BUILD);

test('App.pipeline has nodePool and createNodePool(size, stats)', () => {
  const pipeline = (app as unknown as { pipeline: Record<string, unknown> }).pipeline;
  assert.equal(typeof pipeline.createNodePool, 'function');
  assert.ok('nodePool' in pipeline);
  const pool = createNodePool(app, 7);
  assert.equal(pool.maxSize, 7);
  assert.deepEqual(
    Object.keys(pool.getStats()).sort(),
    ['acquireFromPool', 'acquireNew', 'hitRate', 'maxSize', 'poolSize', 'released', 'releasedDropped'].sort(),
  );
});

test("the production manifest enables queued rendering with Astro's hardcoded poolSize 0", () => {
  assert.equal(queuedRenderingEnabled(app), true);
  const manifest = app.manifest as unknown as { experimentalQueuedRendering: { poolSize: number } };
  assert.equal(manifest.experimentalQueuedRendering.poolSize, 0);
});

test('renders read the pool from pipeline.nodePool: an MDX page acquires nodes, an .astro page none', async () => {
  const pool = createNodePool(app, 0);
  setNodePoolSource(app, () => pool);
  const render = async (path: string) => {
    const request = new Request(`http://127.0.0.1${path}`);
    const routeData = app.match(request);
    assert.ok(routeData, path);
    const before = pool.getStats().acquireNew;
    const response = await app.render(request, { routeData });
    assert.equal(response.status, 200, path);
    await response.text();
    return { renderer: rendererOf(routeData, true), acquired: pool.getStats().acquireNew - before };
  };
  const mdx = await render('/probe?token=x');
  assert.equal(mdx.renderer, 'queue');
  assert.ok(mdx.acquired > 20, `MDX page went through the queue renderer (${mdx.acquired} nodes)`);
  const astro = await render('/probe-astro?token=x');
  assert.equal(astro.renderer, 'recursive');
  assert.equal(astro.acquired, 0, '.astro page took the recursive path');
});

test("the build exports Astro's FetchState, whose createResult hands each render the pool: counted per render", async () => {
  assert.equal(typeof fetchState, 'function', "the server entry exports the build's FetchState");
  assert.equal(enableQueueNodeCounting(fetchState), true, 'FetchState (or a base class) has createResult');
  assert.equal(enableQueueNodeCounting(fetchState), true, 'idempotent');
  assert.equal(enableQueueNodeCounting(undefined), false, 'an older build: unavailable, not wrong');
  const pool = createNodePool(app, 0);
  setNodePoolSource(app, () => pool);
  const request = new Request('http://127.0.0.1/probe?token=x');
  const count = countQueueNodes(request);
  const before = pool.getStats().acquireNew;
  const response = await app.render(request, { routeData: app.match(request) });
  await response.text();
  assert.ok(count.nodes > 20, `the render's own count (${count.nodes})`);
  assert.equal(
    count.nodes,
    pool.getStats().acquireNew - before,
    "every acquire of this render, and only this render's",
  );
});

test("the build's pageMap: each page module imported once, every render after it gets the same module", async () => {
  // The App this file shares (a build's modules load once per process); memoizing changes no
  // other test's outcome.
  const pageMap = (app.manifest as unknown as { pageMap: Map<string, () => Promise<unknown>> }).pageMap;
  assert.ok(pageMap instanceof Map && pageMap.size > 0, 'the manifest has a pageMap');
  // Count the build's own import() calls, under the memo.
  const imports = new Map<string, number>();
  for (const [component, load] of pageMap)
    pageMap.set(component, () => {
      imports.set(component, (imports.get(component) ?? 0) + 1);
      return load();
    });
  const wrapped = memoizePageModules(app);
  assert.equal(wrapped, pageMap.size);
  assert.equal(memoizePageModules(app), 0, 'idempotent: a loader is wrapped once');
  const render = async (path: string) => {
    const response = await app.render(new Request(`http://127.0.0.1${path}`));
    assert.equal(response.status, 200, path);
    return response.text();
  };
  const first = await render('/bench/tiny');
  const again = await render('/bench/tiny');
  assert.equal(again, first);
  await render('/probe?token=x');
  await render('/probe?token=y');
  assert.equal(imports.get('demo/pages/bench/tiny.astro'), 1, 'tiny: imported once for two renders');
  assert.equal(imports.get('demo/pages/probe.mdx'), 1, 'probe: imported once for two renders');
  const component = 'demo/pages/bench/tiny.astro';
  assert.equal(pageMap.get(component)!(), pageMap.get(component)!(), 'the same promise each time');
});

test('a page module whose import fails is imported again next time, not remembered failed', async (t) => {
  const pageMap = (app.manifest as unknown as { pageMap: Map<string, () => Promise<unknown>> }).pageMap;
  const component = 'demo/pages/bench/tiny.astro';
  const real = pageMap.get(component)!;
  t.after(() => pageMap.set(component, real));
  let calls = 0;
  pageMap.set(component, () => (++calls === 1 ? Promise.reject(new Error('first import fails')) : real()));
  memoizePageModules(app);
  await assert.rejects(pageMap.get(component)!(), /first import fails/);
  assert.ok(await pageMap.get(component)!());
  assert.ok(await pageMap.get(component)!());
  assert.equal(calls, 2, 'one failed import, then one that succeeded and was kept');
});
