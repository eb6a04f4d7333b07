// The adapter puts the origin cache in when a site turns experimental.cache on without naming a
// provider, and leaves a provider the site named alone. (The demo build is the end-to-end case:
// test/cache/cache.test.ts runs against it.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AstroConfig, AstroIntegration } from 'astro';
import { memoryCache } from 'astro/config';
import origin from '../../src/adapter/index.ts';
import { PROVIDER_ENTRYPOINT, PROVIDER_NAME } from '../../src/cache/provider.ts';

type Setup = NonNullable<AstroIntegration['hooks']['astro:config:setup']>;

function setup(experimental: Record<string, unknown>): Array<Record<string, unknown>> {
  const updates: Array<Record<string, unknown>> = [];
  // The parts of a resolved Astro config the adapter's hook reads.
  const config = {
    experimental,
    cacheDir: new URL('file:///site/node_modules/.astro/'),
    image: { endpoint: {} },
    build: {
      server: new URL('file:///site/dist/server/'),
      client: new URL('file:///site/dist/client/'),
      assets: '_astro',
    },
  } as unknown as AstroConfig;
  const hook = origin().hooks['astro:config:setup'] as Setup;
  void hook({
    config,
    command: 'build',
    logger: { info() {}, warn() {} },
    updateConfig: (c: Record<string, unknown>) => updates.push(c),
  } as unknown as Parameters<Setup>[0]);
  return updates.filter((u) => 'experimental' in u);
}

test('experimental.cache without a provider: the origin cache is configured', () => {
  const [update] = setup({ cache: {} });
  assert.deepEqual(update, {
    experimental: { cache: { provider: { name: PROVIDER_NAME, entrypoint: PROVIDER_ENTRYPOINT } } },
  });
  assert.match(PROVIDER_ENTRYPOINT, /src\/cache\/provider\.ts$/);
});

test('a provider the site names is kept; no experimental.cache: no cache', () => {
  assert.deepEqual(setup({ cache: { provider: memoryCache() } }), []);
  assert.deepEqual(setup({}), []);
});
