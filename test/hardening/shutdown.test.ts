// Graceful shutdown of the origin process: SIGTERM under autocannon load loses no accepted
// request and exits 0; readiness turns 503 first; requests in flight finish; idle keep-alive
// connections are closed; SHUTDOWN_TIMEOUT_MS bounds it all.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { spawnOrigin } from '../helpers/origin.ts';
import { hostPort, parse } from '../helpers/raw-http.ts';
import { assertNoAcceptedRequestFailed, COUNT_REQUESTS, loadThenSigterm, summarize } from '../helpers/shutdown.ts';

test('SIGTERM under autocannon load: no accepted request fails, exit 0', { timeout: 60_000 }, async () => {
  // Load shedding off: this is about the drain, and a busy machine would shed with 503s.
  const origin = await spawnOrigin(
    { LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0' },
    { nodeArgs: ['--import', COUNT_REQUESTS] },
  );
  const run = await loadThenSigterm(origin);
  console.log(summarize('SIGTERM under load, WORKERS=1', run));
  assertNoAcceptedRequestFailed(run);
});

/** A connection that has made one request and is now idle (keep-alive). */
async function idleKeepAlive(url: string): Promise<{ socket: Socket; closed: Promise<void>; data: () => string }> {
  const { host, port } = hostPort(url);
  const socket = connect(port, host);
  let data = '';
  socket.on('data', (c) => (data += c));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  while (!data.includes('"ok"')) await new Promise((r) => setTimeout(r, 10));
  data = '';
  return { socket, closed, data: () => data };
}

test('drain order: readiness 503 first, in-flight requests finish, idle keep-alive connections close, exit 0', {
  timeout: 30_000,
}, async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info' });
  const idle = await idleKeepAlive(origin.url);
  const asker = await idleKeepAlive(origin.url);
  // An upload in flight: its body arrives over ~1.5 s.
  const upload = await idleKeepAlive(origin.url);
  const body = JSON.stringify({ slow: 'x'.repeat(60) });
  upload.socket.write(
    `POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  let sent = 0;
  const drip = setInterval(() => {
    upload.socket.write(body.slice(sent, sent + 5));
    sent += 5;
    if (sent >= body.length) clearInterval(drip);
  }, 100);
  await new Promise((r) => setTimeout(r, 200));

  const signalled = performance.now();
  const exited = once(origin.child, 'exit');
  origin.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 100));

  // 1. Readiness, asked on a connection opened before: 503, and the connection is closed.
  asker.socket.write('GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await asker.closed;
  const readiness = parse(asker.data());
  assert.equal(readiness.status, 503);
  assert.deepEqual(JSON.parse(readiness.body), { status: 'draining' });
  assert.equal(readiness.headers.connection, 'close');

  // 2. New connections are refused.
  const { host, port } = hostPort(origin.url);
  const refused = await new Promise<string>((resolve) => {
    const s = connect(port, host);
    s.on('connect', () => resolve('connected'));
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');

  // 3. The idle keep-alive connection is closed by the server, about a second in.
  await idle.closed;
  const idleClosedMs = performance.now() - signalled;
  assert.ok(idleClosedMs < 3000, `idle connection closed after ${Math.round(idleClosedMs)} ms`);
  assert.equal(idle.data(), '', 'without a response');

  // 4. The upload in flight completes: 201, Connection: close.
  await upload.closed;
  const uploaded = parse(upload.data());
  assert.equal(uploaded.status, 201, upload.data().slice(0, 300));
  assert.equal(uploaded.headers.connection, 'close');
  assert.deepEqual((JSON.parse(uploaded.body) as { received: unknown }).received, JSON.parse(body));

  // 5. Then the process exits 0, well before SHUTDOWN_TIMEOUT_MS.
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, origin.output());
  assert.ok(performance.now() - signalled < 8000);
  assert.match(origin.output(), /"msg":"shutdown: drained"/, 'logs are flushed before exit');
});

test('SHUTDOWN_TIMEOUT_MS bounds the drain: a request that never completes is cut, exit 1', {
  timeout: 30_000,
}, async () => {
  const origin = await spawnOrigin({ SHUTDOWN_TIMEOUT_MS: '1500', LOG_LEVEL: 'warn' });
  const stuck = await idleKeepAlive(origin.url);
  stuck.socket.write(
    'POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
  );
  const drip = setInterval(() => stuck.socket.write(' '), 200); // never reaches 1000 bytes in time
  try {
    await new Promise((r) => setTimeout(r, 200));
    const signalled = performance.now();
    const exited = once(origin.child, 'exit');
    origin.child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    const ms = performance.now() - signalled;
    assert.equal(code, 1, 'not a clean drain: exit 1');
    assert.ok(ms >= 1400 && ms < 6000, `exited after ${Math.round(ms)} ms`);
    assert.match(origin.output(), /still in flight after SHUTDOWN_TIMEOUT_MS/);
  } finally {
    clearInterval(drip);
    stuck.socket.destroy();
  }
});
