import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { BatchedStdout, LOG_BUFFER_BYTES, LOG_FLUSH_INTERVAL_MS } from '../src/request-log.ts';
import { logLines, spawnOrigin } from './helpers/origin.ts';
import { sleep, waitFor } from './helpers/wait.ts';

test('one JSON log line per request, with request id, route pattern and duration', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info' });
  try {
    await fetch(`${origin.url}/probe?token=logged`, { headers: { 'x-request-id': 'log-test-1' } });
    await fetch(`${origin.url}/nope/at/all`);
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    assert.equal(await origin.stop(), 0);
  }
  const lines = logLines(origin.output());
  const mine = lines.filter((l) => l.reqId === 'log-test-1');
  assert.equal(mine.length, 1, `lines for the request: ${JSON.stringify(mine)}`);
  const [line] = mine;
  assert.equal(line!.route, '/probe');
  assert.equal(line!.statusCode, 200);
  assert.equal(line!.method, 'GET');
  assert.equal(typeof line!.durationMs, 'number');
  assert.ok(lines.some((l) => l.route === '(unmatched)' && l.statusCode === 404));
  assert.ok(!lines.some((l) => l.msg === 'incoming request'), 'no second line per request');
});

test('request lines are written in batches, yet reach stdout promptly when traffic is light', async () => {
  const origin = await spawnOrigin({ LOG_LEVEL: 'info' });
  try {
    await fetch(`${origin.url}/probe?token=prompt`, { headers: { 'x-request-id': 'log-prompt-1' } });
    // One short line is far below the batch size: only the periodic flush can write it.
    await waitFor('the request line on stdout', LOG_FLUSH_INTERVAL_MS * 3, () =>
      logLines(origin.output()).some((l) => l.reqId === 'log-prompt-1'),
    );
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});

test('the batched destination writes a lone line within the flush interval, and arms no timer while idle', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'origin-log-'));
  const file = path.join(dir, 'out.log');
  const out = new BatchedStdout(file);
  try {
    assert.equal(out.flushPending, false, 'a new destination has nothing to flush');
    out.write('{"msg":"one"}\n');
    assert.equal(out.flushPending, true, 'a line far below the batch size waits for the timer');
    await waitFor(
      'the line in the file',
      LOG_FLUSH_INTERVAL_MS * 3,
      () => readFileSync(file, 'utf8').includes('"one"'),
      20,
    );
    // Idle from here on: nothing armed, so nothing wakes the process to write nothing.
    assert.equal(out.flushPending, false);
    await sleep(LOG_FLUSH_INTERVAL_MS * 3);
    assert.equal(out.flushPending, false);
  } finally {
    out.flushSync();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('warnings and errors are written at once, with the lines that waited, even while a write is in flight', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'origin-log-'));
  const file = path.join(dir, 'out.log');
  const out = new BatchedStdout(file);
  const logger = pino({ base: undefined }, out);
  const written = () => readFileSync(file, 'utf8');
  try {
    logger.info('waits');
    await sleep(50);
    assert.doesNotMatch(written(), /waits/, 'an info line waits for its batch');
    logger.warn('at once');
    await waitFor('the warning, and the line that waited', 500, () => /at once/.test(written()), 10);
    assert.match(written(), /waits/);
    // A batch's worth starts a write; the error right after it meets that write in flight.
    logger.info('x'.repeat(LOG_BUFFER_BYTES));
    logger.error('after a big batch');
    await waitFor('the error', 500, () => /after a big batch/.test(written()), 10);
  } finally {
    out.flushSync();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lines still waiting for their batch are written when the process exits without a flush', () => {
  // An exit nobody drained first (process.exit() after an error, say): pino's exit handler
  // writes what sonic-boom holds, so the lines must wait there, not anywhere else.
  const script = `
    import pino from 'pino';
    import { BatchedStdout } from ${JSON.stringify(new URL('../src/request-log.ts', import.meta.url).href)};
    const logger = pino({ base: undefined }, new BatchedStdout(1));
    for (let i = 0; i < 3; i++) logger.info({ n: i }, 'waiting for its batch');
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url), // where pino resolves from
    encoding: 'utf8',
  });
  assert.deepEqual(
    out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).n),
    [0, 1, 2],
  );
});
