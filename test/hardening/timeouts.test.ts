// The connection timeouts and the connection limit, each configured small so the test is short:
// KEEP_ALIVE_TIMEOUT_MS, HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS, MAX_CONNECTIONS.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { assertServing, get, hostPort, parse, rawRequest } from '../helpers/raw-http.ts';

/** Opens a connection; resolves when connected. `closed` resolves with ms from open to close. */
async function open(url: string): Promise<{ socket: Socket; closed: Promise<number>; data: () => string }> {
  const { host, port } = hostPort(url);
  const socket = connect(port, host);
  const started = performance.now();
  let data = '';
  socket.on('data', (c) => (data += c));
  socket.on('error', () => {});
  const closed = new Promise<number>((r) => socket.on('close', () => r(performance.now() - started)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  return { socket, closed, data: () => data };
}

const within = (ms: number, low: number, high: number, what: string) =>
  assert.ok(ms >= low && ms <= high, `${what}: ${Math.round(ms)} ms, expected ${low}..${high}`);

describe('timeouts', { concurrency: true }, () => {
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({
      KEEP_ALIVE_TIMEOUT_MS: '1500',
      HEADERS_TIMEOUT_MS: '2000',
      REQUEST_TIMEOUT_MS: '3000',
    });
  });
  after(async () => {
    assert.equal(await origin.stop(), 0);
  });
  const alive = () => origin.child.exitCode === null;

  test('KEEP_ALIVE_TIMEOUT_MS: advertised in Keep-Alive, an idle connection is closed after it', async () => {
    const conn = await open(origin.url);
    conn.socket.write('GET /docs/ HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const ms = await conn.closed;
    const res = parse(conn.data());
    assert.equal(res.status, 200);
    assert.equal(res.headers['keep-alive'], 'timeout=1');
    within(ms, 1400, 4500, 'idle keep-alive connection closed');
    await assertServing(origin.url, { alive });
  });

  test('HEADERS_TIMEOUT_MS: an unfinished request head gets 408 and the connection is closed', async () => {
    const conn = await open(origin.url);
    conn.socket.write('GET /docs/ HTTP/1.1\r\nHost: localhost\r\n');
    const ms = await conn.closed;
    assert.equal(parse(conn.data()).status, 408);
    within(ms, 1900, 4000, 'slow head closed');
    await assertServing(origin.url, { alive });
  });

  test('REQUEST_TIMEOUT_MS: a body that trickles in too slowly gets 408', async () => {
    const conn = await open(origin.url);
    conn.socket.write(
      'POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    const drip = setInterval(() => conn.socket.write(' '), 400);
    const ms = await conn.closed;
    clearInterval(drip);
    assert.equal(parse(conn.data()).status, 408, conn.data().slice(0, 200));
    within(ms, 2900, 5000, 'slow body closed');
    await assertServing(origin.url, { alive });
  });
});

test('defaults: Keep-Alive timeout=65 (KEEP_ALIVE_TIMEOUT_MS, above common load-balancer idle timeouts)', async () => {
  const origin = await spawnOrigin({});
  try {
    const res = await rawRequest(
      origin.url,
      (socket) => socket.write('GET /docs/ HTTP/1.1\r\nHost: localhost\r\n\r\n'),
      { timeoutMs: 500 },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers['keep-alive'], 'timeout=65');
    assert.equal(res.closedByServer, false, 'the connection stays open');
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});

test('MAX_CONNECTIONS: connections past the limit are closed on arrival, counted, and accepted again once below', async () => {
  const origin = await spawnOrigin({ MAX_CONNECTIONS: '5', LOG_LEVEL: 'warn' });
  const held: Awaited<ReturnType<typeof open>>[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const conn = await open(origin.url);
      conn.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      held.push(conn);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(
      held.every((c) => parse(c.data()).status === 200),
      'the first five are served',
    );

    const extra = await rawRequest(origin.url, get('/docs/'), { timeoutMs: 2000 });
    assert.equal(extra.status, 0, 'the sixth connection gets no answer');
    assert.equal(extra.closedByServer, true, 'and is closed by the server at once');

    held.pop()!.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await rawRequest(origin.url, get('/docs/'))).status, 200, 'below the limit again: served');

    const metrics = await (await fetch(origin.metricsUrl)).text();
    assert.match(metrics, /^origin_connections_dropped_total [1-9]/m);
    assert.match(origin.output(), /connection refused: MAX_CONNECTIONS/);
  } finally {
    for (const conn of held) conn.socket.destroy();
    assert.equal(await origin.stop(), 0);
  }
});
