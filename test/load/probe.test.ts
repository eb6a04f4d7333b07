// The probe's response check, on hand-made bodies: each kind of violation is seen.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProbeLedger, verifyProbeResponse } from '../../load/lib/probe.ts';

const ledger = new ProbeLedger();
const pattern = ledger.pattern;
const mine = `pt${ledger.run}n7r0a0b0c`;
const other = `pt${ledger.run}n8r1d2e3f`;
const page = (tokens: string[], head = '') =>
  `<!doctype html><head>${head}</head><main>${tokens.map((t, i) => `<span class="probe-token" data-i="${i}">${t}</span>`).join('')}</main>`;
const kinds = (body: string, status = 200) => verifyProbeResponse(status, body, mine, pattern, 4).map((v) => v.kind);

test('a correct response has no violation', () => {
  assert.deepEqual(kinds(page([mine, mine, mine, mine])), []);
});

test('another request’s token in a span', () => {
  assert.deepEqual(kinds(page([mine, other, mine, mine])), ['wrong-token', 'token-count', 'foreign-token']);
});

test('another request’s token outside the spans', () => {
  assert.deepEqual(kinds(page([mine, mine, mine, mine], `<title>${other}</title>`)), ['foreign-token']);
});

test('the own token outside the spans too', () => {
  assert.deepEqual(kinds(page([mine, mine, mine, mine], `<title>${mine}</title>`)), ['token-count']);
});

test('a missing token, a missing span, a repeated index', () => {
  assert.deepEqual(kinds(page([mine, 'none', mine, mine])), ['wrong-token', 'token-count']);
  assert.deepEqual(kinds(page([mine, mine, mine])), ['span-count', 'span-index', 'token-count']);
  const repeated = page([mine, mine, mine, mine]).replace('data-i="3"', 'data-i="2"');
  assert.deepEqual(kinds(repeated), ['span-index']);
});

test('a non-200 status is a violation on its own', () => {
  assert.deepEqual(kinds(page([mine, mine, mine, mine]), 503), ['status']);
});

test('tokens are unique per request and carry the run id', () => {
  const templates = ledger.requests();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const context: Record<string, unknown> = {};
    const request = templates[0]!.setupRequest!({ method: 'GET', headers: {} }, context);
    const probe = context.probe as { token: string; transport: string };
    assert.ok(!seen.has(probe.token));
    seen.add(probe.token);
    assert.match(probe.token, new RegExp(`^pt${ledger.run}n${i}r`));
    if (probe.transport !== 'header') assert.ok(request!.path!.endsWith(`?token=${probe.token}`));
    if (probe.transport !== 'query') assert.equal(request!.headers!['x-probe-token'], probe.token);
  }
});
