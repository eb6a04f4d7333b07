// The catch-all route and the Request/Response bridge, against the real demo build.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { RunningOrigin } from '../../src/standalone.ts';
import { startTestOrigin } from '../helpers/origin.ts';

let origin: RunningOrigin;
before(async () => {
  origin = await startTestOrigin();
});
after(() => origin.close());

const get = (path: string, init?: RequestInit) => fetch(origin.url + path, { redirect: 'manual', ...init });

describe('pages', () => {
  test('an MDX page renders through the origin', async () => {
    const res = await get('/docs/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await res.text(), /<html/);
  });

  test('an .astro page renders and sees the query string', async () => {
    const res = await get('/probe-astro?token=tok-astro-1');
    assert.equal(res.status, 200);
    assert.equal((await res.text()).split('tok-astro-1').length - 1, 24);
  });

  test('an .astro page rendered within one event-loop turn goes as one buffer with a Content-Length', async () => {
    const res = await get('/', { headers: { 'accept-encoding': 'identity' } });
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(body)));
    assert.equal(res.headers.get('transfer-encoding'), null);
    assert.match(body, /<\/html>/);
  });

  test('an .astro page that awaits timers streams (chunked) and arrives whole', async () => {
    const res = await get('/probe-astro?token=tok-stream', { headers: { 'accept-encoding': 'identity' } });
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    assert.equal(res.headers.get('content-length'), null);
    const body = await res.text();
    assert.equal(body.split('tok-stream').length - 1, 24);
    assert.match(body, /<\/html>\s*$/);
  });

  test("unknown paths get Astro's own custom 404 page, not Fastify's", async () => {
    const res = await get('/no/such/page');
    assert.equal(res.status, 404);
    assert.match(await res.text(), /Page not found — Origin Docs/);
  });

  test('a page that throws gets the custom 500 page, and the server keeps serving', async () => {
    for (const path of ['/errors/throw', '/errors/throw-mdx']) {
      const res = await get(path);
      assert.equal(res.status, 500, path);
      const body = await res.text();
      assert.match(body, /Something broke — Origin Docs/);
      assert.doesNotMatch(body, /deliberate failure/, 'the error message must not leak to users');
    }
    assert.equal((await get('/docs/')).status, 200);
  });

  test('HEAD answers with the headers of GET and no body', async () => {
    const res = await get('/docs/', { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('the prerendered page is served from the client dir', async () => {
    const res = await get('/about/');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /About Origin Docs \(prerendered\)/);
    assert.ok(res.headers.get('etag'), 'served as a static file, with an ETag');
  });
});

describe('endpoints, cookies, redirects, locals', () => {
  test('POST bodies reach the endpoint; status, JSON and every Set-Cookie come back', async () => {
    const res = await get('/api/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world', n: 42 }),
    });
    assert.equal(res.status, 201);
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 2, `two Set-Cookie lines, got ${JSON.stringify(cookies)}`);
    assert.ok(cookies.some((c) => c.startsWith('a=1')));
    assert.ok(cookies.some((c) => c.startsWith('b=2')));
    const json = (await res.json()) as { received: unknown; clientAddress: string; method: string };
    assert.deepEqual(json.received, { hello: 'world', n: 42 });
    assert.equal(json.method, 'POST');
    assert.match(json.clientAddress, /^(::ffff:)?127\.0\.0\.1$/);
  });

  test('an invalid JSON body is the endpoint’s 400, not a crash', async () => {
    const res = await get('/api/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    assert.equal(res.status, 400);
    assert.equal((await get('/docs/')).status, 200);
  });

  test('a body over BODY_LIMIT_BYTES is refused with 413', async () => {
    const small = await startTestOrigin({ BODY_LIMIT_BYTES: '1024' });
    try {
      const res = await fetch(`${small.url}/api/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ big: 'x'.repeat(4096) }),
      });
      assert.equal(res.status, 413);
    } finally {
      await small.close();
    }
  });

  test('a page can set several cookies', async () => {
    const res = await get('/cookies');
    assert.equal(res.status, 200);
    const names = res.headers.getSetCookie().map((c) => c.split('=')[0]);
    assert.deepEqual(names.sort(), ['c1', 'c2']);
  });

  test('redirects keep their status and Location', async () => {
    const res = await get('/api/redirect');
    assert.equal(res.status, 302);
    assert.match(res.headers.get('location') ?? '', /^\/docs\//);
  });

  test('Astro.locals carries the request id', async () => {
    const res = await get('/api/locals', { headers: { 'x-request-id': 'test-req-123' } });
    assert.equal(res.status, 200);
    const locals = (await res.json()) as Record<string, unknown>;
    assert.equal(locals.requestId, 'test-req-123');
  });

  test('X-Forwarded-For is ignored unless security.allowedDomains trusts the proxy', async () => {
    const res = await get('/api/echo', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-host': 'evil.example',
      },
      body: '{}',
    });
    const json = (await res.json()) as { clientAddress: string };
    assert.match(json.clientAddress, /127\.0\.0\.1$/);
  });
});

describe('connection hygiene', () => {
  test('keep-alive sockets do not accumulate listeners across requests', async () => {
    const sockets: import('node:net').Socket[] = [];
    const onConnection = (socket: import('node:net').Socket) => sockets.push(socket);
    origin.app.server.on('connection', onConnection);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const fetchOnce = (path: string) =>
      new Promise<number>((resolve, reject) => {
        httpRequest(origin.url + path, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
          .on('error', reject)
          .end();
      });
    try {
      await fetchOnce('/docs/');
      assert.equal(sockets.length, 1);
      const socket = sockets[0]!;
      const listenersAfterOne = socket.listenerCount('close');
      for (let i = 0; i < 40; i++) assert.equal(await fetchOnce(i % 2 ? '/docs/' : `/probe-astro?token=k${i}`), 200);
      assert.equal(sockets.length, 1, 'one keep-alive socket served every request');
      assert.equal(socket.listenerCount('close'), listenersAfterOne);
    } finally {
      origin.app.server.off('connection', onConnection);
      agent.destroy();
    }
  });

  test('clients that hang up mid-response leave the server serving', async () => {
    for (let i = 0; i < 50; i++) {
      await new Promise<void>((resolve) => {
        const req = httpRequest(`${origin.url}/probe-astro?token=abort${i}`, (res) => {
          res.once('data', () => req.destroy());
          res.once('close', () => resolve());
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    assert.equal((await get('/docs/')).status, 200);
  });
});
