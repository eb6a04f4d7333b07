// The Web Request Astro renders (src/astro/bridge.ts toWebRequest): without allowedDomains the
// bridge builds it itself, and must give what Astro's createRequest gives; its signal is made
// on first read and must still abort when the client goes away, and only then.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createRequest } from 'astro/app/node';
import type { FastifyRequest } from 'fastify';
import { clientAddressOf } from '../../src/astro/astro-internals.ts';
import { releaseWebRequest, toWebRequest } from '../../src/astro/bridge.ts';
import type { RunningOrigin } from '../../src/standalone.ts';
import { startTestOrigin } from '../helpers/origin.ts';
import { hostPort, rawRequest } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

/** Sends each raw request to a bare node:http server and hands over what Node parsed. */
async function parsed(rawRequests: string[]): Promise<IncomingMessage[]> {
  const received: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    received.push(req);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    for (const raw of rawRequests) await rawRequest(url, raw);
  } finally {
    server.close();
  }
  return received;
}

const asFastify = (raw: IncomingMessage, body?: Buffer) => ({ raw, body }) as unknown as FastifyRequest;

describe('without allowedDomains the request is what createRequest makes', () => {
  const cases = [
    'GET / HTTP/1.1\r\nHost: localhost\r\n',
    'GET /docs/caching/?a=1&b=%20x#frag HTTP/1.1\r\nHost: example.com:8080\r\nAccept: text/html\r\n',
    'GET /%E2%9C%93/caf%C3%A9?q=%ZZ HTTP/1.1\r\nHost: [::1]:4321\r\n',
    'GET //double//slashes/ HTTP/1.1\r\nHost: a.example\r\n',
    'HEAD /x HTTP/1.1\r\nHost: a.example\r\nCookie: a=1\r\nCookie: b=2\r\nAccept: x\r\nAccept: y\r\n',
    'GET /forwarded HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n',
    'DELETE /api/thing HTTP/1.1\r\nHost: a.example\r\nAuthorization: Bearer x\r\n',
    'GET /no-host HTTP/1.0\r\n',
  ];
  for (const head of cases) {
    test(JSON.stringify(head.split('\r\n')[0]), async () => {
      const [req] = await parsed([`${head}Connection: close\r\n\r\n`]);
      const theirs = createRequest(req!, { skipBody: true, allowedDomains: [] });
      const ours = toWebRequest(asFastify(req!), []);
      assert.equal(ours.request.url, theirs.url);
      assert.equal(ours.request.method, theirs.method);
      assert.deepEqual([...ours.request.headers], [...theirs.headers]);
      assert.equal(ours.clientAddress, clientAddressOf(theirs));
      // Both connections are closed by now: both signals say so.
      assert.equal(ours.request.signal.aborted, theirs.signal.aborted);
    });
  }

  test('a body is handed over as the bytes Fastify read', async () => {
    const [req] = await parsed([
      'POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    ]);
    const ours = toWebRequest(asFastify(req!, Buffer.from('{"a":1}')), []);
    assert.equal(await ours.request.text(), '{"a":1}');
  });
});

describe('Astro.request.signal', () => {
  let origin: RunningOrigin;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  before(async () => {
    origin = await startTestOrigin();
    process.on('warning', onWarning);
  });
  after(async () => {
    process.off('warning', onWarning);
    await origin.close();
  });
  const outcomes = () => (globalThis as { __abortTestHooks?: Map<string, string> }).__abortTestHooks;

  test('aborts when the client goes away mid-render', async () => {
    const { host, port } = hostPort(origin.url);
    const socket = connect(port, host);
    socket.on('error', () => {});
    socket.write('GET /api/wait-for-abort?id=gone HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitFor('the endpoint to start waiting', 5000, () => outcomes()?.get('gone') === 'waiting', 10);
    socket.destroy();
    await waitFor('the signal to abort', 2000, () => outcomes()?.get('gone') === 'aborted', 10);
  });

  test('does not abort when the exchange completes, and leaves no listener on a kept-alive socket', async () => {
    const { host, port } = hostPort(origin.url);
    const socket = connect(port, host);
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk;
    });
    // One after another (pipelined requests would all be in flight at once), more than Node's
    // listener-leak warning allows on one emitter (10).
    const count = 15;
    for (let i = 0; i < count; i++) {
      socket.write(`GET /api/wait-for-abort?id=kept-${i}&wait=1 HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      await waitFor(`answer ${i + 1}`, 5000, () => received.split('HTTP/1.1 200').length - 1 === i + 1, 5);
    }
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < count; i++) assert.equal(outcomes()?.get(`kept-${i}`), 'timeout');
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
      [],
    );
  });

  test('read after the exchange is over, it never aborts and adds no listener', async () => {
    const [req] = await parsed(['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    const fastifyRequest = asFastify(req!);
    const listeners = req!.socket.listenerCount('close');
    const { request } = toWebRequest(fastifyRequest, []);
    releaseWebRequest(fastifyRequest);
    assert.equal(request.signal.aborted, false);
    assert.equal(req!.socket.listenerCount('close'), listeners);
    req!.socket.destroy();
    assert.equal(request.signal.aborted, false);
  });
});
