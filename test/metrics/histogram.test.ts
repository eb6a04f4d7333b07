// HotHistogram (src/metrics/histogram.ts) against prom-client's own Histogram as the oracle: the
// same observations must give the same exposition, alone and merged across workers the way the
// cluster primary merges them (AggregatorRegistry.aggregate).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { HotHistogram } from '../../src/metrics/histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const LABELS = ['method', 'route', 'status_code'] as const;
const OBSERVATIONS: Array<[number, string, string, string]> = [
  [0.0005, 'GET', '/', '200'],
  [0.001, 'GET', '/', '200'], // on a bound: counted in that bucket (le is inclusive)
  [0.02, 'GET', '/docs/[...slug]', '200'],
  [0.5, 'POST', '/api/echo', '413'],
  [3, 'GET', '/', '500'], // past the last bound: +Inf only
  [0.05, 'HEAD', '/', '200'],
  [0.0002, 'GET', '/docs/[...slug]', '499'],
];

function both(observations = OBSERVATIONS) {
  const ours = new Registry();
  const theirs = new Registry();
  const hot = new HotHistogram({ name: 'h', help: 'h help', labelNames: LABELS, buckets: BUCKETS, registers: [ours] });
  const reference = new Histogram({
    name: 'h',
    help: 'h help',
    labelNames: LABELS,
    buckets: BUCKETS,
    registers: [theirs],
  });
  for (const [value, method, route, status_code] of observations) {
    hot.observe(value, method, route, status_code);
    reference.observe({ method, route, status_code }, value);
  }
  return { ours, theirs, hot };
}

/** Exposition lines, sorted: Prometheus reads series in any order. */
const lines = (text: string) => text.trim().split('\n').sort();

describe('HotHistogram', () => {
  test("gives prom-client Histogram's exposition for the same observations", async () => {
    const { ours, theirs } = both();
    const text = await ours.metrics();
    assert.deepEqual(lines(text), lines(await theirs.metrics()));
    assert.match(text, /^h_bucket\{le="0.001",method="GET",route="\/",status_code="200"\} 2$/m);
    assert.match(text, /^h_bucket\{le="\+Inf",method="GET",route="\/",status_code="500"\} 1$/m);
  });

  test('merges across workers as prom-client Histogram does (the cluster primary)', async () => {
    const [a, b] = [both(OBSERVATIONS.slice(0, 4)), both(OBSERVATIONS.slice(2))];
    const merged = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
    const reference = AggregatorRegistry.aggregate([
      await a.theirs.getMetricsAsJSON(),
      await b.theirs.getMetricsAsJSON(),
    ]);
    assert.deepEqual(lines(await merged.metrics()), lines(await reference.metrics()));
  });

  test('ignores values that are not finite numbers instead of throwing', async () => {
    const { ours, hot } = both([]);
    hot.observe(Number.NaN, 'GET', '/', '200');
    hot.observe(Number.POSITIVE_INFINITY, 'GET', '/', '200');
    assert.doesNotMatch(await ours.metrics(), /^h_count/m);
  });

  test('reset() forgets every series', async () => {
    const { ours, hot } = both();
    ours.resetMetrics();
    assert.doesNotMatch(await ours.metrics(), /^h_count/m);
    hot.observe(0.5, 'GET', '/', '200');
    assert.match(await ours.metrics(), /^h_count\{method="GET",route="\/",status_code="200"\} 1$/m);
  });

  test('works with one and two labels', async () => {
    for (const labelNames of [['route'], ['route', 'renderer']] as const) {
      const ours = new Registry();
      const theirs = new Registry();
      const hot = new HotHistogram({ name: 'h', help: 'h', labelNames, buckets: BUCKETS, registers: [ours] });
      const reference = new Histogram({
        name: 'h',
        help: 'h',
        labelNames: [...labelNames],
        buckets: BUCKETS,
        registers: [theirs],
      });
      for (const [value, , route, status] of OBSERVATIONS) {
        hot.observe(value, route, status);
        reference.observe(labelNames.length === 1 ? { route } : { route, renderer: status }, value);
      }
      assert.deepEqual(lines(await ours.metrics()), lines(await theirs.metrics()), labelNames.join());
    }
  });

  test('refuses buckets out of order and label counts it cannot take', () => {
    const registers: Registry[] = [];
    assert.throws(
      () => new HotHistogram({ name: 'h', help: 'h', labelNames: ['a'], buckets: [1, 0.5], registers }),
      /increasing order/,
    );
    assert.throws(
      () => new HotHistogram({ name: 'h', help: 'h', labelNames: [], buckets: BUCKETS, registers }),
      /one to three labels/,
    );
    assert.throws(
      () => new HotHistogram({ name: 'h', help: 'h', labelNames: ['a', 'b', 'c', 'd'], buckets: BUCKETS, registers }),
      /one to three labels/,
    );
  });
});
