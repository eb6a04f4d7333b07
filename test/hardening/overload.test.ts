// Overload: past a limit, the origin answers 503 + Retry-After at once instead of queueing;
// /healthz and /readyz keep answering 200; origin_overload_rejections_total counts the 503s;
// when the load goes away the origin serves normally again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import autocannon from 'autocannon';
import { OVERLOAD_SAMPLE_INTERVAL_MS } from '../../src/plugins/overload.ts';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { assertServing } from '../helpers/raw-http.ts';

/** The demo's largest docs page (uncached here): rendered in one synchronous stretch. */
const SYNC_PAGE = '/docs/load-testing/autocannon';

const metric = async (origin: OriginProcess, pattern: RegExp) =>
  Number(pattern.exec(await (await fetch(origin.metricsUrl)).text())?.[1] ?? NaN);

test('past MAX_EVENT_LOOP_UTILIZATION under load: 503 + Retry-After, probes stay 200, counted, then recovery', {
  timeout: 60_000,
}, async () => {
  const origin = await spawnOrigin({
    MAX_EVENT_LOOP_UTILIZATION: '0.5',
    // This limit alone: with the default MAX_EVENT_LOOP_DELAY_MS, a deep backlog is shed as renderWait too.
    MAX_EVENT_LOOP_DELAY_MS: '0',
    OVERLOAD_RETRY_AFTER_SECONDS: '7',
    LOG_LEVEL: 'warn',
  });
  try {
    await assertServing(origin.url);
    // Idle for two samples first: the cold first render above must not put the origin past the
    // limit before the load starts (it would then shed everything from the first request on, and
    // 50 connections answered 503 as fast as it can keep the utilisation past the limit).
    await new Promise((r) => setTimeout(r, 2 * OVERLOAD_SAMPLE_INTERVAL_MS + 100));
    const load = autocannon({
      url: origin.url,
      connections: 50,
      duration: 5,
      requests: [
        { method: 'GET', path: '/docs/' },
        { method: 'GET', path: '/probe-astro?token=load' },
      ],
    });
    const retryAfter = new Set<string>();
    const statuses = new Map<number, number>();
    load.on('response', (_client: unknown, status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1));
    // Meanwhile: probes, and a look at one shed response.
    const probes: number[] = [];
    let overloadedSeen = 0;
    let sheddingBody: { statusCode: number; message: string } | undefined;
    const probing = (async () => {
      const stop = Date.now() + 4500;
      while (Date.now() < stop) {
        probes.push((await fetch(`${origin.url}/healthz`)).status, (await fetch(`${origin.url}/readyz`)).status);
        const page = await fetch(`${origin.url}/docs/`);
        if (page.status === 503) {
          retryAfter.add(page.headers.get('retry-after') ?? '');
          assert.equal(page.headers.get('cache-control'), 'no-store');
          sheddingBody = (await page.json()) as typeof sheddingBody;
        } else await page.arrayBuffer();
        overloadedSeen = Math.max(overloadedSeen, await metric(origin, /^origin_overloaded (\S+)$/m));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const [result] = await Promise.all([load, probing]);

    const shed = statuses.get(503) ?? 0;
    assert.ok(shed > 0, `some requests were shed: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) > 0, 'and others were served');
    assert.deepEqual([...statuses.keys()].sort(), [200, 503], 'nothing but 200 and 503');
    assert.equal(result.errors, 0, 'no connection errors: shedding answers, it does not drop');
    assert.ok(probes.length > 0 && probes.every((s) => s === 200), `/healthz and /readyz stayed 200: ${probes}`);
    assert.deepEqual([...retryAfter], ['7'], 'Retry-After is OVERLOAD_RETRY_AFTER_SECONDS');
    assert.match(sheddingBody?.message ?? '', /overloaded; retry in 7 s/);
    assert.equal(overloadedSeen, 1, 'origin_overloaded was 1 while shedding');
    const counted = await metric(origin, /^origin_overload_rejections_total\{reason="eventLoopUtilization"\} (\S+)$/m);
    assert.ok(
      counted >= shed,
      `origin_overload_rejections_total (${counted}) counts every 503 (${shed} seen by autocannon)`,
    );

    // Load gone: within a couple of samples the origin serves again.
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 200));
      recovered =
        (await fetch(`${origin.url}/docs/`)).status === 200 &&
        (await metric(origin, /^origin_overloaded (\S+)$/m)) === 0;
    }
    assert.ok(recovered, 'the origin recovered once the load stopped');
    await assertServing(origin.url, { alive: () => origin.child.exitCode === null });
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});

test('past MAX_HEAP_USED_BYTES: every route but the probes is shed, with reason heapUsedBytes', async () => {
  const origin = await spawnOrigin({ MAX_HEAP_USED_BYTES: '1', MAX_EVENT_LOOP_DELAY_MS: '0' });
  try {
    // Under pressure from the first sample: wait for it.
    let status = 0;
    for (let i = 0; i < 50 && status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await fetch(`${origin.url}/docs/`)).status;
    }
    for (const path of ['/docs/', '/about/', '/probe-astro?token=x', '/no/such/page', '/api/echo']) {
      const res = await fetch(origin.url + path);
      assert.equal(res.status, 503, path);
      assert.equal(res.headers.get('retry-after'), '10', 'the default Retry-After');
      assert.deepEqual(await res.json(), {
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'The origin is overloaded; retry in 10 s.',
      });
    }
    assert.equal((await fetch(`${origin.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${origin.url}/readyz`)).status, 200);
    assert.ok((await metric(origin, /^origin_overload_rejections_total\{reason="heapUsedBytes"\} (\S+)$/m)) >= 5);
    const text = await (await fetch(origin.metricsUrl)).text();
    assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\(overloaded\)",status_code="503"\}/);
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});

test('renders waiting past MAX_EVENT_LOOP_DELAY_MS for a loop turn: shed with reason renderWait, the backlog in origin_renders_waiting', {
  timeout: 60_000,
}, async () => {
  // Render turns keep the loop's own delay near RENDER_SLICE_MS however deep the backlog: the
  // backlog shows as renders waiting for a turn, and the same limit applies to their wait.
  const origin = await spawnOrigin({ MAX_EVENT_LOOP_DELAY_MS: '60', CACHE_MAX_BYTES: '0', LOG_LEVEL: 'warn' });
  try {
    await assertServing(origin.url);
    let waitingSeen = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        waitingSeen = Math.max(waitingSeen, await metric(origin, /^origin_renders_waiting (\S+)$/m));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // The largest docs page: a queue render of ~2 300 nodes, a few ms of synchronous work each;
    // 50 at once wait ~50 × that. (Not /probe-large: its components await timers, so its renders
    // interleave instead of waiting for a turn.)
    const result = await autocannon({ url: `${origin.url}${SYNC_PAGE}`, connections: 50, duration: 4 });
    sampling = false;
    await sampler;
    assert.ok(result.non2xx > 0, `some requests were shed (${result['2xx']} answered 2xx)`);
    assert.ok((await metric(origin, /^origin_overload_rejections_total\{reason="renderWait"\} (\S+)$/m)) > 0);
    assert.ok(waitingSeen > 0, 'origin_renders_waiting showed the backlog');
    // Load gone: the next sample finds no render waiting, and the origin serves again.
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      await new Promise((r) => setTimeout(r, 200));
      recovered = (await fetch(`${origin.url}/docs/`)).status === 200;
    }
    assert.ok(recovered, 'the origin recovered once the load stopped');
    await assertServing(origin.url, { alive: () => origin.child.exitCode === null });
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});
