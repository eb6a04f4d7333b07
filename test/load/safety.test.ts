// The short concurrency-safety run inside `npm test`: every pool policy against the real
// origin (real build, real sockets), 200 connections, a fixed number of requests each; fails
// on any violation, error, timeout or non-2xx. The first test proves the check can fail: a
// deliberately leaky server must be caught. (npm run load runs the long version.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { before, describe, test } from 'node:test';
import { ensureBuild } from '../../load/lib/build.ts';
import { PROBE_PATHS, PROBE_TOKEN_COUNT } from '../../load/lib/probe.ts';
import { runProbe, runSafety, SHARED_BIG_POOL } from '../../load/lib/safety-run.ts';
import { POOL_POLICIES } from '../../src/config.ts';
import { run, startTestOrigin } from '../helpers/origin.ts';

const CONNECTIONS = 200;
const REQUESTS_PER_POLICY = 2400; // a multiple of the probe pages' count

/** A server with the classic bug: per-request state in a module-level variable. */
async function leakyServer() {
  let current = '';
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    current = url.searchParams.get('token') ?? String(req.headers['x-probe-token'] ?? 'none');
    const spans: string[] = [];
    for (let i = 0; i < PROBE_TOKEN_COUNT; i++) {
      await new Promise((r) => setTimeout(r, Math.random() * 2));
      spans.push(`<span class="probe-token" data-i="${i}">${current}</span>`);
    }
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><main>${spans.join('\n')}</main>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

describe('concurrency safety (short run)', { timeout: 300_000 }, () => {
  before(async () => {
    await ensureBuild('demo');
  });

  test('the probe catches a server that mixes up requests', async () => {
    const leaky = await leakyServer();
    try {
      const result = await runProbe({ url: leaky.url, connections: 50, amount: 500 });
      assert.equal(result.counts.verified, 500);
      assert.ok(result.counts.violating > 0, 'a leaky server must produce violations');
      assert.ok((result.counts.byKind['foreign-token'] ?? 0) > 0, JSON.stringify(result.counts.byKind));
      assert.ok(result.problems.some((p) => p.includes('violated the probe')));
    } finally {
      await leaky.close();
    }
  });

  const runs = [
    ...POOL_POLICIES.map((policy) => ({ policy, env: {} as Record<string, string> })),
    // A shared pool big enough that most of /probe-large's 2 700 nodes per render are reused.
    { policy: 'shared' as const, env: { POOL_SIZE: String(SHARED_BIG_POOL) } },
  ];
  for (const { policy, env } of runs) {
    const name = env.POOL_SIZE ? `${policy}, POOL_SIZE=${env.POOL_SIZE}` : policy;
    test(`POOL_POLICY=${name}: ${REQUESTS_PER_POLICY} requests over ${CONNECTIONS} connections, each sees only its own token`, async () => {
      const result = await runSafety({ policy, connections: CONNECTIONS, amount: REQUESTS_PER_POLICY, env });
      assert.deepEqual(result.problems, []);
      assert.equal(result.counts.verified, REQUESTS_PER_POLICY);
      assert.equal(result.counts.violating, 0);
      // Every probe page was exercised: queue renderer (small and large) and recursive renderer.
      for (const path of PROBE_PATHS)
        assert.equal(result.counts.byPath[path], REQUESTS_PER_POLICY / PROBE_PATHS.length);
      if (env.POOL_SIZE) assert.ok(result.hitRatio! > 0.5, `most nodes must be reused, hit ratio ${result.hitRatio}`);
    });
  }
});

describe('npm run load -- --target (an origin already running, as in the compose stack)', () => {
  test('probes it and passes; against a server that mixes up requests it fails with exit 1', async () => {
    const origin = await startTestOrigin({ MAX_EVENT_LOOP_DELAY_MS: '0' });
    const leaky = await leakyServer();
    try {
      const good = await run(process.execPath, [
        'load/safety.ts',
        '--target',
        origin.url,
        '--amount',
        '400',
        '--connections',
        '20',
      ]);
      assert.equal(good.code, 0, good.output);
      assert.match(good.output, /PASS — 400 responses checked/);
      const bad = await run(process.execPath, [
        'load/safety.ts',
        '--target',
        leaky.url,
        '--amount',
        '300',
        '--connections',
        '30',
      ]);
      assert.equal(bad.code, 1, bad.output);
      assert.match(bad.output, /FAIL/);
    } finally {
      await leaky.close();
      await origin.close();
    }
  });

  test('a --target that is not an http URL: exit 2 with the reason', async () => {
    const { code, output } = await run(process.execPath, ['load/safety.ts', '--target', 'origin:4321']);
    assert.equal(code, 2);
    assert.match(output, /--target must be an http:\/\/ or https:\/\/ URL/);
  });
});
