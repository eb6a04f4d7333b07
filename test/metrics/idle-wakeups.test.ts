// An idle origin should sleep. Every periodic sampler wakes the event loop: at 10 ms (prom-client's
// default lag precision, under-pressure's fixed resolution) that is 100 loop turns a second per
// sampler, CPU spent on an origin that serves nothing. Counted with libuv's own loop counter.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestOrigin } from '../helpers/origin.ts';

const NO_LIMITS = {
  MAX_EVENT_LOOP_DELAY_MS: '0',
  MAX_EVENT_LOOP_UTILIZATION: '0',
  MAX_HEAP_USED_BYTES: '0',
  MAX_RSS_BYTES: '0',
};

/** Event-loop turns during one idle second of an origin started with `env`. */
async function idleLoopTurns(env: Record<string, string>): Promise<number> {
  const origin = await startTestOrigin({ METRICS_ENABLED: 'true', ...env });
  try {
    // One scrape, as Prometheus does: collectors and samplers are all running.
    await (await fetch(origin.metricsUrl!)).text();
    await sleep(200);
    const before = performance.nodeTiming.uvMetricsInfo.loopCount;
    await sleep(1000);
    return performance.nodeTiming.uvMetricsInfo.loopCount - before;
  } finally {
    await origin.close();
  }
}

test('with metrics on and load shedding off, an idle origin wakes ~10 times a second, not 100+', async () => {
  const turns = await idleLoopTurns(NO_LIMITS);
  // prom-client's lag sampler (EVENT_LOOP_LAG_PRECISION_MS: 10 a second), the connection checker
  // (1 a second) and this test's own timer.
  assert.ok(turns <= 30, `${turns} loop turns in an idle second`);
});

test('a shedding limit set: under-pressure samples the loop every 10 ms (what the test above would see)', async () => {
  const turns = await idleLoopTurns({ ...NO_LIMITS, MAX_EVENT_LOOP_DELAY_MS: '1000' });
  assert.ok(turns >= 60, `${turns} loop turns in an idle second`);
});
