// The concurrency-safety probe with the origin cache on (short runs of npm run load's cache
// scenarios): personalised pages never cross between requests though the cache stores and evicts
// them under load, and a cacheable page under load is rendered once per maxAge.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ensureBuild } from '../../load/lib/build.ts';
import { runCacheHammer, runCacheSafety } from '../../load/lib/cache-run.ts';

describe('origin cache: concurrency safety (short run)', { timeout: 120_000 }, () => {
  before(async () => {
    await ensureBuild('demo');
  });

  test('1500 requests with their own tokens over 100 connections, /cache/probe stored: each sees only its own token', async () => {
    const result = await runCacheSafety({ connections: 100, amount: 1500, maxBytes: 512 * 1024 });
    assert.deepEqual(result.problems, []);
    assert.equal(result.counts.verified, 1500);
    assert.equal(result.counts.violating, 0);
    assert.equal(result.cache.miss, 500, 'every /cache/probe response was stored (each under its own key)');
    assert.ok(result.cache.evictions > 0, `the byte budget evicted under load: ${JSON.stringify(result.cache)}`);
    // The header-only transport shares the path without a query: Vary keeps those apart.
    assert.ok(result.counts.byTransport.header! > 0);
  });

  test('a cacheable page (maxAge 2 s) under 50 connections for 5 s is rendered once per maxAge', async () => {
    const result = await runCacheHammer({ connections: 50, seconds: 5, maxAge: 2 });
    assert.deepEqual(result.problems, []);
    assert.ok(result.responses > 500, `load reached the page: ${result.responses} responses`);
    assert.ok(result.renders >= 2, `expired and rendered again: ${result.renders} renders`);
    assert.ok(result.renders <= result.allowed, `${result.renders} renders, at most ${result.allowed}`);
  });
});
