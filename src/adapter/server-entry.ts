// Bundled by Astro into <build>/server/entry.mjs. It only builds the App: the Fastify
// origin (src/server.ts) imports this module and owns the HTTP side.

// @ts-expect-error resolved by the adapter's Vite plugin at build time
import buildOptions from 'virtual:astro-fastify-origin/options';
import { createApp } from 'astro/app/entrypoint';
import { setGetEnv } from 'astro/env/setup';

setGetEnv((key) => process.env[key]);

// Streaming on: .astro pages flush as they render; the queue renderer (MDX) returns whole bodies anyway.
export const app = createApp({ streaming: true });
export const options: import('./index.ts').BuildOptions = buildOptions;
// Astro's Node request helpers as bundled into this build, for sites with security.allowedDomains
// (src/astro/bridge.ts): importing 'astro/app/node' from the origin instead loaded a second copy
// of Astro's runtime (149 modules; 6.6 MiB of heap loaded alone) into every origin.
export { createRequest, getAbortControllerCleanup } from 'astro/app/node';
// The class each render runs in, as bundled into this build: the origin wraps it to count each
// render's queue nodes (enableQueueNodeCounting in src/astro/astro-internals.ts).
export { FetchState } from 'astro/fetch';
