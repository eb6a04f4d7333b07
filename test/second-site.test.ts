// Any Astro 6 site built with the published adapter is served by the published (compiled)
// server: the fixture imports 'astro-fastify-origin/adapter' (lib/, plain JS) and the origin
// runs from lib/ with type stripping off, as it would from node_modules.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type OriginProcess, SECOND_SITE_BUILD, spawnOrigin } from './helpers/origin.ts';

let origin: OriginProcess;
before(async () => {
  origin = await spawnOrigin(
    { BUILD_DIR: SECOND_SITE_BUILD },
    { entry: 'lib/src/server.js', nodeArgs: ['--no-experimental-strip-types'] },
  );
});
after(async () => {
  assert.equal(await origin.stop(), 0);
});

test('its .astro page, MDX page and endpoint are served', async () => {
  const home = await fetch(`${origin.url}/`);
  assert.equal(home.status, 200);
  assert.match(await home.text(), /Second site home/);
  const mdx = await fetch(`${origin.url}/hello`);
  assert.equal(mdx.status, 200);
  assert.match(await mdx.text(), /Hello from the second site/);
  const ping = await fetch(`${origin.url}/api/ping`);
  assert.deepEqual(await ping.json(), { pong: true });
});

test("unknown paths get that site's 404", async () => {
  const res = await fetch(`${origin.url}/missing`);
  assert.equal(res.status, 404);
  assert.doesNotMatch(await res.text(), /Origin Docs/, 'not the demo site');
});

test('its MDX page goes through the queue renderer', async () => {
  await fetch(`${origin.url}/hello`);
  const metrics = await (await fetch(origin.metricsUrl)).text();
  assert.match(metrics, /astro_render_duration_seconds_count\{route="\/hello",renderer="queue"\} [1-9]/);
  const fresh = Number(/astro_queue_pool_acquires_total\{source="new"\} (\d+)/.exec(metrics)?.[1]);
  assert.ok(fresh > 0, 'queue nodes were acquired');
});

test('X-Forwarded-* are trusted for a host in security.allowedDomains, and only then', async () => {
  const whoami = async (headers: Record<string, string>) =>
    (await (await fetch(`${origin.url}/api/whoami`, { headers })).json()) as { url: string; clientAddress: string };
  const trusted = await whoami({
    'x-forwarded-host': 'cdn.example.com',
    'x-forwarded-proto': 'https',
    'x-forwarded-for': '203.0.113.9, 10.0.0.1',
  });
  assert.equal(trusted.url, 'https://cdn.example.com/api/whoami');
  assert.equal(trusted.clientAddress, '203.0.113.9');
  const spoofed = await whoami({
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'https',
    'x-forwarded-for': '203.0.113.9',
  });
  assert.doesNotMatch(spoofed.url, /evil\.example/);
  assert.match(spoofed.clientAddress, /127\.0\.0\.1$/);
});
