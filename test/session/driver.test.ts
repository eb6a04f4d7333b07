// The default session driver picks its store when the server starts: Redis when REDIS_URL is
// set (an empty value counts as unset, as compose passes it), else files under the build-time
// base. Sessions through a real Redis are tested in test/topology/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import sessionDriver, { DEFAULT_REDIS_PREFIX } from '../../src/session/driver.ts';

test('without REDIS_URL: fs-lite under the base the adapter gave', () => {
  for (const env of [{}, { REDIS_URL: '' }]) {
    const driver = sessionDriver({ base: '/tmp/site/sessions' }, env);
    assert.equal(driver.name, 'fs-lite');
    assert.equal((driver.options as { base: string }).base, '/tmp/site/sessions');
  }
});

test('with REDIS_URL: the redis driver at that URL, keys under the prefix, no connection until used', () => {
  const driver = sessionDriver({ base: '/tmp/site/sessions' }, { REDIS_URL: 'redis://127.0.0.1:1/2' });
  assert.equal(driver.name, 'redis');
  const options = driver.options as { url: string; base: string };
  assert.equal(options.url, 'redis://127.0.0.1:1/2');
  assert.equal(options.base, DEFAULT_REDIS_PREFIX);
});

test("ioredis is loaded only with REDIS_URL: its modules would stay in every origin's heap", () => {
  // A fresh process that records every module resolved (imports and requires alike).
  const driverUrl = new URL('../../src/session/driver.ts', import.meta.url).href;
  const script = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ resolve(specifier, context, next) { seen.push(specifier); return next(specifier, context); } });
    const { default: sessionDriver } = await import(${JSON.stringify(driverUrl)});
    const redisLoaded = () => seen.some((s) => /ioredis|drivers\\/redis/.test(s));
    sessionDriver({ base: '/tmp/site/sessions' }, {});
    const without = redisLoaded();
    sessionDriver({ base: '/tmp/site/sessions' }, { REDIS_URL: 'redis://127.0.0.1:1/2' });
    console.log(JSON.stringify({ without, with: redisLoaded() }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1)!), { without: false, with: true });
});
