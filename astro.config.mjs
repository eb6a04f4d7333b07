// The demo site. It is built with this repository's own adapter, as any Astro 6 site would be.
import { readdirSync } from 'node:fs';
import mdx from '@astrojs/mdx';
import { defineConfig } from 'astro/config';
import origin from './src/adapter/index.ts';

export default defineConfig({
  // The demo site lives in demo/ (src/ is the origin's own code).
  srcDir: './demo',
  publicDir: './demo/public',
  output: 'server',
  adapter: origin(),
  // gfm: Astro 6.4 no longer turns GitHub-flavoured Markdown (tables…) on for MDX by default.
  integrations: [mdx({ gfm: true })],
  experimental: {
    queuedRendering: { enabled: true },
    // No provider named: the adapter puts in the origin cache (astro-fastify-origin/cache).
    cache: {},
    routeRules: docsCacheRules(),
  },
});

/**
 * The docs pages are cached by the origin: fresh for 60 s, then served stale for up to 10 min
 * while one background render refreshes them. Each section gets its own tag (docs:caching…),
 * found from the folders of demo/pages/docs, so `{ "tags": ["docs:caching"] }` purges one section
 * and `{ "tags": ["docs"] }` all of them.
 */
function docsCacheRules() {
  const rule = (tags) => ({ maxAge: 60, swr: 600, tags });
  const sections = readdirSync(new URL('./demo/pages/docs/', import.meta.url), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
  return {
    '/docs': rule(['docs', 'docs:index']),
    '/docs/[page]': rule(['docs', 'docs:index']),
    ...Object.fromEntries(sections.map((s) => [`/docs/${s}/[...page]`, rule(['docs', `docs:${s}`])])),
  };
}
