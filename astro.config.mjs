// The demo site. It is built with this repository's own adapter, as any Astro 6 site would be.
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
  },
});
