// astro_queue_nodes_per_render{route} on the real demo build: the docs pages render through the
// queue (an MDX shell, not a frontmatter layout, which would make them ~1 node each), and each
// render's count is its own even when many renders interleave.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mdxPages } from '../../load/lib/site.ts';
import type { RunningOrigin } from '../../src/standalone.ts';
import { hammer } from '../helpers/load.ts';
import { startTestOrigin } from '../helpers/origin.ts';

/** The floor of the issue: a docs page whose content the queue does not see acquires ~1 node. */
const MIN_NODES_PER_DOCS_RENDER = 50;

type Histogram = Map<string, { sum: number; count: number }>;

function nodesPerRender(text: string): Histogram {
  const out: Histogram = new Map();
  for (const m of text.matchAll(/^astro_queue_nodes_per_render_(sum|count)\{route="([^"]*)"\} (\S+)$/gm)) {
    const entry = out.get(m[2]!) ?? { sum: 0, count: 0 };
    entry[m[1] as 'sum' | 'count'] = Number(m[3]);
    out.set(m[2]!, entry);
  }
  return out;
}

function acquires(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/^astro_queue_pool_acquires_total\{source="\w+"\} (\S+)$/gm)) total += Number(m[1]);
  return total;
}

describe('queue nodes per render, by route', () => {
  let origin: RunningOrigin;
  const scrape = async () => (await fetch(origin.metricsUrl!)).text();
  const docs = mdxPages().filter((p) => p.startsWith('/docs'));

  before(async () => {
    origin = await startTestOrigin({ POOL_POLICY: 'shared', POOL_SIZE: '5000' });
  });
  after(() => origin.close());

  test(`every docs page acquires at least ${MIN_NODES_PER_DOCS_RENDER} queue nodes per render`, async () => {
    assert.ok(docs.length >= 30, `expected the demo's docs pages, found ${docs.length}`);
    const statuses = await hammer(docs.length, 4, (i) => origin.url + docs[i]!);
    assert.deepEqual([...statuses], [[200, docs.length]]);
    const histogram = nodesPerRender(await scrape());
    for (const path of docs) {
      const route = path;
      const entry = histogram.get(route);
      assert.ok(entry, `no astro_queue_nodes_per_render series for ${route}`);
      assert.equal(entry.count, 1, route);
      assert.ok(
        entry.sum >= MIN_NODES_PER_DOCS_RENDER,
        `${route}: ${entry.sum} queue nodes per render; a docs page whose content is one layout slot acquires ~1`,
      );
    }
  });

  test('each render counts its own nodes, however many interleave (the sums add up exactly)', async () => {
    const routes = ['/docs/caching/cache-control', '/docs/performance/node-pool', '/probe'];
    const alone = new Map<string, number>();
    let before = nodesPerRender(await scrape());
    for (const route of routes) {
      await (await fetch(`${origin.url}${route}?token=alone`)).arrayBuffer();
      const now = nodesPerRender(await scrape());
      alone.set(route, now.get(route)!.sum - (before.get(route)?.sum ?? 0));
      before = now;
    }
    assert.notEqual(
      alone.get(routes[0]!),
      alone.get(routes[1]!),
      'the pages must differ for the check to mean anything',
    );
    const acquiredBefore = acquires(await scrape());
    const perRoute = 40;
    // Each request waits 0-5 ms in the demo's middleware first, so renders interleave before Astro
    // reads the pool (and /probe's async components make them overlap while rendering too).
    const statuses = await hammer(
      routes.length * perRoute,
      30,
      (i) =>
        new Request(`${origin.url}${routes[i % routes.length]}?token=t${i}`, {
          headers: { 'x-render-delay-ms': String(i % 6) },
        }),
    );
    assert.deepEqual([...statuses], [[200, routes.length * perRoute]]);
    const text = await scrape();
    const after = nodesPerRender(text);
    let counted = 0;
    for (const route of routes) {
      const sum = after.get(route)!.sum - before.get(route)!.sum;
      const count = after.get(route)!.count - before.get(route)!.count;
      assert.equal(count, perRoute, route);
      assert.equal(sum, perRoute * alone.get(route)!, `${route}: every render must count exactly its own nodes`);
      counted += sum;
    }
    assert.equal(acquires(text) - acquiredBefore, counted, 'every node the pool handed out is counted, once');
  });
});
