// The same demo site built with the official @astrojs/node adapter (standalone), for the peer
// comparison (npm run bench). Same pages (./demo), same queuedRendering flag as astro.config.mjs.
// Build: astro build --config load/astro.config.node.mjs   (→ dist-node/)
// Run:   HOST=127.0.0.1 PORT=4322 node dist-node/server/entry.mjs
import mdx from '@astrojs/mdx';
import node from '@astrojs/node';
import { defineConfig } from 'astro/config';

export default defineConfig({
  // The demo site lives in demo/ (src/ is the origin's own code).
  srcDir: './demo',
  publicDir: './demo/public',
  output: 'server',
  adapter: node({ mode: 'standalone' }),
  integrations: [mdx({ gfm: true })],
  outDir: './dist-node',
  cacheDir: './node_modules/.astro-node',
  experimental: {
    queuedRendering: { enabled: true },
  },
});
