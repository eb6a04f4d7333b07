// GET /api/stream?mode=…: streamed bodies for the bridge tests (test/astro/bridge.test.ts).
//   strings        a body of string chunks (endpoints may enqueue strings, not only bytes)
//   fail-at-once   a chunk, then an error before the event loop turns: nothing has been sent
//   fail-later&id=… a chunk, then an error when the test opens the gate, once it has the
//                  response's head: the response has started (a fixed delay raced the head on a busy machine)
//   gated&id=…     a chunk, then waits until the test opens the gate, then a second chunk
//   endless&id=…   a chunk now and every `every` ms (default 20) until the stream is cancelled
// The gates and the set of live endless streams are on globalThis, for in-process tests.
// First chunks are ≥ 10 bytes: @fastify/compress holds back 10 bytes to detect a body that is
// already compressed, so a shorter first chunk would wait for the next one.
import type { APIRoute } from 'astro';

interface StreamTestHooks {
  gates: Map<string, () => void>;
  liveStreams: Set<string>;
  /** Every stream that ever started, by id: proves a request reached the endpoint. */
  startedStreams: Set<string>;
}
const shared = globalThis as { __streamTestHooks?: StreamTestHooks };
shared.__streamTestHooks ??= { gates: new Map(), liveStreams: new Set(), startedStreams: new Set() };
const hooks: StreamTestHooks = shared.__streamTestHooks;

const encoder = new TextEncoder();
const headers = {
  'content-type': 'text/plain; charset=utf-8',
  'set-cookie': 'stream-endpoint=1; Path=/',
  'x-stream-endpoint': 'yes',
};

export const GET: APIRoute = async ({ url }) => {
  const id = url.searchParams.get('id') ?? '';
  let mode = url.searchParams.get('mode');
  // late: the Response comes after `delay` ms (a slow render), then streams as endless does.
  if (mode === 'late') {
    await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get('delay') ?? 100)));
    mode = 'endless';
  }
  let timer: NodeJS.Timeout | undefined;
  const body = new ReadableStream<Uint8Array | string>({
    start(controller) {
      switch (mode) {
        case 'strings':
          for (const part of ['one ', 'two ', 'three']) controller.enqueue(part);
          controller.close();
          return;
        case 'fail-at-once':
          controller.enqueue(encoder.encode('partial body;'));
          controller.error(new Error('boom: deliberate body failure before the response started'));
          return;
        case 'fail-later':
          controller.enqueue(encoder.encode('partial body;'));
          hooks.gates.set(id, () => {
            hooks.gates.delete(id);
            controller.error(new Error('boom: deliberate body failure while streaming'));
          });
          return;
        case 'gated':
          controller.enqueue(encoder.encode('first chunk;'));
          hooks.gates.set(id, () => {
            hooks.gates.delete(id);
            controller.enqueue(encoder.encode('second'));
            controller.close();
          });
          return;
        case 'endless':
          hooks.liveStreams.add(id);
          hooks.startedStreams.add(id);
          controller.enqueue(encoder.encode('tick of the clock;'));
          timer = setInterval(
            () => controller.enqueue(encoder.encode('tick of the clock;')),
            Number(url.searchParams.get('every') ?? 20),
          );
          return;
        default:
          controller.enqueue(encoder.encode('usage: ?mode=strings|fail-at-once|fail-later|gated|endless|late'));
          controller.close();
      }
    },
    cancel() {
      clearTimeout(timer);
      clearInterval(timer);
      hooks.liveStreams.delete(id);
    },
  });
  return new Response(body, { headers });
};
