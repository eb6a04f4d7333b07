// SIGTERM under autocannon load, measured from both sides: what autocannon saw, and what the
// origin's processes accepted and answered (test/hardening/fixtures/count-requests.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import autocannon from 'autocannon';
import { type OriginProcess, ROOT } from './origin.ts';

/** node --import this: each origin process prints its request accounting on exit. */
export const COUNT_REQUESTS = path.join(ROOT, 'test/hardening/fixtures/count-requests.ts');

export interface Accounting {
  accepted: number;
  answered: number;
  cut: number;
  byStatus: Record<string, number>;
}

/** The server-side counts every process printed on exit (one line per process), summed. */
export function accounting(output: string): Accounting {
  const total: Accounting = { accepted: 0, answered: 0, cut: 0, byStatus: {} };
  for (const line of output.split('\n')) {
    if (!line.startsWith('{"requestAccounting"')) continue;
    const c = (JSON.parse(line) as { requestAccounting: Accounting }).requestAccounting;
    total.accepted += c.accepted;
    total.answered += c.answered;
    total.cut += c.cut;
    for (const [status, n] of Object.entries(c.byStatus)) total.byStatus[status] = (total.byStatus[status] ?? 0) + n;
  }
  return total;
}

/** Responses the load must have had before the signal, for the run to prove anything. */
const MIN_RESPONSES = 500;

export interface ShutdownRun {
  exitCode: number | null;
  /** Requests autocannon wrote. */
  sent: number;
  /** Complete responses autocannon read, by status. */
  responses: Map<number, number>;
  /** Connection-level errors autocannon saw, by code. */
  errors: Map<string, number>;
  timeouts: number;
  server: Accounting;
  /** ms from SIGTERM to exit. */
  exitMs: number;
}

/**
 * Runs autocannon against `origin` for `seconds`, sends SIGTERM after `signalAfterMs`, stops
 * the load once the process has exited, and gathers both sides' counts.
 */
export async function loadThenSigterm(
  origin: OriginProcess,
  { signalAfterMs = 2000, connections = 40 } = {},
): Promise<ShutdownRun> {
  const responses = new Map<number, number>();
  const errors = new Map<string, number>();
  const load = autocannon({
    url: origin.url,
    connections,
    duration: 30,
    requests: [
      { method: 'GET', path: '/docs/' },
      { method: 'GET', path: '/probe-astro?token=drain' },
      { method: 'GET', path: '/about/' },
      { method: 'POST', path: '/api/echo', headers: { 'content-type': 'application/json' }, body: '{"drain":true}' },
    ],
  });
  load.on('response', (_client: unknown, status: number) => responses.set(status, (responses.get(status) ?? 0) + 1));
  load.on('reqError', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? err.message;
    errors.set(code, (errors.get(code) ?? 0) + 1);
  });
  // At least signalAfterMs, and until the load has really run (a busy machine answers slowly).
  const started = performance.now();
  const answered = () => (responses.get(200) ?? 0) + (responses.get(201) ?? 0);
  while (
    performance.now() - started < signalAfterMs ||
    (answered() < MIN_RESPONSES && performance.now() - started < 20_000)
  )
    await new Promise((r) => setTimeout(r, 50));
  const signalled = performance.now();
  const exited = once(origin.child, 'exit');
  origin.child.kill('SIGTERM');
  const [exitCode] = (await exited) as [number | null];
  const exitMs = performance.now() - signalled;
  // Let autocannon read what is still in its sockets' buffers before it destroys them.
  await new Promise((r) => setTimeout(r, 500));
  load.stop();
  const result = await load;
  await new Promise((r) => setTimeout(r, 100));
  // autocannon's aggregated result carries the number of requests written as requests.sent.
  const sent = (result.requests as unknown as { sent: number }).sent;
  return { exitCode, sent, responses, errors, timeouts: result.timeouts, server: accounting(origin.output()), exitMs };
}

/** The assertions shared with the cluster test. */
export function assertNoAcceptedRequestFailed(run: ShutdownRun): void {
  const ok = run.responses.get(200) ?? 0;
  const created = run.responses.get(201) ?? 0;
  const summary = JSON.stringify({ ...run, responses: [...run.responses], errors: [...run.errors] });
  assert.equal(run.exitCode, 0, `exit code 0: ${summary}`);
  assert.ok(ok + created >= MIN_RESPONSES, `the load ran: ${summary}`);
  assert.deepEqual(
    [...run.responses.keys()].filter((s) => s !== 200 && s !== 201),
    [],
    `only 200/201 responses: ${summary}`,
  );
  assert.equal(run.timeouts, 0, `no timeouts: ${summary}`);
  // Server side: every request the origin accepted was answered in full, none cut.
  assert.ok(run.server.accepted > 0, `accounting printed: ${summary}`);
  assert.equal(run.server.cut, 0, `no accepted request had its connection cut: ${summary}`);
  assert.equal(run.server.answered, run.server.accepted, `every accepted request was answered: ${summary}`);
  // Client side: every answer the server completed reached the client, and was a success.
  assert.equal(ok + created, run.server.answered, `every answered request reached autocannon: ${summary}`);
  // What autocannon counts as errors are connection attempts after the listener closed.
  for (const code of run.errors.keys())
    assert.ok(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(code), `error ${code}: ${summary}`);
}

/** One line with the numbers, for the test output. */
export function summarize(label: string, run: ShutdownRun): string {
  return (
    `${label}: autocannon wrote ${run.sent} requests (most to connections refused after the listener closed); ` +
    `the origin accepted ${run.server.accepted}, answered ${run.server.answered} ${JSON.stringify(run.server.byStatus)}, cut ${run.server.cut}; ` +
    `autocannon read ${JSON.stringify(Object.fromEntries(run.responses))}, connection errors ${JSON.stringify(Object.fromEntries(run.errors))}, ` +
    `timeouts ${run.timeouts}; exit ${run.exitCode} ${Math.round(run.exitMs)} ms after SIGTERM`
  );
}
