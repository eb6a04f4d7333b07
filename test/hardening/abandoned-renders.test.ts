// A render that waited for an event-loop turn (src/astro/render-turns.ts) is skipped when its
// client has left meanwhile: a saturated origin whose clients time out (a CDN, a load balancer)
// spends its renders on the clients still there. Counted with the render metric, not timed.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { LARGE_DOCS_PAGE, spawnOneRenderATurnOrigin } from '../helpers/origin.ts';
import { hostPort } from '../helpers/raw-http.ts';

const PAGE = LARGE_DOCS_PAGE;
const CLIENTS = 40;
// Every fourth client stays; the others hang up while their renders wait.
const stays = (i: number) => i % 4 === 0;

const count = async (metricsUrl: string, name: string, labels: string) => {
  const text = await (await fetch(metricsUrl)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label)));
  return Number(line?.split(' ').at(-1) ?? 0);
};
const renders = (metricsUrl: string) => count(metricsUrl, 'astro_render_duration_seconds_count', `route="${PAGE}"`);
const leftEarly = (metricsUrl: string) =>
  count(metricsUrl, 'http_request_duration_seconds_count', `route="${PAGE}",status_code="499"`);

test('renders whose GET clients left while they waited for a turn are not run; the clients still there are answered', {
  timeout: 60_000,
}, async () => {
  // One render a turn on any machine, so the 40 requests read in one turn wait in line.
  const origin = await spawnOneRenderATurnOrigin(20);
  try {
    const before = await renders(origin.metricsUrl);
    const leftBefore = await leftEarly(origin.metricsUrl);

    // Connections first (libuv takes in one per loop turn), then every request in one write
    // each, in the same tick: the origin reads them all in one turn.
    const { host, port } = hostPort(origin.url);
    const sockets = await Promise.all(
      Array.from(
        { length: CLIENTS },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(port, host, () => resolve(socket));
            socket.on('error', reject);
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 200));
    // The others hang up as soon as the first page is out: the renders behind it are waiting.
    let firstAnswer!: () => void;
    const firstAnswered = new Promise<void>((resolve) => {
      firstAnswer = resolve;
    });
    const answers = sockets.map((socket, i) => {
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      const chunks: Buffer[] = [];
      const done = new Promise<string>((resolve) => {
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      });
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        firstAnswer();
        // A complete answer: the body ends the page.
        if (stays(i) && Buffer.concat(chunks).includes('</html>')) socket.end();
      });
      socket.write(`GET ${PAGE} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      return done;
    });
    await firstAnswered;
    sockets.forEach((socket, i) => {
      if (!stays(i)) socket.destroy();
    });
    const texts = await Promise.all(answers);

    for (const [i, text] of texts.entries()) {
      if (stays(i)) assert.match(text, /^HTTP\/1\.1 200 /, `client ${i}, who stayed, got its page`);
    }
    // Let the origin finish and count.
    await new Promise((r) => setTimeout(r, 300));
    const rendered = (await renders(origin.metricsUrl)) - before;
    const stayed = texts.filter((_, i) => stays(i)).length;
    console.log('RENDERED', rendered, stayed);
    // Without the skip every request is rendered (40). With it: the clients who stayed, plus the
    // renders that started before the origin saw the others hang up (one a turn: a few).
    assert.ok(rendered >= stayed, `rendered ${rendered}, fewer than the ${stayed} clients who stayed`);
    assert.ok(rendered <= stayed + 6, `rendered ${rendered} of ${CLIENTS}: renders ran for clients who had left`);
    // Each request not rendered is still counted, as a client that closed first (a leaver whose
    // page was written before the origin saw it leave is a 200).
    const left = (await leftEarly(origin.metricsUrl)) - leftBefore;
    assert.ok(left >= CLIENTS - rendered, `${left} answers counted as 499; ${CLIENTS - rendered} were not rendered`);
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});
