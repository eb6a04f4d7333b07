// The same requests to our origin and to @astrojs/node 10.1.4, each serving the conformance
// site built with its own adapter, in every config variant: the answers must match, or the
// case documents and asserts a deliberate difference (cases.ts).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureConformanceBuilds, VARIANT_NAMES, type VariantName } from './builds.ts';
import { CASES, type Case, DEFAULT_FIELDS, type Field } from './cases.ts';
import { type Answer, type Pair, send, startPair } from './harness.ts';

before(async () => {
  await ensureConformanceBuilds();
});

function field(answer: Answer, name: Field): unknown {
  if (name === 'status') return answer.status;
  if (name === 'body') return answer.text;
  const value = answer.headers[name];
  // Both use the mime database; only the charset's case differs between send and @fastify/send.
  if (name === 'content-type' && typeof value === 'string') return value.toLowerCase();
  return value;
}

async function runCase(pair: Pair, c: Case, asset: string): Promise<void> {
  const req = { ...c, path: c.path.replace('ASSET', asset) };
  const [ours, theirs] = await Promise.all([send(pair.ours, req), send(pair.theirs, req)]);
  const where = `${req.method ?? 'GET'} ${req.path}`;
  for (const name of c.compare ?? DEFAULT_FIELDS) {
    assert.deepEqual(
      field(ours, name),
      field(theirs, name),
      `${where}: ${name} differs from @astrojs/node (ours first)\nours:   ${ours.status} ${JSON.stringify(ours.headers)}\ntheirs: ${theirs.status} ${JSON.stringify(theirs.headers)}\nours:   ${ours.text.slice(0, 400)}\ntheirs: ${theirs.text.slice(0, 400)}`,
    );
  }
  c.expect?.(ours);
  c.expect?.(theirs);
  if (c.differs) {
    c.differs.ours(ours);
    c.differs.theirs(theirs);
  }
}

function hashedAsset(dir: string): string {
  const name = readdirSync(path.join(dir, 'client/_astro')).find((f) => f.endsWith('.png'));
  assert.ok(name, `${dir} has a hashed image in client/_astro`);
  return name;
}

for (const variant of VARIANT_NAMES) {
  describe(`conformance: ${variant}`, () => {
    let pair: Pair;
    let asset: string;
    before(async () => {
      pair = await startPair(variant);
      asset = hashedAsset(pair.oursDir);
      assert.equal(hashedAsset(pair.theirsDir), asset, 'both builds hash the image alike');
    });
    after(() => pair?.close());

    for (const c of CASES.filter((c) => !c.variants || c.variants.includes(variant))) {
      const label = `${c.differs ? '[deliberate difference] ' : ''}${c.name}: ${c.method ?? 'GET'} ${c.path} (${c.source})`;
      test(label, () => runCase(pair, c, asset));
    }

    // With a prefixed default locale, /api/session-count is a 404 on both servers.
    test('a session counts 1, 2, 3 for one cookie; a fresh request starts again (sessions.test)', {
      skip: variant === 'i18n',
    }, async () => {
      const base = variant.startsWith('base') ? '/app' : '';
      const slash = variant.includes('always') ? '/' : '';
      for (const target of [pair.ours, pair.theirs]) {
        const first = await send(target, { path: `${base}/api/session-count${slash}` });
        assert.equal(first.status, 200, target);
        assert.equal(JSON.parse(first.text).count, 1);
        const cookie = String((first.headers['set-cookie'] as string[])[0]).split(';')[0]!;
        assert.match(cookie, /^astro-session=/);
        for (const expected of [2, 3]) {
          const next = await send(target, { path: `${base}/api/session-count${slash}`, headers: { cookie } });
          assert.equal(JSON.parse(next.text).count, expected, `${target}: the session keeps counting`);
        }
        const page = await send(target, { path: `${base}/session${slash}`, headers: { cookie } });
        assert.match(page.text, /<p id="count">4<\/p>/);
      }
    });

    if (variant === 'default') {
      test('session.regenerate() hands out a new id (sessions.test)', async () => {
        for (const target of [pair.ours, pair.theirs]) {
          const first = await send(target, { path: '/api/regenerate' });
          const id = String((first.headers['set-cookie'] as string[])[0]).split(';')[0]!;
          const second = await send(target, { path: '/api/regenerate', headers: { cookie: id } });
          const id2 = String((second.headers['set-cookie'] as string[])[0]).split(';')[0]!;
          assert.notEqual(id2, id, target);
        }
      });

      test('/_image serves the resized image, the same bytes as @astrojs/node (image.test)', async () => {
        const page = await send(pair.ours, { path: '/image' });
        const src = /<img[^>]+src="([^"]+)"/.exec(page.text)?.[1]?.replaceAll('&#38;', '&').replaceAll('&amp;', '&');
        assert.ok(src?.startsWith('/_image?'), `the page links /_image (got ${src})`);
        const theirsPage = await send(pair.theirs, { path: '/image' });
        assert.match(theirsPage.text, new RegExp(src!.split('?')[0]!));
        const [ours, theirs] = await Promise.all([send(pair.ours, { path: src! }), send(pair.theirs, { path: src! })]);
        assert.equal(ours.status, 200, ours.text);
        assert.equal(theirs.status, 200);
        assert.equal(ours.headers['content-type'], 'image/webp');
        assert.equal(theirs.headers['content-type'], 'image/webp');
        assert.deepEqual(ours.body, theirs.body);
      });

      test('/_image refuses sources from unknown domains and URL bypasses (image.test)', async () => {
        const hrefs = [
          'https://example.com/image.jpg',
          'HttpS://raw.githubusercontent.com/x.svg',
          '//raw.githubusercontent.com/x.svg',
          '/%2fraw.githubusercontent.com/x.svg',
          '\\\\raw.githubusercontent.com/x.svg',
        ];
        for (const href of hrefs) {
          const req = { path: `/_image?href=${encodeURIComponent(href)}&w=100&h=100&f=webp&q=75` };
          const [ours, theirs] = await Promise.all([send(pair.ours, req), send(pair.theirs, req)]);
          assert.equal(ours.status, theirs.status, href);
          assert.equal(ours.status, 403, href);
        }
      });
    }
  });
}

export type { VariantName };
