import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configSchema, loadConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { ROOT, run, spawnOrigin } from './helpers/origin.ts';

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
      const { message } = err as Error;
      assert.match(message, /PORT must be integer \(got "eighty"\)/);
      assert.match(message, /POOL_POLICY must be one of off, per-request, shared \(got "sometimes"\)/);
      assert.match(message, /WORKERS .*\(got "0"\)/);
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

/** The origin's variables a document names: README's Configuration table, .env.example's origin section. */
function documented(): { readme: string[]; envExample: string[] } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(
    readme.indexOf('## Configuration'),
    readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
  );
  const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  const section = example.slice(example.indexOf('# The origin:'), example.indexOf('# (end of the origin'));
  return {
    readme: [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!).sort(),
    envExample: [...section.matchAll(/^#? ?([A-Z][A-Z_]+)=/gm)].map((m) => m[1]!).sort(),
  };
}

test("README's Configuration table and .env.example name exactly the schema's variables", () => {
  const schema = Object.keys(configSchema.properties).sort();
  const { readme, envExample } = documented();
  assert.deepEqual(readme, schema, 'README.md Configuration table vs src/config.ts');
  assert.deepEqual(envExample, schema, '.env.example origin section vs src/config.ts');
});
