import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroAdapter, AstroConfig, AstroIntegration } from 'astro';
import { originCache } from '../cache/provider.ts';

export const ADAPTER_NAME = 'astro-fastify-origin';
const OPTIONS_MODULE_ID = 'virtual:astro-fastify-origin/options';
const RESOLVED_OPTIONS_MODULE_ID = `\0${OPTIONS_MODULE_ID}`;

/** What the build hands to the origin server, beside the App itself. */
export interface BuildOptions {
  /** The client directory, relative to the server entry's directory (relocatable builds). */
  clientDir: string;
  /** Astro's assets prefix inside the client dir (hashed, immutable files). */
  assetsDir: string;
}

// Published as compiled JS (lib/adapter/*.js); in this repo it runs from src/ as .ts.
const serverEntrypoint = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './server-entry.ts' : './server-entry.js', import.meta.url),
);

function getAdapter(): AstroAdapter {
  return {
    name: ADAPTER_NAME,
    entrypointResolution: 'auto',
    serverEntrypoint,
    adapterFeatures: { buildOutput: 'server' },
    supportedAstroFeatures: {
      hybridOutput: 'stable',
      staticOutput: 'stable',
      serverOutput: 'stable',
      sharpImageService: 'stable',
      envGetSecret: 'stable',
    },
  };
}

/**
 * A site that turns on experimental.cache without naming a provider gets the origin cache
 * (astro-fastify-origin/cache); a provider the site names is left alone.
 */
function defaultCacheProvider(config: AstroConfig, updateConfig: (c: Record<string, unknown>) => unknown): void {
  const cache = config.experimental?.cache;
  if (cache && !cache.provider) updateConfig({ experimental: { cache: { ...cache, provider: originCache() } } });
}

/** The Astro integration: `adapter: origin()` in astro.config. */
export default function origin(): AstroIntegration {
  return {
    name: ADAPTER_NAME,
    hooks: {
      'astro:config:setup': ({ config, updateConfig }) => {
        defaultCacheProvider(config, updateConfig);
        const options: BuildOptions = {
          clientDir: path.relative(fileURLToPath(config.build.server), fileURLToPath(config.build.client)),
          assetsDir: config.build.assets,
        };
        updateConfig({
          vite: {
            plugins: [
              {
                name: OPTIONS_MODULE_ID,
                resolveId: (id: string) => (id === OPTIONS_MODULE_ID ? RESOLVED_OPTIONS_MODULE_ID : undefined),
                load: (id: string) =>
                  id === RESOLVED_OPTIONS_MODULE_ID ? `export default ${JSON.stringify(options)};` : undefined,
              },
            ],
          },
        });
      },
      'astro:config:done': ({ setAdapter }) => {
        setAdapter(getAdapter());
      },
    },
  };
}
