// The conformance cases: each request is sent to our origin and to @astrojs/node 10.1.4 serving
// the same build, and the answers are compared. `source` names the @astrojs/node test (at tag
// @astrojs/node@10.1.4, packages/integrations/node/test/) whose behaviour the case covers.
// A case with `differs` is a deliberate difference: it asserts both answers, ours and theirs.
import assert from 'node:assert/strict';
import type { VariantName } from './builds.ts';
import type { Answer, Req } from './harness.ts';

export type Field = 'status' | 'location' | 'content-type' | 'body' | 'set-cookie' | 'cache-control' | string;

export interface Case extends Req {
  name: string;
  source: string;
  /** The variants the case runs in; all when left out. */
  variants?: VariantName[];
  /** Compared between both answers; status, location, content-type and body by default. */
  compare?: Field[];
  /** Asserted on both answers: what @astrojs/node's own test asserts. */
  expect?: (answer: Answer) => void;
  /** A deliberate difference: why, our answer, theirs. */
  differs?: { why: string; ours: (answer: Answer) => void; theirs: (answer: Answer) => void };
}

export const DEFAULT_FIELDS: Field[] = ['status', 'location', 'content-type', 'body'];

const BASE: Record<VariantName, string> = {
  default: '',
  'base-never': '/app',
  'base-always': '/app',
  always: '',
  file: '',
  preserve: '',
  i18n: '',
};
const ALL = Object.keys(BASE) as VariantName[];
const NO_BASE = ALL.filter((v) => BASE[v] === '');
const IGNORE = ['default', 'file', 'preserve', 'i18n'] as VariantName[];
/** With i18n routing and a prefixed default locale, pages outside /en/ and /fr/ are 404 on both. */
const PAGES = ALL.filter((v) => v !== 'i18n');
const ALWAYS = ['always', 'base-always'] as VariantName[];

/** trailingSlash 'always' wants a slash on page paths; the other variants take them bare. */
const slash = (v: VariantName) => (v === 'always' || v === 'base-always' ? '/' : '');
const h1 = (text: string) => (a: Answer) => assert.match(a.text, new RegExp(`<h1>${text}</h1>`));
const status = (code: number) => (a: Answer) => assert.equal(a.status, code);
const notFoundPage = (a: Answer) => {
  assert.equal(a.status, 404);
  assert.match(a.text, /Page does not exist/);
};

/** The same case in each variant it applies to, with the variant's base in front of the path. */
function perVariant(variants: VariantName[], make: (base: string, v: VariantName) => Omit<Case, 'variants'>): Case[] {
  return variants.map((v) => ({ ...make(BASE[v], v), variants: [v] }));
}

export const CASES: Case[] = [
  // prerender.test.ts, build-format-file.test.ts
  ...perVariant(PAGES, (b, v) => ({
    name: 'SSR route',
    source: 'prerender.test',
    path: `${b}/one${v.includes('always') ? '/' : ''}`,
    expect: h1('One'),
  })),
  ...perVariant(ALL, (b, v) => ({
    name: 'prerendered route',
    source: 'prerender.test',
    path: `${b}/two${v.includes('always') ? '/' : ''}`,
    expect: h1('Two'),
  })),
  ...perVariant(ALL, (b) => ({
    name: 'prerendered route, trailing slash and query',
    source: 'prerender.test',
    path: `${b}/two/?foo=bar`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'prerendered route with query',
    source: 'prerender.test',
    path: `${b}/two?foo=bar`,
  })),
  ...perVariant(ALL, (b) => ({ name: 'prerendered page /about', source: 'prerender.test', path: `${b}/about` })),
  ...perVariant(ALL, (b) => ({ name: 'prerendered page /about/', source: 'prerender.test', path: `${b}/about/` })),
  ...perVariant(ALL, (b) => ({
    name: 'prerendered page by its file name',
    source: 'build-format-file.test',
    path: `${b}/about/index.html`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'prerendered page as .html',
    source: 'build-format-file.test',
    path: `${b}/two.html`,
  })),
  ...perVariant(ALL, (b) => ({ name: 'prerendered dynamic route', source: 'prerender.test', path: `${b}/dogs/rover` })),
  ...perVariant(ALL, (b) => ({
    name: 'prerendered dynamic route /blog/first',
    source: 'prerender.test',
    path: `${b}/blog/first`,
  })),
  ...perVariant(ALL, (b, v) => ({
    name: 'unknown param of a prerendered dynamic route: the site’s 404 page',
    source: 'prerender.test',
    path: `${b}/dogs/unknown${slash(v)}`,
    expect: notFoundPage,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'HEAD of a prerendered page',
    source: 'prerender.test',
    method: 'HEAD',
    path: `${b}/about`,
  })),

  // trailing-slash.test.ts
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: redirect with the query kept',
    source: 'trailing-slash.test',
    path: `${b}/one?foo=bar`,
    expect: (a) => {
      assert.equal(a.status, 301);
      assert.equal(a.headers.location, `${b}/one/?foo=bar`);
    },
  })),
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: no slash added to a file',
    source: 'trailing-slash.test',
    path: `${b}/one.css`,
    expect: (a) => assert.equal(a.text, 'h1 { color: red; }\n'),
  })),
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: prerendered page without slash',
    source: 'trailing-slash.test',
    path: `${b}/two`,
  })),
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: HEAD redirect',
    source: 'trailing-slash.test',
    method: 'HEAD',
    path: `${b}/two`,
  })),
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: /.well-known/ file',
    source: 'well-known-locations.test',
    path: `${b}/.well-known/security.txt`,
  })),
  ...perVariant(['base-never', 'default', 'always', 'file'], (b, v) => ({
    name: 'trailingSlash never (else: Astro’s rule): SSR route with a slash',
    source: 'trailing-slash.test',
    path: `${b}/one/?foo=bar`,
    ...(v === 'base-never' ? { expect: (a: Answer) => assert.equal(a.headers.location, `${b}/one?foo=bar`) } : {}),
  })),
  ...perVariant(['base-never'], (b) => ({
    name: 'trailingSlash never: prerendered page with a slash',
    source: 'trailing-slash.test',
    path: `${b}/two/?foo=bar`,
    expect: (a) => {
      assert.equal(a.status, 301);
      assert.equal(a.headers.location, `${b}/two?foo=bar`);
    },
  })),
  ...perVariant(ALL, (b) => ({ name: 'the base itself', source: 'trailing-slash.test', path: b || '/' })),
  ...perVariant(['base-never', 'base-always'], (b) => ({
    name: 'the base with a slash',
    source: 'trailing-slash.test',
    path: `${b}/`,
  })),
  ...perVariant(['base-never', 'base-always'], (b) => ({
    name: 'HEAD of the base with a slash',
    source: 'trailing-slash.test',
    method: 'HEAD',
    path: `${b}/`,
  })),
  ...perVariant(['base-never', 'base-always'], () => ({
    name: 'root outside the base',
    source: 'trailing-slash.test',
    path: '/',
  })),
  ...perVariant(ALL, (b) => ({
    name: 'internal path glued to the URL is not served',
    source: 'trailing-slash.test',
    path: `${b}//astro.build/press`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'double slash inside the path',
    source: 'trailing-slash.test',
    path: `${b}/foo//astro.build/press`,
  })),

  // public/ files
  ...perVariant(ALL, (b) => ({
    name: 'public file',
    source: 'prerender.test',
    path: `${b}/static.txt`,
    expect: status(200),
  })),
  ...perVariant(ALL, (b) => ({
    name: 'HEAD of a public file',
    source: 'prerender.test',
    method: 'HEAD',
    path: `${b}/static.txt`,
  })),
  ...perVariant(['base-never', 'base-always'], () => ({
    name: 'public file outside the base',
    source: 'prerender.test',
    path: '/static.txt',
  })),
  ...perVariant(ALL, (b) => ({
    name: 'directory with a public index.html',
    source: 'build-format-file.test',
    path: `${b}/dir`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'directory with a public index.html, slash',
    source: 'build-format-file.test',
    path: `${b}/dir/`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'encoded public file name',
    source: 'encoded.test',
    path: `${b}/space%20name.txt`,
  })),

  // well-known-locations.test.ts
  ...perVariant(ALL, (b) => ({
    name: '/.well-known/ file',
    source: 'well-known-locations.test',
    path: `${b}/.well-known/apple-app-site-association`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'dot folder outside /.well-known/',
    source: 'well-known-locations.test',
    path: `${b}/.hidden/file.json`,
  })),
  ...perVariant(ALL, (b) => ({ name: 'dotfile', source: 'well-known-locations.test', path: `${b}/.hidden-file` })),
  ...perVariant(NO_BASE, () => ({
    name: 'dotfile through /.well-known/../',
    source: 'well-known-locations.test',
    path: '/.well-known/../.hidden-file',
    expect: (a) => assert.notEqual(a.status, 200),
  })),
  ...perVariant(NO_BASE, () => ({
    name: 'dot folder through /.well-known/../',
    source: 'well-known-locations.test',
    path: '/.well-known/../.hidden/file.json',
    expect: (a) => assert.notEqual(a.status, 200),
  })),

  ...['/.well-known/%2e%2e/.hidden-file', '/.well-known/..%2f.hidden/file.json'].map(
    (path): Case => ({
      name: 'dotfile through an encoded /.well-known/../',
      source: 'well-known-locations.test',
      variants: ['default'],
      path,
      compare: [],
      differs: {
        why: '@astrojs/node allows dotfiles when the undecoded URL starts with /.well-known/, then send decodes %2e%2e and %2f: the dotfile is served. We decide on the decoded path',
        ours: notFoundPage,
        theirs: status(200),
      },
    }),
  ),
  {
    name: 'POST to a public file',
    source: 'api-route.test',
    variants: ['default'],
    method: 'POST',
    path: '/static.txt',
    compare: [],
    differs: {
      why: 'static files answer GET and HEAD; other methods go to Astro, which has no route there',
      ours: notFoundPage,
      theirs: (a) => assert.equal(a.text, 'static file\n'),
    },
  },

  // redirects.test.ts
  ...perVariant(ALL, (b) => ({ name: 'config redirect', source: 'redirects.test', path: `${b}/old` })),
  ...perVariant(ALL, (b) => ({
    name: 'config redirect, HEAD',
    source: 'redirects.test',
    method: 'HEAD',
    path: `${b}/old`,
  })),
  ...perVariant(
    ALL.filter((v) => !ALWAYS.includes(v)),
    (b) => ({ name: 'config redirect, POST', source: 'redirects.test', method: 'POST', path: `${b}/old` }),
  ),
  ...perVariant(ALWAYS, (b) => ({
    name: 'trailingSlash always: POST without the slash',
    source: 'trailing-slash.test',
    method: 'POST',
    path: `${b}/old`,
    compare: ['location'],
    differs: {
      why: 'Astro’s own 308 keeps the method; @astrojs/node’s static handler answers 301 to any method, which turns a POST into a GET',
      ours: status(308),
      theirs: status(301),
    },
  })),
  ...perVariant(ALL, (b) => ({
    name: 'config redirect with status 301',
    source: 'redirects.test',
    path: `${b}/old-301`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'config redirect with status 302',
    source: 'redirects.test',
    path: `${b}/old-302`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'dynamic config redirect',
    source: 'redirects.test',
    path: `${b}/dynamic/first`,
  })),
  ...perVariant(ALL, (b) => ({
    name: 'spread config redirect',
    source: 'redirects.test',
    path: `${b}/spread/some/nested/path`,
  })),
  ...perVariant(ALL, (b) => ({ name: 'external config redirect', source: 'redirects.test', path: `${b}/external` })),

  // bad-urls.test.ts
  ...[
    '/\\xfs.bxss.me%3Fastrojs.com/hello-world',
    '/asdasdasd@ax_zX=.zxczas🐥%/úadasd000%/',
    '/%',
    '/%80',
    '/%c',
    '/%c0%80',
    '/%20foobar%',
  ].map(
    (path): Case => ({
      name: `bad URL ${path}`,
      source: 'bad-urls.test',
      variants: ['default'],
      path,
      compare: ['status'],
      expect: (a) => assert.ok([400, 404, 500].includes(a.status), `${path} → ${a.status}`),
    }),
  ),
  ...['/#', '/#foo', '/#/path'].map(
    (path): Case => ({
      name: `hash fragment ${path}`,
      source: 'bad-urls.test',
      variants: ['default'],
      path,
      expect: status(200),
    }),
  ),

  // encoded.test.ts
  ...perVariant(ALL, (b) => ({ name: 'encoded SSR page', source: 'encoded.test', path: `${b}/%E4%BB%80%E4%B9%88` })),
  ...perVariant(ALL, (b) => ({
    name: 'encoded prerendered page',
    source: 'encoded.test',
    path: `${b}/zh/%E4%BB%80%E4%B9%88/`,
  })),
  ...perVariant(['file', 'preserve'], (b) => ({
    name: 'encoded prerendered page without its slash (zh/什么.html)',
    source: 'encoded.test',
    path: `${b}/zh/%E4%BB%80%E4%B9%88`,
  })),
  ...perVariant(['default', 'i18n'], (b) => ({
    name: 'encoded prerendered page without its slash',
    source: 'encoded.test',
    path: `${b}/zh/%E4%BB%80%E4%B9%88`,
    compare: ['status', 'location'],
    // send checks "is it a directory?" on the decoded path, @astrojs/node on the encoded one.
    expect: (a) => assert.equal(a.headers.location, `${b}/zh/%E4%BB%80%E4%B9%88/`),
    differs: {
      why: 'the redirect to the directory has an empty body; send writes a small HTML page',
      ours: (a) => assert.equal(a.text, ''),
      theirs: (a) => assert.match(a.text, /Redirecting to/),
    },
  })),
  ...perVariant(['default'], () => ({
    name: 'raw UTF-8 path',
    source: 'encoded.test',
    path: '/什么',
    compare: ['status'],
    expect: status(400),
  })),

  // errors.test.ts, prerender-404-500.test.ts, prerendered-error-page-fetch.test.ts
  ...perVariant(ALL, (b, v) => ({
    name: 'prerendered 404 page',
    source: 'prerender-404-500.test',
    path: `${b}/missing${slash(v)}`,
    expect: notFoundPage,
  })),
  ...perVariant(PAGES, (b, v) => ({
    name: 'prerendered 500 page for a 500 response',
    source: 'prerender-404-500.test',
    path: `${b}/fivehundred${slash(v)}`,
    expect: (a) => {
      assert.equal(a.status, 500);
      assert.match(a.text, /Something went wrong/);
    },
  })),
  ...perVariant(ALL, (b, v) => ({
    name: 'a page that throws gets the 500 page',
    source: 'errors.test',
    path: `${b}/throws${slash(v)}`,
    expect: status(500),
  })),
  // error-page-host: the error page is read from disk, never fetched from the request's Host.
  ...perVariant(['default', 'base-never'], (b) => ({
    name: 'prerendered 404 page whatever the Host',
    source: 'error-page-host (prerendered-error-page-fetch.test)',
    path: `${b}/missing`,
    headers: { host: 'evil.example:9' },
    expect: notFoundPage,
  })),

  // url.test.ts (url-protocol)
  ...(
    [
      {},
      { 'x-forwarded-proto': 'https' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'cdn.example.com' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'abc.xyz', 'x-forwarded-port': '444' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'malicious.example.com' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': '' },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'example.com/admin' },
    ] as Array<Record<string, string>>
  ).flatMap((headers) =>
    perVariant(['default', 'always'], (b, v) => ({
      name: `Astro.url with ${JSON.stringify(headers)}`,
      source: 'url.test',
      path: `${b}/api/whoami${v === 'always' ? '/' : ''}`,
      headers,
    })),
  ),

  ...perVariant(['default', 'always'], (b, v) => ({
    name: 'Astro.url with a Host that security.allowedDomains does not list',
    source: 'url.test',
    path: `${b}/api/whoami${v === 'always' ? '/' : ''}`,
    headers: { host: 'forged.example' },
    compare: ['status', 'content-type'],
    differs: {
      why: 'Astro’s createRequest trusts Host only for allowed domains (host-header poisoning); @astrojs/node takes it as sent',
      ours: (a) => assert.equal(JSON.parse(a.text).url, `http://localhost${b}/api/whoami${slash(v)}`),
      theirs: (a) => assert.equal(JSON.parse(a.text).url, `http://forged.example${b}/api/whoami${slash(v)}`),
    },
  })),

  // api-route.test.ts
  ...perVariant(IGNORE, (b) => ({
    name: 'endpoint reads the request body',
    source: 'api-route.test',
    method: 'POST',
    path: `${b}/api/recipes`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 2 }),
    expect: (a) => assert.deepEqual(JSON.parse(a.text), [{ name: 'Broccoli Soup' }]),
  })),
  ...perVariant(IGNORE, (b) => ({
    name: 'endpoint reads binary data',
    source: 'api-route.test',
    method: 'POST',
    path: `${b}/api/binary`,
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from([1, 2, 3, 4, 5]),
    expect: (a) => assert.deepEqual([...a.body], [5, 4, 3, 2, 1]),
  })),
  ...perVariant(ALL, (b, v) => ({
    name: 'endpoint returning a stream',
    source: 'api-route.test',
    path: `${b}/api/stream${v.includes('always') ? '/' : ''}`,
    expect: (a) => assert.equal(a.text, 'chunk 1\nchunk 2\nchunk 3\n'),
  })),
  ...perVariant(IGNORE, (b) => ({ name: 'endpoint redirect', source: 'api-route.test', path: `${b}/api/redirect` })),
  ...perVariant(IGNORE, (b) => ({
    name: 'Astro.redirect with 303',
    source: 'api-route.test',
    path: `${b}/astro-redirect`,
  })),
  ...perVariant(IGNORE, (b) => ({
    name: 'Response.redirect',
    source: 'api-route.test',
    path: `${b}/api/response-redirect`,
  })),

  // locals.test.ts
  ...perVariant(['default', 'file', 'preserve'], (b) => ({
    name: 'locals set by Astro middleware in a page',
    source: 'locals.test',
    path: `${b}/from-astro-middleware`,
    expect: h1('baz'),
  })),
  ...perVariant(IGNORE, (b) => ({
    name: 'locals set by Astro middleware in an endpoint',
    source: 'locals.test',
    method: 'POST',
    path: `${b}/api/locals`,
    headers: { 'content-type': 'application/json' },
    expect: (a) => assert.deepEqual(JSON.parse(a.text), { fromMiddleware: 'mw' }),
  })),
  {
    name: 'locals carry the request id',
    source: 'locals.test',
    variants: ['default'],
    path: '/api/locals',
    compare: ['status', 'content-type'],
    differs: {
      why: 'the origin adds Astro.locals.requestId (the id of the log line), so a page can log with it',
      ours: (a) => assert.deepEqual(JSON.parse(a.text), { keys: ['fromMiddleware', 'requestId'] }),
      theirs: (a) => assert.deepEqual(JSON.parse(a.text), { keys: ['fromMiddleware'] }),
    },
  },

  // headers.test.ts
  ...perVariant(IGNORE, (b) => ({
    name: 'endpoint: Astro.cookies and Set-Cookie headers, repeated headers',
    source: 'headers.test',
    path: `${b}/cookies/endpoint`,
    compare: [...DEFAULT_FIELDS, 'set-cookie', 'x-single', 'x-triple', 'x-middleware'],
    expect: (a) => assert.equal((a.headers['set-cookie'] as string[]).length, 4),
  })),
  ...perVariant(IGNORE, (b) => ({
    name: 'component: Astro.cookies and Astro.response Set-Cookie',
    source: 'headers.test',
    path: `${b}/cookies/component`,
    compare: [...DEFAULT_FIELDS, 'set-cookie', 'x-middleware'],
  })),
  // Not from @astrojs/node's tests: the Astro global and the middleware context, which our
  // adapter builds its own way (src/adapter/short-lived-render-objects.ts), as a page sees them.
  ...perVariant(['default'], () => ({
    name: 'the Astro global and the middleware context: own and inherited properties, getters, assignment',
    source: 'short-lived-render-objects',
    path: '/astro-global',
    expect: (a) => {
      assert.equal(a.status, 200);
      const facts = JSON.parse(a.text.match(/<pre id="facts">(.*?)<\/pre>/s)![1]!.replaceAll('&quot;', '"'));
      assert.deepEqual(facts.ownKeys, ['props', 'self']);
      assert.equal(facts.assignData, 'assigned');
      assert.equal(facts.assignGetter, 'TypeError');
      assert.equal(facts.context.getters[0], 'object');
    },
  })),
  ...perVariant(ALL, (b) => ({
    name: 'middleware header and locals on an SSR page',
    source: 'headers.test',
    path: `${b}/`,
    compare: [...DEFAULT_FIELDS, 'x-middleware'],
  })),

  // static-headers.test.ts: CSP of prerendered pages as a header (base-never has csp + staticHeaders).
  ...['/app/about', '/app/two', '/app/dogs/rover', '/app', '/app/one'].map(
    (path): Case => ({
      name: `Content-Security-Policy header on ${path}`,
      source: 'static-headers.test',
      variants: ['base-never'],
      path,
      compare: [...DEFAULT_FIELDS, 'content-security-policy'],
      expect: (a) => assert.match(String(a.headers['content-security-policy']), /script-src/),
    }),
  ),

  // i18n routing with a prefixed default locale
  ...['/', '/en', '/en/', '/fr/', '/de/', '/en/about', '/fr/about', '/about'].map(
    (path): Case => ({ name: `i18n ${path}`, source: 'i18n routing', variants: ['i18n'], path }),
  ),

  // assets.test.ts
  ...perVariant(ALL, (b) => ({
    name: 'hashed asset is immutable',
    source: 'assets.test',
    path: `${b}/_astro/ASSET`,
    compare: [...DEFAULT_FIELDS, 'cache-control'],
    expect: (a) => assert.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable'),
  })),
  ...perVariant(ALL, (b) => ({
    name: 'malformed If-Match on a hashed asset: 412',
    source: 'assets.test',
    path: `${b}/_astro/ASSET`,
    headers: { 'if-match': 'malformed' },
    compare: ['status'],
    expect: status(412),
  })),

  // Deliberate differences
  ...perVariant(ALL, (b) => ({
    name: 'Cache-Control of public files and prerendered pages',
    source: 'assets.test',
    path: `${b}/static.txt`,
    differs: {
      why: 'STATIC_CACHE_CONTROL (default: 60 s, then revalidate) instead of send’s max-age=0',
      ours: (a) => assert.equal(a.headers['cache-control'], 'public, max-age=60, must-revalidate'),
      theirs: (a) => assert.equal(a.headers['cache-control'], 'public, max-age=0'),
    },
  })),
  {
    name: 'compression',
    source: 'headers.test',
    variants: ['default'],
    path: '/about',
    headers: { 'accept-encoding': 'br' },
    compare: ['status', 'content-type'],
    differs: {
      why: 'the origin compresses with br/gzip (@fastify/compress); @astrojs/node leaves it to a proxy',
      ours: (a) => assert.equal(a.headers['content-encoding'], 'br'),
      theirs: (a) => assert.equal(a.headers['content-encoding'], undefined),
    },
  },
];
