// The Deployment gives the origin a read-only root filesystem (only /tmp and the session
// directory are writable emptyDirs). No cluster here, so the same condition is made for a real
// process: the repository — the app directory, its build and node_modules — bind-mounted
// read-only in a mount namespace of the origin's own (unshare), then pages, metrics and a
// graceful shutdown. A write under the app directory would fail with EROFS.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { freePort, statusOf } from '../../load/lib/spawn-origin.ts';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { DEMO_BUILD, launch, ROOT } from '../helpers/origin.ts';

// A private mount namespace needs root (CI and these machines run tests as root).
const unshareWorks = spawnSync('unshare', ['--mount', '--propagation', 'private', 'true']).status === 0;

test('the origin serves and drains with its app directory read-only', {
  skip: unshareWorks ? false : 'needs `unshare --mount` (root and util-linux) for a read-only bind mount',
}, async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  // $0: the repository, $1: node. `cd` again after mounting: a working directory entered
  // before still points into the writable mount underneath. Exits 97 unless the directory
  // the origin works in is really read-only.
  const script = [
    'mount --bind "$0" "$0"',
    'mount -o remount,bind,ro "$0" "$0"',
    'cd "$0"',
    'if touch .read-only-probe 2>/dev/null; then exit 97; fi',
    `exec "$1" ${NODE_FLAGS.join(' ')} src/server.ts`,
  ].join(' && ');
  const { child, output, exited } = launch(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, ROOT, process.execPath],
    {
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      BUILD_DIR: DEMO_BUILD,
      LOG_LEVEL: 'warn',
    },
  );
  try {
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while ((await statusOf(`${url}/readyz`)) !== 200) {
      assert.equal(child.exitCode, null, `the origin exited (${child.exitCode}) before it was ready:\n${output()}`);
      assert.ok(Date.now() < deadline, `not ready within 30 s:\n${output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const [path, status] of [
      ['/', 200],
      ['/docs/', 200],
      ['/docs/load-testing/autocannon', 200],
      ['/no-such-page', 404],
      ['/healthz', 200],
    ] as const) {
      const response = await fetch(url + path);
      await response.arrayBuffer();
      assert.equal(response.status, status, path);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^http_request_duration_seconds_count\{/m);
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, `exit code after SIGTERM:\n${output()}`);
  }
  assert.doesNotMatch(output(), /EROFS|read-only file system/i);
});
