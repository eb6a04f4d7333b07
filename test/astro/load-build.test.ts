// loadBuild takes Astro's Node request helpers (createRequest, for sites with
// security.allowedDomains) from the build's own bundled copy of Astro: importing 'astro/app/node'
// from the origin loaded a second copy of Astro's runtime into every origin's heap. A build of an
// older adapter, which does not export them, still works with astro/app/node's.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import * as astroNode from 'astro/app/node';
import { loadBuild } from '../../src/astro/load-build.ts';
import { DEMO_BUILD } from '../helpers/origin.ts';

test("the build's own createRequest, not a second copy of Astro", async () => {
  const build = await loadBuild(DEMO_BUILD);
  const entry = await import(pathToFileURL(path.join(DEMO_BUILD, 'server', 'entry.mjs')).href);
  assert.equal(typeof build.astroNode.createRequest, 'function');
  assert.equal(build.astroNode.createRequest, entry.createRequest);
  assert.equal(build.astroNode.getAbortControllerCleanup, entry.getAbortControllerCleanup);
  assert.notEqual(build.astroNode.createRequest, astroNode.createRequest);
});

test('a build of an older adapter gets astro/app/node', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'older-build-'));
  try {
    mkdirSync(path.join(dir, 'server'));
    // The demo build's app and options, without the helpers.
    const demoEntry = pathToFileURL(path.join(DEMO_BUILD, 'server', 'entry.mjs')).href;
    writeFileSync(
      path.join(dir, 'server', 'entry.mjs'),
      `export { app, options, FetchState } from ${JSON.stringify(demoEntry)};\n`,
    );
    const build = await loadBuild(dir);
    assert.equal(build.astroNode.createRequest, astroNode.createRequest);
    assert.equal(build.astroNode.getAbortControllerCleanup, astroNode.getAbortControllerCleanup);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
