// Faults in the site's code, against the origin as its own process: a page that throws, an MDX
// component that throws, a page whose promise rejects late, an endpoint that throws after a
// delay, promises that reject with nobody listening. Each gets a 500 for that request only (or
// nothing, for stray rejections), one JSON log line with the request id, and the process lives.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LOG_FLUSH_INTERVAL_MS } from '../../src/request-log.ts';
import { type OriginProcess, ROOT, spawnOrigin } from '../helpers/origin.ts';
import { assertServing } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

const STRAY = path.join(ROOT, 'test/hardening/fixtures/stray-rejection.ts');

type LogLine = Record<string, unknown> & {
  level: number;
  msg: string;
  reqId?: string;
  err?: { message: string; stack: string };
};
const logLines = (output: string): LogLine[] =>
  output
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`a log line that is not JSON: ${l}`);
      }
    });
const settle = () => new Promise((r) => setTimeout(r, 300));

describe('pages and endpoints that fail', () => {
  let origin: OriginProcess;
  before(async () => {
    origin = await spawnOrigin({ LOG_LEVEL: 'info' }, { nodeArgs: ['--import', STRAY] });
  });
  after(async () => {
    assert.equal(await origin.stop(), 0);
  });
  const alive = () => origin.child.exitCode === null;

  const FAULTS = [
    ['/errors/throw', 'boom: deliberate failure for tests'],
    ['/errors/throw-mdx', 'boom: deliberate failure in an MDX page'],
    ['/errors/late-reject', 'boom: deliberate late rejection for tests'],
    ['/api/late-throw', 'boom: deliberate late failure in an endpoint'],
  ] as const;

  for (const [url, message] of FAULTS) {
    test(`${url}: 500 page, one error line with the request id, process alive`, async () => {
      const reqId = `fault${url.replaceAll('/', '-')}`;
      const res = await fetch(origin.url + url, { headers: { 'x-request-id': reqId } });
      assert.equal(res.status, 500);
      const body = await res.text();
      assert.match(body, /Something broke — Origin Docs/, 'the site’s own 500 page');
      assert.ok(!body.includes(message), 'the error message does not reach the user');
      await assertServing(origin.url, { alive });
      // The error line is written at once; the request line waits for its batch (src/request-log.ts).
      const completed = (l: LogLine) => l.reqId === reqId && l.msg === 'request completed';
      await waitFor('the request line', LOG_FLUSH_INTERVAL_MS * 3, () => logLines(origin.output()).some(completed));
      const lines = logLines(origin.output()).filter((l) => l.reqId === reqId);
      const errors = lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1, `exactly one error line: ${JSON.stringify(lines)}`);
      assert.equal(errors[0]!.err?.message, message);
      assert.match(errors[0]!.err?.stack ?? '', /\n\s+at /, 'with the stack');
      assert.match(errors[0]!.msg, /render failed/);
      assert.equal(lines.find(completed)?.statusCode, 500);
    });
  }

  test('a failure affects only its own request: 40 concurrent requests, half failing', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const url = i % 2 ? FAULTS[i % FAULTS.length]![0] : `/probe-astro?token=ok${i}`;
        const res = await fetch(origin.url + url);
        const text = await res.text();
        return { i, status: res.status, ok: text.includes(`ok${i}`) };
      }),
    );
    for (const r of results) {
      if (r.i % 2) assert.equal(r.status, 500);
      else assert.ok(r.status === 200 && r.ok, `request ${r.i} was served whole`);
    }
    await assertServing(origin.url, { alive });
  });

  test('stray rejections (nobody awaits the promise) are logged; the request and the process carry on', async () => {
    const res = await fetch(`${origin.url}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'stray-1' },
      body: JSON.stringify({ strayRejection: true }),
    });
    assert.equal(res.status, 201, 'the page itself is fine');
    await new Promise((r) => setTimeout(r, 100)); // the late one rejects 30 ms after
    await assertServing(origin.url, { alive });
    await settle();
    const stray = logLines(origin.output()).filter((l) => /unhandled promise rejection/.test(l.msg));
    assert.deepEqual(stray.map((l) => l.err?.message).sort(), [
      'late stray rejection from a component (test fixture)',
      'stray rejection from a component (test fixture)',
    ]);
    for (const line of stray) {
      assert.equal(line.level, 50);
      assert.match(
        line.err?.stack ?? '',
        /stray-rejection\.ts/,
        'the stack points at the code that dropped the promise',
      );
      // Node 22 without AsyncContextFrame: no request id on these (see src/plugins/faults.ts).
      assert.equal(line.reqId, undefined);
    }
  });

  test('every line on stdout/stderr is JSON (Astro’s own logger goes through pino too)', () => {
    assert.ok(logLines(origin.output()).length > 10);
  });
});

test('with AsyncContextFrame (Node 24, or --experimental-async-context-frame) stray rejections carry the request id', async () => {
  const origin = await spawnOrigin(
    { LOG_LEVEL: 'info' },
    { nodeArgs: ['--experimental-async-context-frame', '--import', STRAY] },
  );
  try {
    const res = await fetch(`${origin.url}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'stray-acf' },
      body: JSON.stringify({ strayRejection: true }),
    });
    assert.equal(res.status, 201);
    await new Promise((r) => setTimeout(r, 100));
    await assertServing(origin.url, { alive: () => origin.child.exitCode === null });
    await settle();
    const stray = logLines(origin.output()).filter((l) => /unhandled promise rejection/.test(l.msg));
    assert.equal(stray.length, 2);
    for (const line of stray) assert.equal(line.reqId, 'stray-acf', 'the request that started the promise');
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});
