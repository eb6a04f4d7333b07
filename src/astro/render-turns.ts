// How much rendering one event-loop turn may do before the loop gets back to its sockets.
//
// Since libuv 1.45 (Node 20) a listening socket accepts ONE connection per event-loop turn
// (libuv/libuv#3696). A saturated origin runs every request its poll phase read back to back
// (50 connections × 5 ms of MDX rendering: 250 ms a turn), so new connections were admitted one
// every 250 ms: a CDN or load balancer opening 40 connections at once saw the last one's first
// response after ~8 s (this project's bench: p99 1–2 s on the MDX page, @astrojs/node and a bare
// node:http server alike, while the server spent ≤ 46 ms on any request). Capping the rendering
// a turn starts keeps turns short, so the loop accepts a connection every few ms; the renders
// past the cap wait in arrival order, so an old connection cannot overtake a new one either.
//
// Only the start of a render is scheduled: its synchronous part is what holds the loop (a queue
// render is all synchronous); an async component's awaits let the loop run anyway.
//
// Turns apply only for a while after a connection was accepted: they are for taking new
// connections in, and they cost. A request that waits for a turn keeps its objects alive across
// the scavenges of the renders before it, so they are promoted and left to the major GC: on the
// largest MDX page, under a steady load of busy keep-alive connections, turns at all times cost
// ~1.2x the CPU a request (README, Render turns). Without a new connection there is nothing to
// take in, so a steady saturated load runs as Node would; the first connection accepted (at the
// end of one long loop turn) turns them on again for the ones behind it.

export interface RenderTurns {
  /**
   * Before a render: undefined when it may start now (the common case: no promise, no tick),
   * otherwise a promise that resolves, in arrival order, in a later turn with room.
   */
  admit(): Promise<void> | undefined;
  /** Renders waiting for a turn now. */
  waiting(): number;
  /** Milliseconds the oldest waiting render has waited (0 when none waits). */
  oldestWaitMs(): number;
  /** A connection was accepted: turns apply for the next `afterAcceptMs`. */
  connectionAccepted(): void;
}

/**
 * Default RENDER_SLICE_MS: one render of a 50 KB MDX page on the bench machine, ~15 tiny pages.
 * 1, 5 and 10 ms cost the same CPU there (4 alternating rounds, within the noise); 10 ms let
 * new connections wait longer (see README, Render turns).
 */
export const DEFAULT_RENDER_SLICE_MS = 5;

/**
 * Default RENDER_TURNS_AFTER_ACCEPT_MS: how long turns apply after a connection is accepted. Each
 * accept starts it again, so it only has to outlast the gaps within a burst of new connections;
 * a probe or a single new client turns them on for just this long.
 */
export const DEFAULT_RENDER_TURNS_AFTER_ACCEPT_MS = 1000;

interface Waiter {
  resolve: () => void;
  since: number;
}

/**
 * Renders start freely until `sliceMs` has passed since the first render of the turn; later ones
 * wait for a later turn. 0: no limit (every render starts at once, Node's own behaviour).
 * `afterAcceptMs` > 0: the limit applies only that long after connectionAccepted() (and while
 * renders still wait); 0: always.
 */
export function createRenderTurns(sliceMs: number, afterAcceptMs = 0): RenderTurns {
  const queue: Waiter[] = [];
  let acceptedAt = Number.NEGATIVE_INFINITY;
  // When this turn's first render started; -1 once the turn is over.
  let turnStartedAt = -1;
  const endTurn = () => {
    turnStartedAt = -1;
  };
  // setImmediate from the poll phase runs in this turn's check phase; from the check phase, in
  // the next turn's, after its poll phase: either way, right after the renders it follows.
  const openTurn = (now: number) => {
    turnStartedAt = now;
    setImmediate(endTurn);
  };
  // One slot per waiter: a slot starts the oldest waiter if the turn has room, or tries again
  // next turn. One waiter per callback, so its render (run in the microtasks after the
  // callback) counts against the turn before the next slot looks.
  const slot = () => {
    const now = performance.now();
    if (turnStartedAt < 0) openTurn(now);
    else if (now - turnStartedAt >= sliceMs) {
      setImmediate(slot);
      return;
    }
    queue.shift()?.resolve();
  };

  return {
    admit() {
      if (sliceMs === 0) return undefined;
      const now = performance.now();
      if (queue.length === 0) {
        if (afterAcceptMs > 0 && now - acceptedAt > afterAcceptMs) return undefined;
        if (turnStartedAt < 0) {
          openTurn(now);
          return undefined;
        }
        if (now - turnStartedAt < sliceMs) return undefined;
      }
      return new Promise<void>((resolve) => {
        queue.push({ resolve, since: now });
        setImmediate(slot);
      });
    },
    waiting: () => queue.length,
    connectionAccepted() {
      acceptedAt = performance.now();
    },
    oldestWaitMs: () => (queue.length ? performance.now() - queue[0]!.since : 0),
  };
}
