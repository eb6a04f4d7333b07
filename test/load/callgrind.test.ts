// `npm run bench:instructions` counts a server's instructions per request with valgrind's
// callgrind (load/lib/callgrind.ts). Against a real server under callgrind whose requests cost
// a known amount of work: each window counts its own requests (not an earlier window's), the
// main thread is told apart from V8's other threads, and work for the garbage collector is told
// apart from JavaScript's own (by kind of code).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  CallgrindCounter,
  jsFunctionAt,
  KINDS,
  type KindCounts,
  kindOf,
  PERF_MAP_NODE_ARGS,
  valgrindVersion,
} from '../../load/lib/callgrind.ts';
import { runLoad } from '../../load/lib/cannon.ts';
import { freePort, spawnServer } from '../../load/lib/spawn-origin.ts';

test('instructions per request follow the work a request does', async () => {
  assert.ok(valgrindVersion(), 'valgrind is not installed: scripts/install-test-deps.sh (npm test) installs it');
  const dir = mkdtempSync(path.join(tmpdir(), 'callgrind-test-'));
  const counter = new CallgrindCounter(dir, 'work', { kinds: true, functions: true });
  const port = await freePort();
  const server = await spawnServer({
    name: 'callgrind-work',
    script: 'test/load/work-server.ts',
    env: { PORT: String(port), HOST: '127.0.0.1' },
    port,
    readyPath: '/?n=0',
    wrapper: counter.wrapper,
    nodeArgs: PERF_MAP_NODE_ARGS,
    timeoutMs: 120_000,
  });
  try {
    counter.attach(server.child.pid!);
    const load = (query: string, amount: number) =>
      runLoad({ url: server.url, connections: 4, amount, requests: [{ method: 'GET', path: `/?${query}` }] });
    // Warm: the loops compiled before anything is counted.
    await load('n=1000', 300);
    await load('n=100000', 300);
    await load('alloc=20000', 300);
    const perRequest = (counts: KindCounts) => Object.fromEntries(KINDS.map((k) => [k, counts[k] / 200])) as KindCounts;
    const window = async (query: string) => {
      await counter.zero();
      const result = await load(query, 200);
      assert.equal(result.ok, 200);
      const counted = await counter.dump();
      assert.ok(counted.kinds, 'counted by kind');
      // Every instruction has one kind.
      assert.equal(
        KINDS.reduce((a, k) => a + counted.kinds!.main[k], 0),
        counted.main,
      );
      assert.equal(
        KINDS.reduce((a, k) => a + counted.kinds!.all[k], 0),
        counted.total,
      );
      // The request handler's own instructions, named from V8's perf map.
      let handler = 0;
      for (const [name, count] of counted.functions ?? [])
        if (name.includes('test/load/work-server.ts')) handler += count;
      return {
        total: counted.total / 200,
        main: counted.main / 200,
        handler: handler / 200,
        kinds: perRequest(counted.kinds.main),
      };
    };
    const light = await window('n=1000');
    const heavy = await window('n=100000');
    const lightAgain = await window('n=1000');
    const allocating = await window('alloc=20000');
    // 99 000 more loop steps a request: at least two instructions a step.
    assert.ok(heavy.main - light.main > 2 * 99_000, `heavy ${heavy.main} vs light ${light.main} per request`);
    // The third window counts its own requests only, not the heavy ones before its zero.
    assert.ok(lightAgain.main < light.main * 1.5, `light again ${lightAgain.main} vs light ${light.main}`);
    assert.ok(
      lightAgain.total < heavy.total / 2,
      `light again ${lightAgain.total} vs heavy ${heavy.total}, all threads`,
    );
    for (const w of [light, heavy, lightAgain, allocating]) {
      assert.ok(w.main > 0 && w.main <= w.total, `main ${w.main} within total ${w.total}`);
    }
    // The loop's work is found in the handler's own JavaScript, by name.
    assert.ok(
      heavy.handler - light.handler > 2 * 99_000,
      `the handler's own: heavy ${heavy.handler} vs light ${light.handler}`,
    );
    // The loop is JavaScript's work, not the collector's...
    const js = (w: typeof light) => w.kinds['JIT code'] + w.kinds.builtins;
    assert.ok(js(heavy) - js(light) > 2 * 99_000, `JavaScript: heavy ${js(heavy)} vs light ${js(light)}`);
    assert.ok(heavy.kinds.GC - light.kinds.GC < 20_000, `GC: heavy ${heavy.kinds.GC} vs light ${light.kinds.GC}`);
    // ...and 20 000 objects a request are the collector's (allocation slow paths, scavenges,
    // barriers), on the main thread: V8's other threads may be finishing a collection that
    // started in any window.
    assert.ok(
      allocating.kinds.GC - light.kinds.GC > 50_000,
      `GC: allocating ${allocating.kinds.GC} vs light ${light.kinds.GC} a request`,
    );
  } finally {
    await server.stop(10_000);
    counter.removePerfMap();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kinds of code are told apart by function name', () => {
  const node = '/usr/local/bin/node';
  assert.equal(kindOf('0x0000000010003051', '???'), 'JIT code');
  assert.equal(kindOf('Builtins_StringAdd_CheckNone', node), 'builtins');
  assert.equal(kindOf('Builtins_RecordWriteSaveFP', node), 'GC');
  assert.equal(
    kindOf(
      'heap::base::SlotCallbackResult v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>(v8::internal::FullHeapObjectSlot, v8::internal::Tagged<v8::internal::HeapObject>)',
      node,
    ),
    'GC',
  );
  assert.equal(kindOf('v8::internal::MarkCompactCollector::CollectGarbage()', node), 'GC');
  assert.equal(
    kindOf('v8::internal::compiler::Pipeline::GenerateCode(v8::internal::compiler::Linkage*)', node),
    'compiler',
  );
  assert.equal(kindOf('v8::internal::Parser::ParseProgram(v8::internal::Isolate*)', node), 'compiler');
  assert.equal(
    kindOf('v8::internal::Runtime_SetProperty(int, unsigned long*, v8::internal::Isolate*)', node),
    'V8 runtime',
  );
  assert.equal(kindOf('llhttp_execute', node), 'Node C++');
  assert.equal(kindOf('node::StreamBase::WriteBuffer(v8::FunctionCallbackInfo<v8::Value> const&)', node), 'Node C++');
  assert.equal(kindOf('_int_malloc', '/usr/lib/x86_64-linux-gnu/libc.so.6'), 'libraries');
});

test("JIT code is named from V8's perf map", () => {
  const map = [
    [0x1000, 0x100, 'JS:*render /srv/app/node_modules/astro/dist/render.js:10:3'],
    [0x1100, 0x80, 'JS:~handler file:///srv/app/src/server.ts:5:1'],
  ] as const;
  assert.equal(jsFunctionAt(map, 0x1010), 'JS render astro/dist/render.js:10:3');
  assert.equal(jsFunctionAt(map, 0x1100), 'JS handler file:///srv/app/src/server.ts:5:1');
  assert.equal(jsFunctionAt(map, 0x1180), undefined);
  assert.equal(jsFunctionAt(map, 0x0fff), undefined);
});
