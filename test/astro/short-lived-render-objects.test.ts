// The adapter edits Astro's FetchState in the server build so that a render's objects die in the
// young generation (src/adapter/short-lived-render-objects.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { FETCH_STATE_KEY, transformFetchState } from '../../src/adapter/short-lived-render-objects.ts';
import { DEMO_BUILD } from '../helpers/origin.ts';

const require = createRequire(import.meta.url);
const fetchStatePath = path.join(path.dirname(require.resolve('astro/package.json')), 'dist/core/fetch/fetch-state.js');
const fetchState = readFileSync(fetchStatePath, 'utf8');

test("every edit finds its text in the installed Astro's fetch-state.js", () => {
  const edit = transformFetchState(fetchState);
  assert.ok('code' in edit, `not found: ${'missing' in edit ? edit.missing.join(', ') : ''}`);
  assert.match(edit.code, /const ctx = __afoActionAPIContext\(this\);/);
  assert.match(edit.code, /get: __afoProviderGetter\(key\)/);
  assert.match(edit.code, /const response = __afoResponse\(/);
  assert.doesNotMatch(edit.code, /get: \(\) => state\.resolve\(key\)/);
});

test('a fetch-state.js that differs is left whole, and the edits not found are named', () => {
  const other = fetchState.replace('get: () => state.resolve(key),', 'get: () => this.resolve(key),');
  assert.deepEqual(transformFetchState(other), { missing: ['provider getters'] });
});

test('the demo build has the edits', () => {
  const chunks = path.join(DEMO_BUILD, 'server', 'chunks');
  const edited = readdirSync(chunks).filter((f) =>
    readFileSync(path.join(chunks, f), 'utf8').includes('__afoActionAPIContext(this)'),
  );
  assert.equal(edited.length, 1, 'one chunk holds FetchState, edited');
  assert.match(
    readFileSync(path.join(chunks, edited[0]!), 'utf8'),
    new RegExp(`const __afoKey = "${FETCH_STATE_KEY}"`),
  );
});

/** Bytes scavenges promoted a render, from V8's --trace-gc-nvp lines after the warm-up. */
function promotedPerRender(pathname: string, renders: number): number {
  const run = spawnSync(
    process.execPath,
    [
      '--trace-gc-nvp',
      '--max-semi-space-size=64',
      path.join(import.meta.dirname, '../helpers/promotion-probe.ts'),
      DEMO_BUILD,
      pathname,
      String(renders),
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(run.status, 0, run.stderr);
  const measured = run.stdout.split('probe: measuring')[1]?.split('probe: done')[0] ?? '';
  let promoted = 0;
  for (const match of measured.matchAll(/\bpromoted=(\d+)/g)) promoted += Number(match[1]);
  return promoted / renders;
}

// Without the edits (a build with `shortLivedRenderObjects: false`), scavenges promoted 7.7 KB of
// every render of the tiny page here (1.2–1.6 KB with them) and 13.6–14.3 KB of the
// 20-component page's (1.9–5.3 KB): the whole render, kept from the old generation by its
// getters and its Astro globals' prototype. What is left is the getter functions themselves, a
// Headers, and renders in flight during a scavenge.
test("a small page's render is not promoted to the old generation", () => {
  const bytes = promotedPerRender('/bench/tiny', 4000);
  assert.ok(bytes < 4000, `${Math.round(bytes)} bytes a render promoted`);
});

test("a page of components' render, Astro globals included, is not promoted either", () => {
  const bytes = promotedPerRender('/bench/async-20', 2000);
  assert.ok(bytes < 8000, `${Math.round(bytes)} bytes a render promoted`);
});
