// Purges passed on between instances over Redis pub/sub (src/cache/redis-fanout.ts), against a
// real redis-server and real origin processes: under WORKERS=2 the primary publishes each purge
// once and relays the other instances' purges to both workers; a message that is not a purge is
// ignored; with Redis down an instance still purges itself, says the fan-out failed, counts it,
// and keeps serving; once Redis is back the fan-out works again. The three-instance topology is
// test/topology/multi-instance.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ensureBuild } from '../../load/lib/build.ts';
import { type RedisServer, startRedis } from '../../load/lib/topology.ts';
import { parsePurgeMessage, purgeChannel } from '../../src/cache/redis-fanout.ts';
import { freePort, logLines, type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { bothWorkers, waitForReadyWorkers } from '../helpers/workers.ts';

const TOKEN = 'test-purge-token';
const CHANNEL = purgeChannel(0);
let run = 0;
/** A /cache/stamp path of its own (a fresh cache key), cached 5 min with tag `tag`. */
const stamp = (tag: string) => `/cache/stamp?maxAge=300&tag=${tag}&id=${process.pid}-${run++}`;

function purge(origin: OriginProcess, body: unknown) {
  return fetch(new URL('/cache/purge', origin.metricsUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
}

function siteInvalidate(origin: OriginProcess, body: unknown) {
  return fetch(`${origin.url}/cache/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
}

async function metric(origin: OriginProcess, name: string): Promise<number> {
  const text = await (await fetch(origin.metricsUrl)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

const xCache = async (origin: OriginProcess, p: string) => (await fetch(origin.url + p)).headers.get('x-cache');

/** Every message published on the purge channel, parsed (undefined when not a purge). */
async function listen(url: string) {
  const subscriber = new Redis(url, { lazyConnect: true });
  await subscriber.connect();
  await subscriber.subscribe(CHANNEL);
  const messages: Array<ReturnType<typeof parsePurgeMessage>> = [];
  subscriber.on('message', (_channel: string, text: string) => messages.push(parsePurgeMessage(text)));
  return { messages, close: () => subscriber.quit() };
}

let dir: string;
before(async () => {
  await ensureBuild('demo');
  dir = mkdtempSync(path.join(tmpdir(), 'astro-origin-redis-fanout-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('WORKERS=2 with REDIS_URL: the primary publishes once per purge and relays the others to both workers', {
  timeout: 120_000,
}, () => {
  let redis: RedisServer;
  let origin: OriginProcess;
  let listener: Awaited<ReturnType<typeof listen>>;
  let publisher: Redis;
  before(async () => {
    redis = await startRedis({ dir });
    origin = await spawnOrigin({
      WORKERS: '2',
      REDIS_URL: redis.url,
      CACHE_MAX_BYTES: String(8 * 1024 * 1024),
      CACHE_PURGE_TOKEN: TOKEN,
    });
    await waitForReadyWorkers(origin, 2);
    listener = await listen(redis.url);
    publisher = new Redis(redis.url, { lazyConnect: true });
    await publisher.connect();
  });
  after(async () => {
    await listener?.close();
    await publisher?.quit();
    if (origin) assert.equal(await origin.stop(), 0, origin.output());
    await redis?.stop();
  });

  test('POST /cache/purge: both workers purge, one message goes out, and the primary skips its own', async () => {
    const p = stamp('fanout-post');
    const primed = await bothWorkers(origin.url + p);
    const purgesBefore = await metric(origin, 'origin_cache_purges_total');
    const seenBefore = listener.messages.length;
    const res = await purge(origin, { tags: ['fanout-post'] });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { removed: 2, processes: 2, unconfirmed: 0, fanout: 'published' });
    await sleep(500); // room for a second copy, or for the primary to apply its own message
    const sent = listener.messages.slice(seenBefore);
    assert.equal(sent.length, 1, `one message per purge, not one per worker: ${JSON.stringify(sent)}`);
    assert.deepEqual(sent[0]?.request, { tags: ['fanout-post'] });
    assert.equal(
      await metric(origin, 'origin_cache_purges_total'),
      purgesBefore + 2,
      'each worker purged once: the message that came back from Redis was skipped',
    );
    const after = await bothWorkers(origin.url + p, 1);
    for (const [pid, r] of after) assert.ok(r[0]! > primed.get(pid)!.at(-1)!, `worker ${pid} rendered again`);
  });

  test("the site's cache.invalidate() in one worker: one message goes out, the other worker purges too", async () => {
    const p = stamp('fanout-site');
    const primed = await bothWorkers(origin.url + p);
    const seenBefore = listener.messages.length;
    assert.equal((await siteInvalidate(origin, { tags: ['fanout-site'] })).status, 200);
    await waitFor('both workers to render again', 5000, async () => {
      const seen = await bothWorkers(origin.url + p, 1);
      return [...seen].every(([pid, r]) => r.at(-1)! > primed.get(pid)!.at(-1)!) ? true : undefined;
    });
    await sleep(500);
    const sent = listener.messages.slice(seenBefore);
    assert.equal(sent.length, 1, `one message for the site's purge: ${JSON.stringify(sent)}`);
    assert.deepEqual(sent[0]?.request, { tags: ['fanout-site'] });
  });

  test("another instance's purge reaches both workers", async () => {
    const p = stamp('fanout-remote');
    const primed = await bothWorkers(origin.url + p);
    const message = { from: 'another-instance', request: { paths: [p] } };
    assert.equal(await publisher.publish(CHANNEL, JSON.stringify(message)), 2, 'the origin and this test listen');
    await waitFor('both workers to render again', 5000, async () => {
      const seen = await bothWorkers(origin.url + p, 1);
      return [...seen].every(([pid, r]) => r.at(-1)! > primed.get(pid)!.at(-1)!) ? true : undefined;
    });
  });

  test('a message that is not a purge is ignored with one warning each; the origin keeps serving', async () => {
    const p = stamp('fanout-junk');
    const primed = await bothWorkers(origin.url + p);
    const junk = [
      'not json',
      'null',
      '{"from":"x"}',
      '{"from":"x","request":{"paths":["no-leading-slash"]}}',
      '{"from":"x","request":{"tags":[1]}}',
      '{"request":{"tags":["fanout-junk"]}}',
    ];
    for (const text of junk) await publisher.publish(CHANNEL, text);
    await waitFor('a warning per message', 5000, () =>
      logLines(origin.output()).filter((l) => String(l.msg).startsWith('ignored a message on the cache purge channel'))
        .length === junk.length
        ? true
        : undefined,
    );
    const after = await bothWorkers(origin.url + p);
    for (const [pid, r] of after) assert.equal(r.at(-1), primed.get(pid)!.at(-1), `worker ${pid} kept its copy`);
    assert.equal(origin.child.exitCode, null, 'the primary runs');
    assert.equal(await metric(origin, 'origin_cluster_worker_restarts_total'), 0, 'no worker died');
  });
});

describe('Redis down: the instance purges itself, reports and counts the failed fan-out, keeps serving', {
  timeout: 120_000,
}, () => {
  let port: number;
  let origin: OriginProcess;
  let redis: RedisServer | undefined;
  before(async () => {
    port = await freePort(); // nothing listens there until the last test
    origin = await spawnOrigin({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      CACHE_MAX_BYTES: String(8 * 1024 * 1024),
      CACHE_DEBUG_HEADER: 'true',
      CACHE_PURGE_TOKEN: TOKEN,
      LOG_LEVEL: 'info',
    });
  });
  after(async () => {
    if (origin) assert.equal(await origin.stop(), 0, 'closes its Redis connections and exits 0');
    await redis?.stop();
  });

  test('POST /cache/purge answers 200 with fanout "failed"; the local purge happened; the failure is counted', async () => {
    const p = stamp('down-post');
    await fetch(origin.url + p);
    assert.equal(await xCache(origin, p), 'HIT');
    assert.equal(await metric(origin, 'origin_cache_purge_fanout_failures_total'), 0);
    const res = await purge(origin, { tags: ['down-post'] });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { removed: 1, processes: 1, unconfirmed: 0, fanout: 'failed' });
    assert.equal(await xCache(origin, p), 'MISS');
    assert.equal(await metric(origin, 'origin_cache_purge_fanout_failures_total'), 1);

    const q = stamp('down-site');
    await fetch(origin.url + q);
    assert.equal((await siteInvalidate(origin, { tags: ['down-site'] })).status, 200);
    assert.equal(await xCache(origin, q), 'MISS');
    await waitFor('the site purge counted', 2000, async () =>
      (await metric(origin, 'origin_cache_purge_fanout_failures_total')) === 2 ? true : undefined,
    );
  });

  test('it keeps serving, and says Redis is unreachable once rather than on every reconnect', async () => {
    await sleep(3000); // several reconnection attempts
    for (const p of ['/', '/docs/', '/about']) assert.equal((await fetch(origin.url + p)).status, 200, p);
    assert.equal(origin.child.exitCode, null);
    const lines = logLines(origin.output());
    assert.equal(lines.filter((l) => String(l.msg).startsWith('Redis is unreachable')).length, 1, origin.output());
    assert.equal(
      lines.filter((l) => String(l.msg).startsWith('cache purge carried out here but not passed on')).length,
      2,
      'one warning per purge that did not go out',
    );
    assert.doesNotMatch(origin.output(), /Unhandled error event/, 'no ioredis error without a listener');
  });

  test('once Redis is back, purges go out and come in again (resubscribed)', async () => {
    redis = await startRedis({ dir, port });
    await waitFor('Redis reachable again', 10_000, () =>
      logLines(origin.output()).some(
        (l) => l.msg === 'Redis is reachable again: cache purges are passed on between instances',
      ),
    );
    const listener = await listen(redis.url);
    const publisher = new Redis(redis.url, { lazyConnect: true });
    try {
      await publisher.connect();
      const res = await purge(origin, { tags: ['down-post'] });
      assert.equal(((await res.json()) as { fanout: string }).fanout, 'published');
      await waitFor('the message', 2000, () => (listener.messages.length === 1 ? true : undefined));
      const p = stamp('back');
      await fetch(origin.url + p);
      assert.equal(await xCache(origin, p), 'HIT');
      await publisher.publish(CHANNEL, JSON.stringify({ from: 'another-instance', request: { tags: ['back'] } }));
      await waitFor('the purge from another instance', 5000, async () =>
        (await xCache(origin, p)) === 'MISS' ? true : undefined,
      );
    } finally {
      await listener.close();
      await publisher.quit();
    }
  });
});

describe('Redis down under WORKERS=2: the primary counts the failed fan-out once, both workers purge', {
  timeout: 90_000,
}, () => {
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({
      WORKERS: '2',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      CACHE_MAX_BYTES: String(8 * 1024 * 1024),
      CACHE_PURGE_TOKEN: TOKEN,
    });
    await waitForReadyWorkers(origin, 2);
  });
  after(async () => {
    if (origin) assert.equal(await origin.stop(), 0, 'the primary closes its Redis connections and exits 0');
  });

  test('POST /cache/purge and a site purge: local purges done, each failure counted once', async () => {
    const p = stamp('down-cluster');
    const primed = await bothWorkers(origin.url + p);
    const res = await purge(origin, { tags: ['down-cluster'] });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { removed: 2, processes: 2, unconfirmed: 0, fanout: 'failed' });
    const after = await bothWorkers(origin.url + p, 1);
    for (const [pid, r] of after) assert.ok(r[0]! > primed.get(pid)!.at(-1)!, `worker ${pid} rendered again`);
    assert.equal(await metric(origin, 'origin_cache_purge_fanout_failures_total'), 1);
    assert.equal((await siteInvalidate(origin, { tags: ['down-cluster'] })).status, 200);
    await waitFor('the site purge counted', 2000, async () =>
      (await metric(origin, 'origin_cache_purge_fanout_failures_total')) === 2 ? true : undefined,
    );
  });
});
