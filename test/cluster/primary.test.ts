// The cluster primary's start-up line names the metrics listener it really opened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEMO_BUILD, launch, logLines } from '../helpers/origin.ts';
import { waitFor } from '../helpers/wait.ts';

test('WORKERS=2, METRICS_HOST=::1, METRICS_PORT=0: the primary logs the URL it listens on, and it answers', {
  timeout: 60_000,
}, async () => {
  const { child, output, exited } = launch(process.execPath, ['src/server.ts'], {
    WORKERS: '2',
    PORT: '0',
    METRICS_HOST: '::1',
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    BUILD_DIR: DEMO_BUILD,
  });
  try {
    const started = await waitFor('the primary to start', 20_000, () =>
      logLines(output()).find((l) => l.msg === 'primary started'),
    );
    const url = started.metrics as string;
    assert.match(url, /^http:\/\/\[::1\]:\d+\/metrics$/, output());
    assert.notEqual(new URL(url).port, '0');
    await waitFor(
      'both workers ready',
      20_000,
      () => logLines(output()).filter((l) => l.msg === 'worker ready').length === 2,
    );
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^origin_cluster_workers\{state="ready"\} 2$/m);
  } finally {
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, output());
  }
});
