// Three origins behind HAProxy, sharing sessions and cache purges through one redis-server,
// scraped by one Prometheus (load/lib/topology.ts, what `npm run cluster:local` starts): a
// session crosses instances, a purge made on one instance empties all three, a rolling restart
// under load loses no request, and Prometheus sums the instances as the Grafana dashboard does.
// Everything started is stopped by pid, and checked gone.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  HAPROXY,
  type Instance,
  JOB,
  PROMETHEUS,
  PURGE_TOKEN,
  REDIS_SERVER,
  rollingRestart,
  startTopology,
  type Topology,
} from '../../load/lib/topology.ts';
import { DEFAULT_REDIS_PREFIX } from '../../src/session/driver.ts';
import { DEMO_BUILD } from '../helpers/origin.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { dashboardTargets, substituteVariables } from '../stack/stack-helpers.ts';

const INSTANCES = 3;
let topology: Topology;
let startedPids: number[] = [];

before(async () => {
  for (const binary of [REDIS_SERVER, HAPROXY, PROMETHEUS])
    assert.ok(existsSync(binary), `${binary} is missing: run scripts/install-test-deps.sh (Debian packages)`);
  assert.ok(existsSync(`${DEMO_BUILD}/server/entry.mjs`), 'no demo build: run `npm run build` first');
  topology = await startTopology({ instances: INSTANCES, prometheus: true, scrapeInterval: '1s' });
});

after(async () => {
  if (!topology) return;
  startedPids = [...startedPids, ...Object.values(topology.pids()).filter((p): p is number => p !== undefined)];
  await topology.stop();
  for (const pid of startedPids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid} still runs`);
});

interface Counted {
  count: number;
  pid: number;
}

async function count(url: string, cookie?: string): Promise<{ body: Counted; cookie: string | undefined }> {
  const res = await fetch(`${url}/api/session-counter`, { headers: cookie ? { cookie } : {} });
  assert.equal(res.status, 200, `${url}: ${await res.clone().text()}`);
  return { body: (await res.json()) as Counted, cookie: res.headers.get('set-cookie')?.split(';')[0] };
}

test('a session started through one instance is read and updated through the others (Redis)', async () => {
  const [a, b, c] = topology.instances as [
    Topology['instances'][0],
    Topology['instances'][0],
    Topology['instances'][0],
  ];
  const first = await count(a.url);
  assert.equal(first.body.count, 1);
  assert.match(first.cookie ?? '', /^astro-session=/);
  const cookie = first.cookie as string;
  const pids = new Set([first.body.pid]);
  let expected = 1;
  for (const instance of [b, c, a, c, b]) {
    const { body } = await count(instance.url, cookie);
    expected++;
    assert.equal(
      body.count,
      expected,
      `${instance.name} (pid ${body.pid}) read the session ${instance.name} did not start`,
    );
    pids.add(body.pid);
  }
  assert.equal(pids.size, INSTANCES, 'each instance answered with its own process');
  const redis = new Redis(topology.redisUrl, { lazyConnect: true });
  try {
    await redis.connect();
    const id = cookie.slice('astro-session='.length);
    assert.equal(await redis.exists(`${DEFAULT_REDIS_PREFIX}:${id}`), 1, 'the session is stored in Redis');
    // The instances share this host's disk too (the fs-lite directory is fixed at build time):
    // emptying Redis must end the session everywhere, or it was kept somewhere else.
    await redis.flushall();
    for (const instance of [a, b, c])
      assert.equal((await count(instance.url, cookie)).body.count, 1, `${instance.name} read it from Redis only`);
  } finally {
    redis.disconnect();
  }
});

/** The X-Cache answer of `instance` alone (not through HAProxy) for `page`. */
async function xCache(instance: Instance, page: string): Promise<string | null> {
  const res = await fetch(instance.url + page);
  assert.equal(res.status, 200, `${instance.name} ${page}`);
  await res.arrayBuffer();
  return res.headers.get('x-cache');
}

/** Every instance holds `page`: asked until each answers a HIT. */
async function warm(page: string): Promise<void> {
  for (const instance of topology.instances)
    await waitFor(`${instance.name} to hold ${page}`, 5000, async () => (await xCache(instance, page)) === 'HIT');
}

/**
 * Each instance answers `page` with a MISS: at once the one that purged (`purgedBy`), which did
 * so before it answered; the others within the Redis round trip (a HIT before the message has
 * arrived is asked again; the answer after it is the MISS, and the page is cached again).
 */
async function missEverywhere(page: string, how: string, purgedBy: Instance): Promise<number[]> {
  assert.equal(await xCache(purgedBy, page), 'MISS', `${purgedBy.name} after ${how}`);
  const asked: number[] = [];
  for (const instance of topology.instances.filter((i) => i !== purgedBy)) {
    let n = 0;
    await waitFor(
      `${instance.name} to answer ${page} with a MISS after ${how}`,
      3000,
      async () => {
        n++;
        return (await xCache(instance, page)) === 'MISS' ? true : undefined;
      },
      50,
    );
    asked.push(n);
  }
  return asked;
}

test("a purge reaches all three: POST /cache/purge on one instance, the site's cache.invalidate() on another", async (t) => {
  const [a, b] = topology.instances as [Instance, Instance];
  // The demo caches /docs/** for 60 s, tagged docs and docs:<section> (astro.config.mjs).
  const page = '/docs/caching/purging';
  await warm(page);
  const res = await fetch(new URL('/cache/purge', a.server.metricsUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PURGE_TOKEN}` },
    body: JSON.stringify({ tags: ['docs:caching'] }),
  });
  assert.equal(res.status, 200);
  const outcome = (await res.json()) as { removed: number; fanout?: string };
  assert.ok(outcome.removed >= 1, `${a.name} purged its own copy: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.fanout, 'published');
  const afterPost = await missEverywhere(page, `POST /cache/purge on ${a.name}`, a);

  await warm(page);
  const site = await fetch(`${b.url}/cache/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: page }),
  });
  assert.equal(site.status, 200);
  const afterSite = await missEverywhere(page, `cache.invalidate({ path }) on ${b.name}`, b);
  // 1 each: the other instances had the purge before the test's next request reached them.
  t.diagnostic(`requests until the other instances answered MISS: ${JSON.stringify({ afterPost, afterSite })}`);

  for (const instance of topology.instances) {
    const text = await (await fetch(instance.server.metricsUrl as string)).text();
    assert.match(text, /^origin_cache_purge_fanout_failures_total 0$/m, `${instance.name}: no failed fan-out`);
  }
});

test('a rolling restart under load through HAProxy loses no request; sessions survive it', async (t) => {
  const before = await count(topology.url);
  const cookie = before.cookie as string;
  const pidsBefore = topology.instances.map((i) => i.server.child.pid);
  const connections = 8;
  const result = await rollingRestart(topology, { connections });
  t.diagnostic(`rolling restart: ${JSON.stringify(result)}`);
  for (const [i, instance] of topology.instances.entries())
    assert.notEqual(instance.server.child.pid, pidsBefore[i], `${instance.name} was restarted`);
  assert.ok(result.responses >= 200, `enough load to mean something (${result.responses} responses)`);
  // Unanswered: only what was in flight when autocannon stopped, one per connection at most.
  assert.ok(result.sent - result.responses <= connections, `sent ${result.sent}, answered ${result.responses}`);
  assert.deepEqual(
    { failed: result.failed, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts },
    { failed: 0, non2xx: 0, errors: 0, timeouts: 0 },
    `requests lost during the rolling restart: ${JSON.stringify(result)}`,
  );
  // Every process was replaced; the session lives in Redis and keeps counting.
  assert.equal((await count(topology.url, cookie)).body.count, 2);
});

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(expr: string, time: number): Promise<Sample[]> {
  const url = new URL('/api/v1/query', topology.prometheusUrl);
  url.searchParams.set('query', expr);
  url.searchParams.set('time', String(time));
  const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: Sample[] } };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  return body.data.result;
}

/** The sum of one counter over every series an instance's own /metrics page shows for `route`. */
async function scrapedDirectly(metricsUrl: string, name: string, route: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) && line.includes(`route="${route}"`)) total += Number(line.split(' ').pop());
  return total;
}

test('Prometheus scrapes the three instances and the dashboard aggregates are their sums', async (t) => {
  const instances = topology.instances.map((i) => new URL(i.server.metricsUrl as string).host).sort();
  await waitFor('three astro-origin targets up', 20_000, async () => {
    const up = await query(`up{job="${JOB}"} == 1`, Date.now() / 1000);
    return (
      up
        .map((s) => s.metric.instance)
        .sort()
        .join() === instances.join()
    );
  });

  // Known traffic on one route, on each instance directly, then nothing more on that route:
  // Prometheus's sum must reach exactly what the three /metrics pages say.
  const route = '/api/session-counter';
  for (const [n, instance] of topology.instances.entries())
    for (let i = 0; i <= n; i++) assert.equal((await fetch(`${instance.url}${route}`)).status, 200);
  const counts = await Promise.all(
    topology.instances.map((i) =>
      scrapedDirectly(i.server.metricsUrl as string, 'http_request_duration_seconds_count', route),
    ),
  );
  const expected = counts.reduce((a, b) => a + b, 0);
  const selector = `http_request_duration_seconds_count{job="${JOB}", route="${route}"}`;
  await waitFor(`Prometheus's sum(${selector}) to reach ${expected} (${counts.join(' + ')})`, 15_000, async () => {
    const [sample] = await query(`sum(${selector})`, Date.now() / 1000);
    return Number(sample?.value[1]) === expected;
  });

  // Every aggregate of the dashboard (a top-level sum over all instances) equals the sum of the
  // same expression split by instance, evaluated at the same instant, with all three present.
  await sleep(2000); // two more scrapes, so rate() windows hold the last samples
  const at = Date.now() / 1000 - 1;
  const aggregates = dashboardTargets().filter((t) => /^sum\s*\(/.test(t.expr));
  assert.ok(aggregates.length >= 4, `the dashboard's aggregate queries (${aggregates.length})`);
  let checked = 0;
  const variables = { instance: '.+', __rate_interval: '10s', __range: '1m', __interval: '1s' };
  for (const target of aggregates) {
    const expr = substituteVariables(target.expr, variables);
    const byInstance = expr.replace(/^sum\s*\(/, 'sum by (instance) (');
    const [total] = await query(expr, at);
    const parts = await query(byInstance, at);
    const what = `${target.panel} ${target.refId}: ${expr.replace(/\s+/g, ' ')}`;
    if (parts.length === 0) {
      assert.equal(total, undefined, `${what}: a total without any instance`);
      continue;
    }
    assert.ok(total, `${what}: no value`);
    assert.deepEqual(parts.map((s) => s.metric.instance).sort(), instances, `${what}: one series per instance`);
    const sum = parts.reduce((acc, s) => acc + Number(s.value[1]), 0);
    checked++;
    assert.ok(
      Math.abs(Number(total.value[1]) - sum) <= 1e-9 * Math.max(1, Math.abs(sum)),
      `${what}: ${total.value[1]} ≠ ${sum}`,
    );
  }
  t.diagnostic(`${checked} of ${aggregates.length} dashboard aggregates summed three instances`);
  assert.ok(checked >= 3, 'the request-rate, in-flight and pool aggregates had series from every instance');
});
