// The demo site with the queue renderer OFF: every page (MDX included) goes through Astro's
// recursive renderer. Same pages, same adapter as astro.config.mjs; only the flag differs.
// The seed-style report (npm run load:report) uses it as its baseline.
// Build: astro build --config load/astro.config.recursive.mjs   (→ dist-recursive/)
import mdx from '@astrojs/mdx';
import { defineConfig } from 'astro/config';
import origin from '../src/adapter/index.ts';

export default defineConfig({
  // The demo site lives in demo/ (src/ is the origin's own code).
  srcDir: './demo',
  publicDir: './demo/public',
  output: 'server',
  adapter: origin(),
  integrations: [mdx({ gfm: true })],
  outDir: './dist-recursive',
  cacheDir: './node_modules/.astro-recursive',
  experimental: {
    queuedRendering: { enabled: false },
  },
});
