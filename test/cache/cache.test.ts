// The origin cache against the real origin and the real demo build: stale-while-revalidate,
// coalescing, the byte budget, what is never stored, Vary, CDN headers, purges (site code,
// the metrics listener's endpoint) in one process and across WORKERS=2. The demo's
// /cache/stamp page says how cacheable it is from its query and counts its own renders.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureBuild } from '../../load/lib/build.ts';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { bothWorkers, waitForReadyWorkers } from '../helpers/workers.ts';

const TOKEN = 'test-purge-token';
let run = 0;
/** A /cache/stamp URL path of its own (a fresh cache key) with these options. */
const stamp = (query: string) => `/cache/stamp?${query}&id=${process.pid}-${run++}`;

interface Stamp {
  status: number;
  headers: Headers;
  render: number;
  pid: number;
  varied?: string;
  length: number;
}

async function get(origin: OriginProcess, path: string, init: RequestInit = {}): Promise<Stamp> {
  const res = await fetch(origin.url + path, { redirect: 'manual', ...init });
  const text = await res.text();
  const body = text.startsWith('{') ? (JSON.parse(text) as { render: number; pid: number; varied?: string }) : null;
  return {
    status: res.status,
    headers: res.headers,
    render: body?.render ?? Number(res.headers.get('x-render-count')),
    pid: body?.pid ?? 0,
    varied: body?.varied,
    length: text.length,
  };
}

async function metric(origin: OriginProcess, pattern: RegExp): Promise<number> {
  return Number(pattern.exec(await (await fetch(origin.metricsUrl)).text())?.[1] ?? NaN);
}
const requests = (origin: OriginProcess, result: string) =>
  metric(origin, new RegExp(`^origin_cache_requests_total\\{result="${result}"\\} (\\S+)$`, 'm'));

async function renders(origin: OriginProcess, path: string): Promise<number> {
  const { byKey } = (await (await fetch(`${origin.url}/cache/renders`)).json()) as { byKey: Record<string, number> };
  return byKey[`GET ${path}`] ?? 0;
}

function purge(origin: OriginProcess, body: unknown, token = TOKEN) {
  return fetch(new URL('/cache/purge', origin.metricsUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

before(async () => {
  await ensureBuild('demo');
});

describe('origin cache, one process', { timeout: 120_000 }, () => {
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({
      CACHE_MAX_BYTES: String(8 * 1024 * 1024),
      CACHE_DEBUG_HEADER: 'true',
      CACHE_PURGE_TOKEN: TOKEN,
    });
  });
  after(async () => {
    assert.equal(await origin.stop(), 0);
  });

  test('a miss is stored and then served with Age, Cache-Control for the CDN and X-Cache', async () => {
    const path = stamp('maxAge=30&swr=60&tag=t');
    const first = await get(origin, path);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    assert.equal(first.headers.get('age'), '0');
    assert.equal(first.headers.get('cache-control'), 'public, max-age=0, s-maxage=30, stale-while-revalidate=60');
    await sleep(1100);
    const second = await get(origin, path);
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.equal(second.render, first.render, 'the same render');
    assert.equal(second.headers.get('age'), '1');
    assert.equal(second.headers.get('cache-control'), first.headers.get('cache-control'));
    // Astro's internal directives never leave the origin.
    assert.equal(second.headers.get('cdn-cache-control'), null);
    assert.equal(second.headers.get('cache-tag'), null);
    assert.equal(await renders(origin, path), 1);
  });

  test('stale-while-revalidate: past maxAge the stale copy is served at once while one background render runs', async () => {
    const path = stamp('maxAge=1&swr=30&delay=600');
    assert.equal((await get(origin, path)).render, 1);
    const revalidated = await metric(origin, /^origin_cache_revalidations_total\{outcome="success"\} (\S+)$/m);
    await sleep(1200);
    const started = performance.now();
    const stale = await Promise.all(Array.from({ length: 8 }, () => get(origin, path)));
    const elapsed = performance.now() - started;
    for (const s of stale) {
      assert.equal(s.headers.get('x-cache'), 'STALE');
      assert.equal(s.render, 1, 'the stale copy');
      assert.ok(Number(s.headers.get('age')) >= 1);
    }
    assert.ok(elapsed < 600, `stale copies do not wait for the 600 ms render (${elapsed.toFixed(0)} ms)`);
    assert.equal(await renders(origin, path), 2, 'one background render for all eight stale hits');
    const fresh = await waitFor('the revalidated copy', 5000, async () => {
      const r = await get(origin, path);
      return r.headers.get('x-cache') === 'HIT' && r.render === 2 ? r : undefined;
    });
    assert.equal(fresh.headers.get('age'), '0');
    assert.equal(await renders(origin, path), 2);
    assert.equal(
      await metric(origin, /^origin_cache_revalidations_total\{outcome="success"\} (\S+)$/m),
      revalidated + 1,
    );
  });

  test('coalescing: 20 concurrent misses of one key are one render; the others are counted as hits', async () => {
    const path = stamp('maxAge=30&delay=300');
    const [missBefore, hitBefore] = [await requests(origin, 'miss'), await requests(origin, 'hit')];
    const all = await Promise.all(Array.from({ length: 20 }, () => get(origin, path)));
    assert.equal(await renders(origin, path), 1);
    assert.deepEqual(new Set(all.map((r) => r.render)), new Set([1]));
    assert.equal(all.filter((r) => r.headers.get('x-cache') === 'MISS').length, 1);
    assert.equal(all.filter((r) => r.headers.get('x-cache') === 'HIT').length, 19);
    assert.equal(await requests(origin, 'miss'), missBefore + 1);
    assert.equal(await requests(origin, 'hit'), hitBefore + 19);
  });

  test('never stored: Set-Cookie, Cache-Control private, POST, Authorization, status 500; each request renders', async () => {
    const cases: Array<[string, string, RequestInit?]> = [
      ['Set-Cookie', stamp('maxAge=30&cookie=1')],
      ['private', stamp('maxAge=30&private=1')],
      ['POST', stamp('maxAge=30'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['Authorization', stamp('maxAge=30'), { headers: { authorization: 'Bearer someone' } }],
      ['status 500', stamp('maxAge=30&status=500')],
    ];
    for (const [why, path, init] of cases) {
      const a = await get(origin, path, init);
      const b = await get(origin, path, init);
      assert.equal(a.headers.get('x-cache'), 'BYPASS', why);
      assert.equal(b.headers.get('x-cache'), 'BYPASS', why);
      assert.deepEqual([a.render, b.render], [1, 2], `${why}: rendered every time`);
      assert.doesNotMatch(b.headers.get('cache-control') ?? '', /s-maxage/, `${why}: no CDN caching either`);
      if (why === 'Set-Cookie') assert.match(b.headers.get('set-cookie') ?? '', /^stamp=2;/, 'its own cookie');
    }
  });

  test('stored: 404, 410 and 301 too; a page without maxAge is not', async () => {
    for (const status of [404, 410, 301]) {
      const path = stamp(`maxAge=30&status=${status}`);
      const [a, b] = [await get(origin, path), await get(origin, path)];
      assert.deepEqual([a.status, b.status], [status, status]);
      assert.equal(b.headers.get('x-cache'), 'HIT', `status ${status}`);
    }
    const plain = stamp('tag=only-a-tag');
    await get(origin, plain);
    assert.equal((await get(origin, plain)).headers.get('x-cache'), 'BYPASS');
  });

  test('Vary: each value of the named request header gets its own copy', async () => {
    const path = stamp('maxAge=30&vary=x-lang');
    const en = await get(origin, path, { headers: { 'x-lang': 'en' } });
    const fr = await get(origin, path, { headers: { 'x-lang': 'fr' } });
    const enAgain = await get(origin, path, { headers: { 'x-lang': 'en' } });
    assert.deepEqual([en.varied, fr.varied, enAgain.varied], ['en', 'fr', 'en']);
    assert.deepEqual([en.render, fr.render, enAgain.render], [1, 2, 1]);
    assert.equal(enAgain.headers.get('x-cache'), 'HIT');
  });

  test('POST /cache/purge: bearer token required; by tag and by path, only what it names', async () => {
    const tagged = stamp('maxAge=60&tag=purge-me');
    const other = stamp('maxAge=60&tag=keep-me');
    const exact = stamp('maxAge=60');
    for (const p of [tagged, other, exact]) await get(origin, p);
    assert.equal((await purge(origin, { tags: ['purge-me'] }, 'wrong')).status, 401);
    const noAuth = await fetch(new URL('/cache/purge', origin.metricsUrl), { method: 'POST' });
    assert.equal(noAuth.status, 401);
    assert.equal((await purge(origin, { colours: ['red'] })).status, 400);

    const byTag = await purge(origin, { tags: ['purge-me'] });
    assert.equal(byTag.status, 200);
    assert.deepEqual(await byTag.json(), { removed: 1, processes: 1, unconfirmed: 0 });
    assert.equal((await get(origin, tagged)).headers.get('x-cache'), 'MISS');
    assert.equal((await get(origin, other)).headers.get('x-cache'), 'HIT');

    const byPath = await purge(origin, { paths: [exact] });
    assert.equal(((await byPath.json()) as { removed: number }).removed, 1);
    assert.equal((await get(origin, exact)).headers.get('x-cache'), 'MISS');
    assert.equal((await get(origin, other)).headers.get('x-cache'), 'HIT');

    // A path without a query purges every query variant of it (the demo's docs pages: tag docs:*).
    const doc = '/docs/caching/purging';
    for (const p of [doc, `${doc}?a=1`, `${doc}?a=1`]) await get(origin, p);
    assert.equal((await get(origin, `${doc}?a=1`)).headers.get('x-cache'), 'HIT');
    assert.equal(((await (await purge(origin, { paths: [doc] })).json()) as { removed: number }).removed, 2);
    assert.equal((await get(origin, `${doc}?a=1`)).headers.get('x-cache'), 'MISS');
    assert.ok((await metric(origin, /^origin_cache_purges_total (\S+)$/m)) >= 3);
  });

  test('the docs are cached by section: purging the tag docs:caching leaves the other sections', async () => {
    const [caching, perf] = ['/docs/caching/cache-keys', '/docs/performance/workers'];
    for (const p of [caching, perf]) await get(origin, p);
    const res = await purge(origin, { tags: ['docs:caching'] });
    assert.ok(((await res.json()) as { removed: number }).removed >= 1);
    assert.equal((await get(origin, caching)).headers.get('x-cache'), 'MISS');
    assert.equal((await get(origin, perf)).headers.get('x-cache'), 'HIT');
  });

  test("the site's own code purges with context.cache.invalidate()", async () => {
    const path = stamp('maxAge=60&tag=from-site');
    await get(origin, path);
    assert.equal((await get(origin, path)).headers.get('x-cache'), 'HIT');
    const res = await fetch(`${origin.url}/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tags: ['from-site'] }),
    });
    assert.equal(res.status, 200);
    assert.equal((await get(origin, path)).headers.get('x-cache'), 'MISS');
    await get(origin, path);
    await fetch(`${origin.url}/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path }),
    });
    assert.equal((await get(origin, path)).headers.get('x-cache'), 'MISS');
  });
});

describe('origin cache: the byte budget', { timeout: 60_000 }, () => {
  const BUDGET = 200_000;
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({ CACHE_MAX_BYTES: String(BUDGET), CACHE_DEBUG_HEADER: 'true' });
  });
  after(async () => {
    assert.equal(await origin.stop(), 0);
  });

  test('40 pages of 10 kB in a 200 kB budget: least recently used evicted, the budget never exceeded', async () => {
    const paths = Array.from({ length: 40 }, () => stamp('maxAge=60&bytes=10000'));
    for (const [i, p] of paths.entries()) {
      assert.equal((await get(origin, p)).headers.get('x-cache'), 'MISS');
      if (i === 0) continue;
      // Keep the first page recently used: it must survive the evictions.
      assert.equal((await get(origin, paths[0]!)).headers.get('x-cache'), 'HIT', `after ${i} pages`);
      const bytes = await metric(origin, /^origin_cache_bytes (\S+)$/m);
      assert.ok(bytes <= BUDGET, `${bytes} bytes held after ${i + 1} pages, budget ${BUDGET}`);
    }
    const entries = await metric(origin, /^origin_cache_entries (\S+)$/m);
    assert.ok(entries < 20 && entries > 10, `${entries} entries`);
    assert.ok((await metric(origin, /^origin_cache_evictions_total (\S+)$/m)) >= 40 - entries);
    assert.equal((await get(origin, paths[1]!)).headers.get('x-cache'), 'MISS', 'the oldest unused page was evicted');
    assert.equal((await get(origin, paths[39]!)).headers.get('x-cache'), 'HIT', 'the newest page is there');
  });

  test('a page larger than an eighth of the budget is sent whole and not stored', async () => {
    const path = stamp('maxAge=60&bytes=60000');
    const [a, b] = [await get(origin, path), await get(origin, path)];
    assert.ok(a.length > 60_000 && b.length === a.length, `whole bodies: ${a.length}, ${b.length}`);
    assert.deepEqual([a.headers.get('x-cache'), b.headers.get('x-cache')], ['BYPASS', 'BYPASS']);
  });

  test('without CACHE_PURGE_TOKEN the purge endpoint is off (404)', async () => {
    assert.equal((await purge(origin, { tags: ['x'] })).status, 404);
  });
});

describe('origin cache under WORKERS=2: a purge reaches every worker before the endpoint answers', {
  timeout: 90_000,
}, () => {
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({ WORKERS: '2', CACHE_MAX_BYTES: String(8 * 1024 * 1024), CACHE_PURGE_TOKEN: TOKEN });
    await waitForReadyWorkers(origin, 2);
  });
  after(async () => {
    assert.equal(await origin.stop(), 0);
  });

  for (const how of ['tags', 'paths'] as const) {
    test(`purge by ${how}`, async () => {
      const path = stamp('maxAge=300&tag=cluster');
      const url = origin.url + path;
      const primed = await bothWorkers(url);
      for (const [pid, r] of primed) assert.equal(r.at(-1), r[0], `worker ${pid} serves its cached copy`);
      const res = await purge(origin, how === 'tags' ? { tags: ['cluster'] } : { paths: [path] });
      assert.equal(res.status, 200);
      const outcome = (await res.json()) as { removed: number; processes: number; unconfirmed: number };
      assert.deepEqual(outcome, { removed: 2, processes: 2, unconfirmed: 0 });
      // Straight after the answer, neither worker has the old copy.
      const after = await bothWorkers(url, 1);
      for (const [pid, r] of after) assert.ok(r[0]! > primed.get(pid)!.at(-1)!, `worker ${pid} rendered again`);
    });
  }

  test("the site's own cache.invalidate() in one worker reaches the other", async () => {
    const path = stamp('maxAge=300&tag=cluster-site');
    const url = origin.url + path;
    const primed = await bothWorkers(url);
    const res = await fetch(`${origin.url}/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ tags: ['cluster-site'] }),
    });
    assert.equal(res.status, 200);
    // The worker that ran it purged at once; the other one within IPC latency.
    await waitFor('both workers to render again', 5000, async () => {
      const seen = await bothWorkers(url, 1);
      return [...seen].every(([pid, r]) => r.at(-1)! > primed.get(pid)!.at(-1)!) ? true : undefined;
    });
  });
});
