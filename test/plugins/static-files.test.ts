import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { RunningOrigin } from '../../src/standalone.ts';
import { DEMO_BUILD, startTestOrigin } from '../helpers/origin.ts';

let origin: RunningOrigin;
let asset: string;
before(async () => {
  origin = await startTestOrigin();
  const file = readdirSync(path.join(DEMO_BUILD, 'client/_astro')).find((f) => f.endsWith('.js'));
  assert.ok(file, 'the demo build has a hashed script in /_astro/ (the island)');
  asset = `/_astro/${file}`;
});
after(() => origin.close());

/**
 * Sends exactly this request: the path as written (fetch() normalises it) and only these
 * headers (fetch() adds Cache-Control: no-cache to conditional requests, defeating 304s).
 */
function rawGet(
  rawPath: string,
  { method = 'GET', headers = {} }: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string; headers: import('node:http').IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(origin.url);
    httpRequest({ hostname, port, path: rawPath, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    })
      .on('error', reject)
      .end();
  });
}

test('hashed /_astro/ files are immutable for a year', async () => {
  const res = await fetch(origin.url + asset);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(res.headers.get('content-type') ?? '', /javascript/);
});

test('other static files revalidate', async () => {
  const res = await fetch(`${origin.url}/about/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('cache-control') ?? '', /must-revalidate/);
});

test('ETag revalidation answers 304, compressed or not', async () => {
  const first = await rawGet(asset);
  const etag = first.headers.etag;
  assert.ok(etag);
  for (const encoding of ['identity', 'gzip', 'br']) {
    const again = await rawGet(asset, { headers: { 'if-none-match': etag, 'accept-encoding': encoding } });
    assert.equal(again.status, 304, encoding);
    assert.equal(again.body, '');
  }
});

test('Range requests get 206 with the asked bytes', async () => {
  const res = await fetch(origin.url + asset, { headers: { range: 'bytes=0-9' } });
  assert.equal(res.status, 206);
  assert.equal((await res.arrayBuffer()).byteLength, 10);
  assert.match(res.headers.get('content-range') ?? '', /^bytes 0-9\//);
});

test('HEAD on a static file has headers, no body', async () => {
  const res = await rawGet(asset, { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.ok(Number(res.headers['content-length']) > 0);
  assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(res.body, '');
});

test('path traversal never reaches the filesystem outside the client dir', async () => {
  const attempts = [
    '/../../../../etc/passwd',
    '/_astro/../../../../etc/passwd',
    '/..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/_astro/..%2f..%2f..%2fserver%2fentry.mjs',
    '/_astro/..%5c..%5c..%5cetc%5cpasswd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/_astro/%252e%252e/%252e%252e/etc/passwd',
    '/..;/..;/etc/passwd',
    '/server/entry.mjs',
    '/_astro/../server/entry.mjs',
    '/.well-known/%2e%2e/%2e%2e/server/entry.mjs',
    '/.well-known/..%2f..%2fserver/entry.mjs',
  ];
  for (const attempt of attempts) {
    const { status, body } = await rawGet(attempt);
    assert.ok(status >= 400 && status < 500, `${attempt} → ${status}`);
    assert.doesNotMatch(body, /root:x:0:0|createApp|export \{/, `${attempt} leaked a file`);
  }
  assert.equal((await fetch(origin.url + asset)).status, 200);
});

test('STATIC_CACHE_CONTROL sets Cache-Control of unhashed files; hashed ones stay immutable', async () => {
  const custom = await startTestOrigin({ STATIC_CACHE_CONTROL: 'public, max-age=300, stale-while-revalidate=60' });
  try {
    const page = await fetch(`${custom.url}/about/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('cache-control'), 'public, max-age=300, stale-while-revalidate=60');
    const hashed = await fetch(custom.url + asset);
    assert.equal(hashed.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  } finally {
    await custom.close();
  }
});
