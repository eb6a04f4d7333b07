// Render turns (src/astro/render-turns.ts) on the real event loop: past the slice, renders wait in
// arrival order and the loop runs its other callbacks (timers, sockets) before the next ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRenderTurns } from '../../src/astro/render-turns.ts';

/** Synchronous work, as a queue render is: holds the loop for `ms`. */
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

/**
 * Six 4 ms "renders" arrive in one callback (as requests read in one poll phase); a timer is
 * due meanwhile, and render 3 sets another. Returns the order in which all ran.
 */
async function runSix(sliceMs: number): Promise<string[]> {
  const turns = createRenderTurns(sliceMs);
  const order: string[] = [];
  const timer = (name: string) =>
    new Promise<void>((resolve) =>
      setTimeout(() => {
        order.push(name);
        resolve();
      }, 0),
    );
  const timers = [timer('timer')];
  busy(2); // the timer is due from here on
  const renders = [1, 2, 3, 4, 5, 6].map(async (n) => {
    const turn = turns.admit();
    if (turn) await turn;
    order.push(`render ${n}`);
    // Set by a render that waited: due before the renders of the turn after its own.
    if (n === 3) timers.push(timer('timer set by render 3'));
    busy(4);
  });
  await Promise.all(renders);
  await Promise.all(timers);
  assert.equal(turns.waiting(), 0);
  assert.equal(turns.oldestWaitMs(), 0);
  return order;
}

test('past the slice, renders wait in arrival order, and the loop runs a due timer before the last ones', async () => {
  const order = await runSix(5);
  const renders = order.filter((step) => step.startsWith('render'));
  assert.deepEqual(
    renders,
    [1, 2, 3, 4, 5, 6].map((n) => `render ${n}`),
    'arrival order',
  );
  assert.ok(order.indexOf('timer') > order.indexOf('render 1'), 'the first render started at once');
  // Each turn starts ~5 ms of renders (two of 4 ms) and no more: renders 3 and 4 wait for the
  // next turn, 5 and 6 for the one after, so both timers run before render 5.
  assert.ok(order.indexOf('timer') < order.indexOf('render 5'), `due timer before render 5: ${order.join(', ')}`);
  assert.ok(
    order.indexOf('timer set by render 3') < order.indexOf('render 5'),
    `render 3's timer before render 5 (the waiting renders are spread over turns too): ${order.join(', ')}`,
  );
});

test('slice 0: no limit, every render starts at once (Node without render turns)', async () => {
  const order = await runSix(0);
  assert.deepEqual(
    order.slice(0, 6),
    [1, 2, 3, 4, 5, 6].map((n) => `render ${n}`),
  );
});

test('waiting() and oldestWaitMs() report the backlog while renders wait', async () => {
  const turns = createRenderTurns(1);
  assert.equal(turns.admit(), undefined, 'the first render of a turn starts at once');
  busy(2);
  const waits = [turns.admit(), turns.admit()];
  assert.ok(waits.every((w) => w instanceof Promise));
  assert.equal(turns.waiting(), 2);
  busy(3);
  assert.ok(turns.oldestWaitMs() >= 3, `oldest wait ${turns.oldestWaitMs()} ms`);
  await Promise.all(waits);
  assert.equal(turns.waiting(), 0);
});

test('with afterAcceptMs, turns apply only that long after a connection was accepted', async () => {
  const turns = createRenderTurns(1, 50);
  // No connection accepted yet: a steady load of open connections renders as Node would.
  assert.equal(turns.admit(), undefined);
  busy(2);
  assert.equal(turns.admit(), undefined, 'past the slice, yet no connection to take in: starts at once');
  await new Promise((r) => setImmediate(r));
  turns.connectionAccepted();
  assert.equal(turns.admit(), undefined, 'the first render of a turn starts at once');
  busy(2);
  const wait = turns.admit();
  assert.ok(wait instanceof Promise, 'within the window, past the slice: waits for a turn');
  await wait;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(turns.admit(), undefined);
  busy(2);
  assert.equal(turns.admit(), undefined, 'the window is over: starts at once again');
});
