// The decision "file, redirect or page?" from the start-up listing alone. The conformance suite
// (test/conformance/) checks it against @astrojs/node on real builds; these cases pin the rules
// that keep files safe, without a build.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createStaticResolver,
  IMMUTABLE_CACHE_CONTROL,
  RESOLVER_MEMO_MAX_ENTRIES,
  RESOLVER_MEMO_MAX_PATH,
} from '../../src/plugins/static-files.ts';

const FILES = [
  '/about/index.html',
  '/two.html',
  '/static.txt',
  '/.well-known/security.txt',
  '/.hidden/file.json',
  '/.env',
  '/_astro/app.123.js',
  '/space name.txt',
];
const resolver = (options: Partial<Parameters<typeof createStaticResolver>[1]> = {}) =>
  createStaticResolver(FILES, { assetsPrefix: '/_astro/', cacheControl: 'public, max-age=5', ...options });

test('files, index.html and .html resolution', () => {
  const resolve = resolver({ buildFormat: 'file' });
  assert.deepEqual(resolve('/about/'), {
    kind: 'file',
    file: 'about/index.html',
    cacheControl: 'public, max-age=5',
    headers: [],
  });
  assert.equal((resolve('/about') as { file: string }).file, 'about/index.html');
  assert.equal((resolve('/two') as { file: string }).file, 'two.html');
  assert.equal((resolve('/space%20name.txt?x=1') as { file: string }).file, 'space name.txt');
  assert.equal((resolve('/_astro/app.123.js') as { cacheControl: string }).cacheControl, IMMUTABLE_CACHE_CONTROL);
  assert.equal(resolve('/missing'), undefined);
  assert.equal(resolver()('/two'), undefined, 'directory format: no .html guessing');
});

test('base: files only under it, assets immutable under it', () => {
  const resolve = resolver({ base: '/app', trailingSlash: 'never' });
  assert.equal((resolve('/app/static.txt') as { file: string }).file, 'static.txt');
  assert.deepEqual(resolve('/app/about/?q=1'), { kind: 'redirect', location: '/app/about?q=1' });
  assert.equal((resolve('/app/_astro/app.123.js') as { cacheControl: string }).cacheControl, IMMUTABLE_CACHE_CONTROL);
});

test('trailingSlash always redirects extensionless paths, not files or internal paths', () => {
  const resolve = resolver({ trailingSlash: 'always' });
  assert.deepEqual(resolve('/about?x'), { kind: 'redirect', location: '/about/?x' });
  assert.equal((resolve('/static.txt') as { file: string }).file, 'static.txt');
  assert.equal((resolve('/.well-known/security.txt') as { file: string }).file, '.well-known/security.txt');
});

test('dotfiles outside /.well-known/, traversal and NUL never resolve', () => {
  const resolve = resolver();
  for (const url of [
    '/.env',
    '/.hidden/file.json',
    '/.well-known/../.env',
    '/.well-known/%2e%2e/.env',
    '/_astro/..%2f..%2fetc/passwd',
    '/..%2f.env',
    '/static.txt%00',
    '/%',
  ]) {
    assert.equal(resolve(url), undefined, url);
  }
});

test('a remembered decision: the same with every query, and after the memo starts over', () => {
  const resolve = createStaticResolver(FILES, { assetsPrefix: '/_astro/', trailingSlash: 'always' });
  const again = () => {
    assert.deepEqual(resolve('/about'), { kind: 'redirect', location: '/about/' });
    assert.deepEqual(resolve('/about?a=1'), { kind: 'redirect', location: '/about/?a=1' });
    assert.deepEqual(resolve('/about?b=2#x'), { kind: 'redirect', location: '/about/?b=2' });
    assert.equal((resolve('/static.txt?v=3') as { file: string }).file, 'static.txt');
    assert.equal(resolve('/docs/'), undefined);
  };
  again();
  again();
  // `send`'s directory redirect never carries the query.
  const directory = createStaticResolver(FILES, { assetsPrefix: '/_astro/' });
  assert.deepEqual(directory('/abou%74?x=1'), { kind: 'redirect', location: '/abou%74/' });
  assert.deepEqual(directory('/abou%74?y=2'), { kind: 'redirect', location: '/abou%74/' });
  for (let i = 0; i <= RESOLVER_MEMO_MAX_ENTRIES; i++) resolve(`/page-${i}/`);
  again();
  // Too long to remember, still decided.
  assert.equal(resolve(`/${'x'.repeat(RESOLVER_MEMO_MAX_PATH)}/`), undefined);
});
