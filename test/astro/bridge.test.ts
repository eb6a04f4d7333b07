// The bridge's streamed bodies (src/astro/bridge.ts sendStreamed), through the real origin and
// the demo's /api/stream endpoint: what is sent when, failures before and after the response
// starts, cancellation when the client goes away.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningOrigin } from '../../src/standalone.ts';
import { startOrigin } from '../../src/standalone.ts';
import { testConfig } from '../helpers/origin.ts';
import { waitFor } from '../helpers/wait.ts';

type LogLine = { level: number; msg: string; reqId?: string; err?: { message: string } };
const lines: LogLine[] = [];
let origin: RunningOrigin;
before(async () => {
  origin = await startOrigin(testConfig(), {
    logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } },
  });
});
after(() => origin.close());

const hooks = () =>
  (
    globalThis as {
      __streamTestHooks?: { gates: Map<string, () => void>; liveStreams: Set<string>; startedStreams: Set<string> };
    }
  ).__streamTestHooks!;
const stream = (query: string, init?: RequestInit) => fetch(`${origin.url}/api/stream?${query}`, init);
const errorsOf = (reqId: string) => lines.filter((l) => l.reqId === reqId && l.level >= 50);

test('string chunks from an endpoint are sent as bytes', async () => {
  const res = await stream('mode=strings');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'one two three');
});

test('a body that fails before anything was sent: the site’s 500 page, none of the failed response’s headers, one error line', async () => {
  const res = await stream('mode=fail-at-once', { headers: { 'x-request-id': 'bridge-fail-at-once' } });
  assert.equal(res.status, 500);
  assert.match(await res.text(), /Something broke — Origin Docs/);
  assert.equal(res.headers.get('x-stream-endpoint'), null);
  assert.doesNotMatch(res.headers.get('set-cookie') ?? '', /stream-endpoint/);
  const errors = errorsOf('bridge-fail-at-once');
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0]!.msg, /render failed/);
  assert.equal(errors[0]!.err?.message, 'boom: deliberate body failure before the response started');
});

async function countOf(status: string): Promise<number> {
  const metrics = await (await fetch(origin.metricsUrl!)).text();
  const line = new RegExp(
    `^http_request_duration_seconds_count\\{method="GET",route="/api/stream",status_code="${status}"\\} (\\d+)$`,
    'm',
  ).exec(metrics);
  return Number(line?.[1] ?? 0);
}

test('a body that fails while streaming: the response is cut, logged once, counted as a 500 (not a client abort)', async () => {
  const [errorsBefore, abortsBefore] = [await countOf('500'), await countOf('499')];
  const res = await stream('mode=fail-later&id=f1', { headers: { 'x-request-id': 'bridge-fail-later' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-stream-endpoint'), 'yes');
  hooks().gates.get('f1')!(); // the body fails now, after the response started
  await assert.rejects(res.text(), 'the client must see an incomplete body, not a complete one');
  await waitFor('the error line', 3000, () => errorsOf('bridge-fail-later').length > 0, 10);
  const errors = errorsOf('bridge-fail-later');
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0]!.msg, /render failed after the response started/);
  assert.equal(await countOf('500'), errorsBefore + 1);
  assert.equal(await countOf('499'), abortsBefore);
});

test('the first bytes go out when the render waits, without waiting for the next chunk', async () => {
  const res = await stream('mode=gated&id=g1', { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await Promise.race([reader.read(), sleep(5000, 'timeout' as const)]);
  assert.notEqual(first, 'timeout', 'the first chunk must arrive while the render is still waiting');
  assert.ok(hooks().gates.has('g1'), 'the render is still waiting for its gate');
  assert.equal(new TextDecoder().decode((first as ReadableStreamReadResult<Uint8Array>).value), 'first chunk;');
  hooks().gates.get('g1')!();
  let rest = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
  assert.equal(rest, 'second');
});

test('a client that goes away cancels the render at once, not at its next chunk', async () => {
  // The render sends a chunk, then the next one in 10 s: the client reads the first and hangs up.
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(`${origin.url}/api/stream?mode=endless&id=e1&every=10000`, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.once('error', reject);
    req.end();
  });
  await waitFor('the stream to be cancelled', 2000, () => !hooks().liveStreams.has('e1'), 10);

  // A client that hangs up right after sending its request.
  const req = httpRequest(`${origin.url}/api/stream?mode=endless&id=e2&every=10000`);
  req.on('error', () => {});
  req.end(() => setImmediate(() => req.destroy()));
  await waitFor('the request e2 to reach the endpoint', 2000, () => hooks().startedStreams.has('e2'), 5);
  await waitFor('the stream e2 to be cancelled', 2000, () => !hooks().liveStreams.has('e2'), 10);
  assert.equal((await fetch(`${origin.url}/docs/`)).status, 200);
});
