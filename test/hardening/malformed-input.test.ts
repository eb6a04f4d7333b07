// Hostile and malformed requests, sent byte for byte over raw sockets to the origin running as
// its own process: each gets a clear 4xx, nothing leaks, and the process keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { assertServing, get, type RawResponse, rawRequest } from '../helpers/raw-http.ts';

let origin: OriginProcess;
before(async () => {
  origin = await spawnOrigin({ LOG_LEVEL: 'warn' });
});
after(async () => {
  assert.equal(await origin.stop(), 0, 'clean exit after all of it');
});

const alive = () => origin.child.exitCode === null && origin.child.signalCode === null;

/** What must never appear in an answer to a hostile request. */
const LEAKS = /root:x:0:0|createApp|export \{|import \{|node_modules|\/work\/|\n\s+at [^\n]*\(|"stack"/;

/** A 4xx of ours: JSON with a message, no stack, no file. */
function assertClear4xx(res: RawResponse, status: number, message?: RegExp): void {
  assert.equal(res.status, status, `expected ${status}, got:\n${res.raw.slice(0, 300)}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/);
  const body = JSON.parse(res.body) as { statusCode: number; error: string; message: string };
  assert.equal(body.statusCode, status);
  assert.ok(body.message.length > 10, 'a message that says what was wrong');
  if (message) assert.match(body.message, message);
  assert.doesNotMatch(res.body, LEAKS);
}

async function send(data: string | Buffer): Promise<RawResponse> {
  return rawRequest(origin.url, data);
}

describe('bad percent-encoding', () => {
  for (const path of ['/%', '/%E0%A4%A', '/%E0%A4', '/docs/%zz', '/_astro/%c0%ae%c0%ae/etc/passwd']) {
    test(`${path} → 400 with a message, never a 500`, async () => {
      assertClear4xx(await send(get(path)), 400, /percent-encoding/);
      await assertServing(origin.url, { alive });
    });
  }

  test('a stray % in the query string is left to the page (200)', async () => {
    const res = await send(get('/docs/?q=%'));
    assert.equal(res.status, 200);
    await assertServing(origin.url, { alive });
  });
});

describe('path traversal against static files and pages', () => {
  const attempts = [
    '/..%2f..%2fetc/passwd',
    '/..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/_astro/..%5c..%5c..%5cetc%5cpasswd',
    '/_astro/..%2f..%2f..%2fserver%2fentry.mjs',
    '/_astro/../../server/entry.mjs',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/%252e%252e/%252e%252e/etc/passwd',
    '/_astro/%252e%252e%252f%252e%252e%252fserver%252fentry.mjs',
    '/docs/..%2f..%2f..%2fpackage.json',
    '/errors/..%2f..%2f..%2fsrc%2fconfig.ts',
    '/..\\..\\..\\etc\\passwd',
    '/..;/..;/etc/passwd',
    '//etc/passwd',
    '/server/entry.mjs',
  ];
  for (const path of attempts) {
    test(`${path} → 4xx, no file content`, async () => {
      const res = await send(get(path));
      assert.ok(res.status >= 400 && res.status < 500, `${path} → ${res.status}`);
      assert.doesNotMatch(res.body, LEAKS, `${path} leaked something`);
      await assertServing(origin.url, { alive });
    });
  }
});

describe('NUL bytes', () => {
  test('a raw NUL in the path → 400', async () => {
    assertClear4xx(await send(`GET /docs/\0x HTTP/1.1\r\nHost: localhost\r\n\r\n`), 400);
    await assertServing(origin.url, { alive });
  });

  test('a NUL in a header → 400', async () => {
    assertClear4xx(await send(`GET /docs/ HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n`), 400);
    await assertServing(origin.url, { alive });
  });

  test('an encoded NUL (%00) in the path → 404 page, not a crash', async () => {
    const res = await send(get('/docs/%00'));
    assert.equal(res.status, 404);
    assert.doesNotMatch(res.body, LEAKS);
    await assertServing(origin.url, { alive });
  });
});

describe('sizes and counts', () => {
  test('a 10 KB URL → 414 (MAX_URL_BYTES, 8 KiB by default)', async () => {
    assertClear4xx(await send(get(`/docs/?q=${'a'.repeat(10_000)}`)), 414, /longer than 8192 bytes/);
    await assertServing(origin.url, { alive });
  });

  test('a 20 KB URL → 431: it overflows the whole request head (MAX_HEADER_BYTES)', async () => {
    assertClear4xx(await send(get(`/${'a'.repeat(20_000)}`)), 431);
    await assertServing(origin.url, { alive });
  });

  test('a 20 KB header → 431', async () => {
    assertClear4xx(await send(get('/docs/', `X-Big: ${'a'.repeat(20_000)}\r\n`)), 431);
    await assertServing(origin.url, { alive });
  });

  test('150 small header fields (under the byte limit) → 431 (MAX_HEADERS_COUNT, 100)', async () => {
    const many = Array.from({ length: 150 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    assertClear4xx(await send(get('/docs/', many)), 431, /more than 100 header fields/);
    await assertServing(origin.url, { alive });
  });

  test('90 header fields are fine', async () => {
    const some = Array.from({ length: 90 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    assert.equal((await send(get('/docs/', some))).status, 200);
  });
});

describe('methods and request targets', () => {
  for (const line of [
    'FOO / HTTP/1.1',
    'get /docs/ HTTP/1.1',
    'G ET /docs/ HTTP/1.1',
    '\x16\x03\x01\x02\x00\x01\x00',
  ]) {
    test(`${JSON.stringify(line)} → 400`, async () => {
      assertClear4xx(await send(`${line}\r\nHost: localhost\r\n\r\n`), 400);
      await assertServing(origin.url, { alive });
    });
  }

  for (const method of ['TRACE', 'PROPFIND']) {
    test(`${method} → 405 with Allow`, async () => {
      const res = await send(`${method} /docs/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      assertClear4xx(res, 405);
      assert.equal(res.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      await assertServing(origin.url, { alive });
    });
  }

  test('CONNECT → 405, not a silently dropped socket', async () => {
    const res = await send('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    assertClear4xx(res, 405);
    await assertServing(origin.url, { alive });
  });

  test('absolute-form target → 400 (Astro never sees another host in the URL)', async () => {
    assertClear4xx(
      await send(`GET http://evil.example/docs/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
      400,
      /starting with "\/"/,
    );
    await assertServing(origin.url, { alive });
  });

  test('OPTIONS * → 204 with Allow; GET * → 400', async () => {
    const star = await send(`OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    assert.equal(star.status, 204);
    assert.match(star.headers.allow ?? '', /GET/);
    assertClear4xx(await send(`GET * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`), 400);
    await assertServing(origin.url, { alive });
  });

  test('HTTP/2 prior knowledge → 400 with a message', async () => {
    assertClear4xx(await send('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), 400, /HTTP\/1\.1/);
    await assertServing(origin.url, { alive });
  });

  test('Content-Length with Transfer-Encoding (request smuggling) → 400', async () => {
    const res = await send(
      'POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n',
    );
    assertClear4xx(res, 400);
    await assertServing(origin.url, { alive });
  });
});

describe('X-Request-Id', () => {
  const idSeen = async (value: string) => {
    const res = await send(get('/api/locals', `X-Request-Id: ${value}\r\n`));
    assert.equal(res.status, 200);
    return (JSON.parse(res.body) as { requestId: string }).requestId;
  };

  test('a sane id from the CDN is kept (logs and Astro.locals)', async () => {
    assert.equal(await idSeen('cdn-7f3a9c'), 'cdn-7f3a9c');
  });

  test('a 2 KB or non-printable X-Request-Id is replaced by a generated id', async () => {
    for (const value of ['x'.repeat(2048), 'a b', 'évil']) {
      assert.match(await idSeen(value), /^req-[0-9a-z]+$/);
    }
    await assertServing(origin.url, { alive });
  });
});

test('the route label stays bounded: every request above is one of a few labels', async () => {
  const metrics = await (await fetch(origin.metricsUrl)).text();
  const routes = new Set(
    [...metrics.matchAll(/^http_request_duration_seconds_count\{[^}]*route="([^"]*)"/gm)].map((m) => m[1]),
  );
  const expected = new Set(['(rejected)', '(unmatched)', '(static)', '/docs', '/healthz', '/readyz', '/api/locals']);
  for (const route of routes) assert.ok(expected.has(route!), `unexpected route label ${route}`);
  assert.ok(routes.has('(rejected)'));
});
