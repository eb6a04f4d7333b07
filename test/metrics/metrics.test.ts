import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { RunningOrigin } from '../../src/standalone.ts';
import { hammer } from '../helpers/load.ts';
import { run, startTestOrigin } from '../helpers/origin.ts';

let origin: RunningOrigin;
before(async () => {
  origin = await startTestOrigin();
});
after(() => origin.close());

const scrape = async () => {
  const res = await fetch(origin.metricsUrl!);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
};
const routeLabels = (text: string) =>
  new Set([...text.matchAll(/^http_request_duration_seconds_count\{[^}]*route="([^"]*)"/gm)].map((m) => m[1]));

test('the exposition passes promtool check metrics and has every documented family', async () => {
  await hammer(
    10,
    2,
    (i) => `${origin.url}/${['probe?token=a', 'probe-astro?token=b', 'docs/', 'nope', 'errors/throw'][i % 5]}`,
  );
  const text = await scrape();
  const { code, output } = await run('promtool', ['check', 'metrics'], { input: text });
  assert.equal(code, 0, output);
  for (const name of [
    'astro_queue_pool_acquires_total{source="reused"}',
    'astro_queue_pool_acquires_total{source="new"}',
    'astro_queue_pool_releases_total{outcome="pooled"}',
    'astro_queue_pool_releases_total{outcome="dropped"}',
    'astro_queue_pool_hit_ratio',
    'astro_queue_pool_available_nodes',
    'astro_queue_pool_capacity_nodes',
    'astro_queue_pool_policy_info{policy="off"} 1',
    'astro_render_duration_seconds_bucket{le="0.001",route="/probe",renderer="queue"}',
    'astro_render_duration_seconds_bucket{le="0.001",route="/probe-astro",renderer="recursive"}',
    'http_request_duration_seconds_bucket{le="0.001",method="GET",route="/probe",status_code="200"}',
    'http_request_duration_seconds_bucket{le="0.001",method="GET",route="/errors/throw",status_code="500"}',
    'http_requests_in_flight',
    'process_page_faults_total{type="minor"}',
    'process_page_faults_total{type="major"}',
    'process_context_switches_total{type="voluntary"}',
    'process_context_switches_total{type="involuntary"}',
    'nodejs_eventloop_utilization',
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_size_total_bytes',
    'nodejs_heap_space_size_used_bytes{space="old"}',
    'nodejs_external_memory_bytes',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_active_handles{type=',
    'origin_cache_requests_total{result="hit"}',
    'origin_cache_requests_total{result="bypass"}',
    'origin_cache_revalidations_total{outcome="success"}',
    'origin_cache_evictions_total',
    'origin_cache_purges_total',
    'origin_cache_purge_fanout_failures_total 0',
    'origin_cache_bytes',
    'origin_cache_entries',
  ]) {
    assert.ok(text.includes(name), `missing ${name}`);
  }
});

test('5 000 requests to random unknown URLs add at most one route label value', async () => {
  const before = routeLabels(await scrape());
  const statuses = await hammer(5000, 50, () => `${origin.url}/${randomUUID()}/${randomUUID()}?q=${randomUUID()}`);
  assert.deepEqual([...statuses], [[404, 5000]]);
  const added = [...routeLabels(await scrape())].filter((r) => !before.has(r));
  assert.ok(added.length <= 1, `new route labels: ${JSON.stringify(added)}`);
});

test('static files share one route label', async () => {
  await fetch(`${origin.url}/about/`);
  const labels = routeLabels(await scrape());
  assert.ok(labels.has('(static)'));
  assert.ok(![...labels].some((l) => l?.startsWith('/_astro/') || l === '/about/'));
});

test('HEAD and OPTIONS are counted, not dropped', async () => {
  await fetch(`${origin.url}/docs/`, { method: 'HEAD' });
  await fetch(`${origin.url}/api/echo`, { method: 'OPTIONS' });
  const text = await scrape();
  assert.match(text, /http_request_duration_seconds_count\{method="HEAD",route="\/docs"/);
  assert.match(text, /http_request_duration_seconds_count\{method="OPTIONS",route="\/api\/echo"/);
});

test('/metrics is not served on the public port', async () => {
  const res = await fetch(`${origin.url}/metrics`);
  assert.equal(res.status, 404);
  assert.doesNotMatch(await res.text(), /astro_queue_pool/);
});

test('the in-flight gauge returns to 0 after traffic, aborted requests included', async () => {
  await hammer(50, 10, (i) => `${origin.url}/probe?token=f${i}`);
  const controllers = Array.from({ length: 10 }, () => new AbortController());
  await Promise.allSettled(
    controllers.map((c, i) => {
      const p = fetch(`${origin.url}/probe-astro?token=g${i}`, { signal: c.signal });
      setTimeout(() => c.abort(), 1);
      return p;
    }),
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.match(await scrape(), /^http_requests_in_flight 0$/m);
});

const sample = (text: string, series: string) =>
  Number(text.match(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'))?.[1] ?? 0);

test('the in-flight gauge, read at scrape time, counts a request while it is being answered', async () => {
  const gates = () =>
    (globalThis as { __streamTestHooks?: { gates: Map<string, () => void> } }).__streamTestHooks?.gates;
  const res = await fetch(`${origin.url}/api/stream?mode=gated&id=in-flight-1`);
  const reader = res.body!.getReader();
  await reader.read(); // the first chunk: the response has started and waits for its gate
  assert.match(await scrape(), /^http_requests_in_flight [1-9]/m);
  gates()!.get('in-flight-1')!();
  while (!(await reader.read()).done);
  await new Promise((r) => setTimeout(r, 100));
  assert.match(await scrape(), /^http_requests_in_flight 0$/m);
});

test('a client that leaves mid-render or mid-stream is counted as 499, its render not as a completed one', async () => {
  const http499 = 'http_request_duration_seconds_count{method="GET",route="/api/stream",status_code="499"}';
  const renders = 'astro_render_duration_seconds_count{route="/api/stream",renderer="endpoint"}';
  const before = await scrape();
  for (const id of ['m1', 'm2']) {
    const controller = new AbortController();
    const res = await fetch(`${origin.url}/api/stream?mode=endless&id=${id}&every=10000`, {
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk arrived: the request reached the endpoint and streams
    controller.abort();
    await reader.read().catch(() => {});
  }
  // One that leaves while the page is still rendering, before anything was sent.
  const controller = new AbortController();
  const late = fetch(`${origin.url}/api/stream?mode=late&delay=300&id=m3&every=10000`, { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await late.catch(() => {});
  await new Promise((r) => setTimeout(r, 500));
  const text = await scrape();
  assert.equal(sample(text, http499) - sample(before, http499), 3, 'the aborted exchanges counted as 499');
  assert.equal(sample(text, renders), sample(before, renders), 'no completed render recorded for them');
});
