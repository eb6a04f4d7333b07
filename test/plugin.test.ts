// The origin registered in a user's own Fastify app, imported by its package name (the compiled
// lib/, as another project gets it from node_modules): the app's routes and hooks sit beside
// the Astro catch-all.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import astroOrigin from 'astro-fastify-origin';
import Fastify, { type FastifyInstance } from 'fastify';

let app: FastifyInstance;
let url: string;
const seen: string[] = [];

before(async () => {
  app = Fastify({ logger: false });
  // The user's own hook: sees every request, Astro's included, and can refuse some.
  app.addHook('onRequest', async (request, reply) => {
    seen.push(request.url);
    if (request.url.startsWith('/about') && request.headers.authorization !== 'Bearer letmein') {
      return reply.code(401).send({ error: 'sign in first' });
    }
    request.astroLocals = { user: 'ada' };
  });
  app.get('/api/own', async () => ({ own: true }));
  await app.register(astroOrigin, { buildDir: 'dist', poolPolicy: 'off' });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(() => app.close());

test("the app's own route wins over the catch-all", async () => {
  const res = await fetch(`${url}/api/own`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { own: true });
});

test('Astro pages, endpoints and static files are served beside it', async () => {
  const page = await fetch(`${url}/docs/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/);
  assert.equal((await fetch(`${url}/robots.txt`)).status, 200);
  assert.equal((await fetch(`${url}/no/such/page`)).status, 404);
});

test("the app's onRequest hook runs for Astro's requests: it can refuse them and set Astro.locals", async () => {
  assert.equal((await fetch(`${url}/about`)).status, 401);
  assert.equal((await fetch(`${url}/about`, { headers: { authorization: 'Bearer letmein' } })).status, 200);
  const locals = await (await fetch(`${url}/api/locals`)).json();
  assert.equal(locals.user, 'ada');
  assert.ok(seen.includes('/api/locals'));
});

test('the app is decorated with the pool policy, the build and the render turns', () => {
  assert.equal(app.poolPolicy.name, 'off');
  assert.ok(app.astroBuild.clientDir.endsWith('client'));
  assert.equal(app.renderTurns.waiting(), 0);
});

test("the build's page modules are imported once: a page's loader hands back the same promise", async () => {
  const pageMap = (app.astroBuild.app.manifest as unknown as { pageMap: Map<string, () => Promise<unknown>> }).pageMap;
  const load = pageMap.get('demo/pages/index.astro');
  assert.ok(load, 'the demo build has its home page in the pageMap');
  assert.equal(load(), load());
  assert.ok(await load());
});

test('bad options are refused when the plugin is registered, with what to do', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /exactly one of `buildDir`/],
    [{ buildDir: 'dist', poolPolicy: 'sometimes' }, /`poolPolicy` must be one of off, per-request, shared/],
    [{ buildDir: 'dist', poolSize: -1 }, /`poolSize` must be an integer from 0/],
    [{ buildDir: 'dist', renderSliceMs: '5' }, /`renderSliceMs` must be a number of milliseconds from 0/],
    [{ buildDir: 'dist', renderSliceMs: -1 }, /`renderSliceMs` must be a number of milliseconds from 0/],
    [{ buildDir: 'dist', renderTurnsAfterAcceptMs: '1000' }, /`renderTurnsAfterAcceptMs` must be a number/],
    [{ buildDir: 'dist', renderTurnsAfterAcceptMs: Number.NaN }, /`renderTurnsAfterAcceptMs` must be a number/],
    [{ buildDir: '/nonexistent' }, /Cannot load the Astro build at \/nonexistent\/server\/entry\.mjs/],
  ];
  for (const [options, message] of cases) {
    const other = Fastify({ logger: false });
    await assert.rejects(async () => {
      await other.register(astroOrigin, options);
      await other.ready();
    }, message);
    await other.close();
  }
});
