// /_image reads the source image from the client dir (astro/assets/endpoint/node, set by the
// adapter): the resize request is the only request the origin receives, and the process makes
// no outbound HTTP request. Astro's generic endpoint would fetch the source from the request's
// own origin instead (a self-request, which also misses under a base).
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, test } from 'node:test';
import type { RunningOrigin } from '../../src/standalone.ts';
import { startTestOrigin } from '../helpers/origin.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { buildDir, ensureConformanceBuilds } from './builds.ts';
import { send } from './harness.ts';

let origin: RunningOrigin;
before(async () => {
  await ensureConformanceBuilds();
  origin = await startTestOrigin({ BUILD_DIR: buildDir('default', 'ours'), METRICS_ENABLED: 'false' });
});
after(() => origin?.close());

test('/_image serves a resized WebP from disk: one request received, none sent', async () => {
  const { host } = new URL(origin.url);
  const page = await send(origin.url, { path: '/image', headers: { host } });
  const src = /<img[^>]+src="([^"]+)"/.exec(page.text)?.[1]?.replaceAll('&#38;', '&').replaceAll('&amp;', '&');
  assert.ok(src?.startsWith('/_image?href='), `the page links the image endpoint (got ${src})`);

  const received: string[] = [];
  const onRequest = (req: import('node:http').IncomingMessage) => received.push(req.url ?? '');
  const outbound: string[] = [];
  // Every fetch() (undici) and every http.request() of this process, whoever makes it.
  const onFetch = (message: unknown) =>
    outbound.push(String((message as { request: { origin: string } }).request.origin));
  const onHttp = (message: unknown) => outbound.push(String((message as { request: { host: string } }).request.host));
  origin.app.server.on('request', onRequest);
  diagnostics.subscribe('undici:request:create', onFetch);
  diagnostics.subscribe('http.client.request.start', onHttp);
  let image: { status: number; headers: Record<string, string>; body: Buffer; text: string };
  try {
    // Over a raw socket, so this request is not one of the process's outbound HTTP requests. The
    // Host is the origin's own address: a self-request would come back here and be counted.
    const res = await rawRequest(origin.url, `GET ${src} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const body = Buffer.from(res.body, 'latin1');
    image = { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
  } finally {
    origin.app.server.off('request', onRequest);
    diagnostics.unsubscribe('undici:request:create', onFetch);
    diagnostics.unsubscribe('http.client.request.start', onHttp);
  }
  assert.equal(image.status, 200, image.text.slice(0, 200));
  assert.equal(image.headers['content-type'], 'image/webp');
  assert.equal(image.body.subarray(8, 12).toString('latin1'), 'WEBP');
  // VP8 (lossy) frame header: width and height, 14 bits each, at bytes 26..29.
  assert.equal(image.body.subarray(12, 16).toString('latin1'), 'VP8 ');
  assert.equal(image.body.readUInt16LE(26) & 0x3fff, 50);
  assert.equal(image.body.readUInt16LE(28) & 0x3fff, 33);
  assert.deepEqual(received, [src], 'the origin received the image request and nothing else');
  assert.deepEqual(outbound, [], 'no outbound HTTP request was made');
});
