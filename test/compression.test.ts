import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { RunningOrigin } from '../src/standalone.ts';
import { startTestOrigin } from './helpers/origin.ts';

let origin: RunningOrigin;
before(async () => {
  origin = await startTestOrigin();
});
after(() => origin.close());

/** fetch() decodes bodies itself; node:http shows what went over the wire. */
function rawGet(path: string, acceptEncoding: string) {
  return new Promise<{ encoding: string | undefined; body: Buffer; type: string | undefined }>((resolve, reject) => {
    httpRequest(origin.url + path, { headers: { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          encoding: res.headers['content-encoding'],
          body: Buffer.concat(chunks),
          type: res.headers['content-type'],
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

test('HTML is brotli-compressed when the client prefers br', async () => {
  const res = await rawGet('/docs/', 'br, gzip');
  assert.equal(res.encoding, 'br');
  assert.match(brotliDecompressSync(res.body).toString(), /<html/);
});

test('HTML is gzip-compressed for gzip-only clients', async () => {
  const res = await rawGet('/docs/', 'gzip');
  assert.equal(res.encoding, 'gzip');
  assert.match(gunzipSync(res.body).toString(), /<html/);
});

test('streamed .astro pages are compressed too', async () => {
  const res = await rawGet('/probe-astro?token=zz', 'gzip');
  assert.equal(res.encoding, 'gzip');
  assert.equal(gunzipSync(res.body).toString().split('zz').length - 1, 24);
});

test('no Accept-Encoding, no compression', async () => {
  const res = await rawGet('/docs/', 'identity');
  assert.equal(res.encoding, undefined);
});

test('small bodies are left alone', async () => {
  const res = await rawGet('/healthz', 'br, gzip');
  assert.equal(res.encoding, undefined);
  assert.equal(JSON.parse(res.body.toString()).status, 'ok');
});
