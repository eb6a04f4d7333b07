// Slow clients with the DEFAULT configuration: a client that never finishes its request head
// is answered 408 and closed within HEADERS_TIMEOUT_MS (15 s) plus the 1 s check interval
// (Node's defaults would hold it ~90 s), and while 200 of them hang on, others are served.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { assertServing, hostPort, parse } from '../helpers/raw-http.ts';

const HEADERS_TIMEOUT_MS = loadConfig({}).HEADERS_TIMEOUT_MS;

let origin: OriginProcess;
before(async () => {
  origin = await spawnOrigin({});
});
after(async () => {
  assert.equal(await origin.stop(), 0);
});

interface Slow {
  socket: Socket;
  closedAfterMs: Promise<number>;
  received: () => string;
}

/** A connection that behaves as `kind` and resolves when the server closes it. */
function slowClient(kind: 'silent' | 'partial' | 'trickle'): Slow {
  const { host, port } = hostPort(origin.url);
  const socket = connect(port, host);
  const started = performance.now();
  let data = '';
  let trickle: NodeJS.Timeout | undefined;
  socket.on('data', (chunk) => (data += chunk));
  socket.on('error', () => {});
  socket.on('connect', () => {
    if (kind === 'silent') return;
    socket.write('GET /docs/ HTTP/1.1\r\nHost: localhost\r\n');
    if (kind === 'trickle') {
      let i = 0;
      trickle = setInterval(() => socket.write(`X-Slow-${i++}: a\r\n`), 500);
    }
  });
  const closedAfterMs = new Promise<number>((resolve) =>
    socket.on('close', () => {
      clearInterval(trickle);
      resolve(performance.now() - started);
    }),
  );
  return { socket, closedAfterMs, received: () => data };
}

test(`slow request heads are answered 408 and closed within HEADERS_TIMEOUT_MS (${HEADERS_TIMEOUT_MS} ms) by default; the origin serves others meanwhile`, {
  timeout: 25_000,
}, async () => {
  assert.equal(HEADERS_TIMEOUT_MS, 15_000, 'the documented default');
  const watched = [slowClient('silent'), slowClient('partial'), slowClient('trickle')];
  const crowd = Array.from({ length: 200 }, (_, i) => slowClient(i % 2 ? 'partial' : 'trickle'));
  try {
    // While they hang on, normal clients are served.
    await new Promise((r) => setTimeout(r, 2000));
    await assertServing(origin.url);

    const bound = HEADERS_TIMEOUT_MS + 2500; // the check runs every second; scheduling slack
    const timeout = new Promise<number>((r) => setTimeout(() => r(Infinity), bound + 1000).unref());
    for (const [i, client] of watched.entries()) {
      const ms = await Promise.race([client.closedAfterMs, timeout]);
      const kind = ['silent', 'partial', 'trickle'][i];
      assert.ok(ms <= bound, `${kind} client closed after ${Math.round(ms)} ms (bound ${bound})`);
      assert.ok(ms >= HEADERS_TIMEOUT_MS - 1000, `${kind} client was not closed early (${Math.round(ms)} ms)`);
      const res = parse(client.received());
      assert.equal(res.status, 408, `${kind}: ${client.received().slice(0, 200)}`);
      assert.match(JSON.parse(res.body).message, /did not arrive in time/);
    }
    const crowdTimes = await Promise.all(crowd.map((c) => Promise.race([c.closedAfterMs, timeout])));
    assert.ok(
      crowdTimes.every((ms) => ms <= bound),
      'all 200 slow clients were closed too',
    );
    await assertServing(origin.url, { alive: () => origin.child.exitCode === null });
  } finally {
    for (const client of [...watched, ...crowd]) client.socket.destroy();
  }
});
