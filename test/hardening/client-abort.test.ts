// 10 000 clients that hang up mid-exchange (before the answer, after its first bytes, a few ms
// in, halfway through a request body), against streamed .astro pages, MDX pages, static files
// and an endpoint. Afterwards: the same number of open file descriptors, no request counted
// as in flight, no listener-leak warning, and the origin serves normally.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { type OriginProcess, spawnOrigin } from '../helpers/origin.ts';
import { assertServing, hostPort } from '../helpers/raw-http.ts';

const CLIENTS = 10_000;
const CONCURRENCY = 100;

let origin: OriginProcess;
before(async () => {
  origin = await spawnOrigin({ LOG_LEVEL: 'warn' });
});
after(async () => {
  assert.equal(await origin.stop(), 0);
});

const fds = () => readdirSync(`/proc/${origin.child.pid}/fd`).length;
const scrape = async () => (await fetch(origin.metricsUrl)).text();
const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

type Abort = 'before-response' | 'first-bytes' | 'after-1ms' | 'mid-upload';
const PLAN: Array<[string, Abort]> = [
  ['GET / HTTP/1.1', 'first-bytes'], // streamed .astro page
  ['GET /docs/ HTTP/1.1', 'first-bytes'], // MDX page (queue renderer)
  ['GET /probe-astro?token=t HTTP/1.1', 'before-response'],
  ['GET /docs/ HTTP/1.1', 'after-1ms'],
  ['GET /about/ HTTP/1.1', 'first-bytes'], // static file
  ['POST /api/echo HTTP/1.1', 'mid-upload'],
];

function abortingClient(i: number): Promise<void> {
  const [requestLine, how] = PLAN[i % PLAN.length]!;
  const { host, port } = hostPort(origin.url);
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      if (how === 'mid-upload') {
        socket.write(
          `${requestLine}\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"a":"`,
        );
        setTimeout(() => socket.destroy(), 1);
        return;
      }
      socket.write(`${requestLine}\r\nHost: localhost\r\n\r\n`);
      if (how === 'before-response') setImmediate(() => socket.destroy());
      else if (how === 'after-1ms') setTimeout(() => socket.destroy(), 1);
      else socket.once('data', () => socket.destroy());
    });
  });
}

test(`${CLIENTS} clients disconnecting mid-exchange leak no fd, no listener, no in-flight request`, {
  timeout: 120_000,
}, async () => {
  // Warm up (lazy imports, pools, first compile) so the baseline is the steady state.
  for (let i = 0; i < 60; i++) await abortingClient(i);
  await assertServing(origin.url);
  await new Promise((r) => setTimeout(r, 300));
  const fdsBefore = fds();

  let next = 0;
  const worker = async () => {
    while (next < CLIENTS) await abortingClient(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  // Let the server finish renders whose client is gone and release their sockets.
  let metrics = '';
  for (let tries = 0; tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 100));
    metrics = await scrape();
    if (gauge(metrics, 'http_requests_in_flight') === 0) break;
  }
  assert.equal(gauge(metrics, 'http_requests_in_flight'), 0, 'no request is left in flight');
  const fdsAfter = fds();
  assert.ok(fdsAfter <= fdsBefore + 3, `open fds: ${fdsBefore} before, ${fdsAfter} after`);
  assert.match(
    metrics,
    /http_request_duration_seconds_count\{[^}]*status_code="499"\} [1-9]/,
    'aborts are counted as 499',
  );
  assert.doesNotMatch(origin.output(), /MaxListenersExceededWarning|memory leak detected/i);
  await assertServing(origin.url, { alive: () => origin.child.exitCode === null });
});
