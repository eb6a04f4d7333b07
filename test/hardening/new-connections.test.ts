// A busy origin still takes new connections in promptly (render turns, src/astro/render-turns.ts).
// libuv accepts one connection per event-loop turn; without a cap on the rendering one turn does,
// each turn of a busy origin renders a page for every connection with a request ready, and a
// connection opened now waits behind (connections opened before it) × (busy connections) renders.
// Counted in answers, not milliseconds: how many answers the others got before a new connection
// got its first.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import autocannon from 'autocannon';
import { LARGE_DOCS_PAGE, spawnOneRenderATurnOrigin } from '../helpers/origin.ts';

const PAGE = LARGE_DOCS_PAGE;
const BUSY = 20;
const NEW = 30;

test('30 connections opened into an origin kept busy by 20 others each get their first answer within a few turns', {
  timeout: 60_000,
}, async () => {
  // One render a turn on any machine, so the bound below does not depend on its speed; warm, so
  // the new connections meet a busy origin, not a cold one.
  const origin = await spawnOneRenderATurnOrigin(30);
  try {
    let answers = 0;
    const busy = autocannon({ url: origin.url + PAGE, connections: BUSY, duration: 6 });
    busy.on('response', () => answers++);
    while (answers < BUSY * 10) await new Promise((r) => setTimeout(r, 20));

    const answersBeforeFirst = new Map<unknown, number>();
    const opened = answers;
    const burst = autocannon({ url: origin.url + PAGE, connections: NEW, amount: NEW * 3 });
    burst.on('response', (client: unknown) => {
      if (!answersBeforeFirst.has(client)) answersBeforeFirst.set(client, answers - opened);
      answers++;
    });
    const [busyResult, burstResult] = await Promise.all([busy, burst]);
    for (const result of [busyResult, burstResult]) {
      assert.equal(result.errors, 0);
      assert.equal(result.non2xx, 0);
    }
    assert.equal(answersBeforeFirst.size, NEW, 'every new connection was answered');
    const counts = [...answersBeforeFirst.values()].sort((a, b) => a - b);
    // One render a turn, in arrival order: the last new connection is accepted within ~NEW turns
    // and then waits behind the requests queued before it (< BUSY + NEW). Without render turns
    // each of those turns renders a page for every busy connection: ~NEW × BUSY answers (600).
    assert.ok(
      counts.at(-1)! <= 4 * (BUSY + NEW),
      `the last new connection got its first answer after ${counts.at(-1)} answers to the others (all: ${counts.join(' ')})`,
    );
  } finally {
    await origin.stop();
  }
});
