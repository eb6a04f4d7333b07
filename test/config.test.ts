import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { run, spawnOrigin } from './helpers/origin.ts';

test('defaults: loopback, port 4321, pool policy off, metrics on 9464', () => {
  const config = loadConfig({});
  assert.equal(config.HOST, '127.0.0.1');
  assert.equal(config.PORT, 4321);
  assert.equal(config.POOL_POLICY, 'off');
  assert.equal(config.POOL_SIZE, 1000);
  assert.equal(config.METRICS_PORT, 9464);
  assert.equal(config.KEEP_ALIVE_TIMEOUT_MS, 65_000);
});

test('bad values are refused with a message naming each variable and value', () => {
  assert.throws(
    () => loadConfig({ PORT: 'eighty', POOL_POLICY: 'sometimes', WORKERS: '0' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /PORT must be integer \(got "eighty"\)/);
      assert.match(err.message, /POOL_POLICY must be equal to one of the allowed values \(got "sometimes"\)/);
      assert.match(err.message, /WORKERS .*\(got "0"\)/);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ HEADERS_TIMEOUT_MS: '60000', REQUEST_TIMEOUT_MS: '30000' }),
    /must not exceed REQUEST_TIMEOUT_MS/,
  );
});

test('the server exits 1 on bad configuration, with the message and no stack', async () => {
  const { code, output } = await run(process.execPath, ['src/server.ts'], {
    env: { ...process.env, POOL_SIZE: '-5', PORT: '0' },
  });
  assert.equal(code, 1);
  assert.match(output, /^astro-fastify-origin: Invalid configuration: POOL_SIZE must be >= 0 \(got "-5"\)/);
  assert.doesNotMatch(output, /\n\s+at /);
});

test('the server exits 1 with a clear message when the build directory has no server build', async () => {
  const { code, output } = await run(process.execPath, ['src/server.ts', '/nonexistent/build'], {
    env: { ...process.env, PORT: '0' },
  });
  assert.equal(code, 1);
  assert.match(
    output,
    /Cannot load the Astro build at \/nonexistent\/build\/server\/entry\.mjs: no Astro server build there/,
  );
});

test('a build dir given as argument wins over BUILD_DIR', async () => {
  const origin = await spawnOrigin({ BUILD_DIR: '/nonexistent' }, { args: ['dist'] });
  try {
    assert.equal((await fetch(`${origin.url}/docs/`)).status, 200);
  } finally {
    assert.equal(await origin.stop(), 0);
  }
});
