// `npm run bench:instructions` counts a server's instructions per request with valgrind's
// callgrind (load/lib/callgrind.ts). Against a real server under callgrind whose requests cost
// a known amount of work: each window counts its own requests (not an earlier window's), and
// the main thread is told apart from V8's other threads.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CallgrindCounter, valgrindVersion } from '../../load/lib/callgrind.ts';
import { runLoad } from '../../load/lib/cannon.ts';
import { freePort, spawnServer } from '../../load/lib/spawn-origin.ts';

test('instructions per request follow the work a request does', async () => {
  assert.ok(valgrindVersion(), 'valgrind is not installed: scripts/install-test-deps.sh (npm test) installs it');
  const dir = mkdtempSync(path.join(tmpdir(), 'callgrind-test-'));
  const counter = new CallgrindCounter(dir, 'work');
  const port = await freePort();
  const server = await spawnServer({
    name: 'callgrind-work',
    script: 'test/load/work-server.ts',
    env: { PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath: '/?n=0',
    wrapper: counter.wrapper,
    timeoutMs: 120_000,
  });
  try {
    counter.attach(server.child.pid!);
    const load = (n: number, amount: number) =>
      runLoad({ url: server.url, connections: 4, amount, requests: [{ method: 'GET', path: `/?n=${n}` }] });
    // Warm: the loop compiled before anything is counted.
    await load(1_000, 300);
    await load(100_000, 300);
    const window = async (n: number) => {
      await counter.zero();
      const result = await load(n, 200);
      assert.equal(result.ok, 200);
      const counted = await counter.dump();
      return { total: counted.total / 200, main: counted.main / 200 };
    };
    const light = await window(1_000);
    const heavy = await window(100_000);
    const lightAgain = await window(1_000);
    // 99 000 more loop steps a request: at least two instructions a step.
    assert.ok(heavy.main - light.main > 2 * 99_000, `heavy ${heavy.main} vs light ${light.main} per request`);
    // The third window counts its own requests only, not the heavy ones before its zero.
    assert.ok(lightAgain.main < light.main * 1.5, `light again ${lightAgain.main} vs light ${light.main}`);
    assert.ok(
      lightAgain.total < heavy.total / 2,
      `light again ${lightAgain.total} vs heavy ${heavy.total}, all threads`,
    );
    for (const w of [light, heavy, lightAgain]) {
      assert.ok(w.main > 0 && w.main <= w.total, `main ${w.main} within total ${w.total}`);
    }
  } finally {
    await server.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
  }
});
