import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroAdapter, AstroConfig, AstroIntegration } from 'astro';
import { originCache } from '../cache/provider.ts';
import type { SessionDriverOptions } from '../session/driver.ts';
import { shortLivedRenderObjects } from './short-lived-render-objects.ts';

export const ADAPTER_NAME = 'astro-fastify-origin';
const OPTIONS_MODULE_ID = 'virtual:astro-fastify-origin/options';
const RESOLVED_OPTIONS_MODULE_ID = `\0${OPTIONS_MODULE_ID}`;
/** Per-route headers of prerendered pages, written beside entry.mjs when `staticHeaders` is on. */
export const STATIC_HEADERS_FILE = 'static-headers.json';
/** Astro's image endpoint that reads local source images from the client dir (no HTTP self-request). */
export const NODE_IMAGE_ENDPOINT = 'astro/assets/endpoint/node';

export interface OriginAdapterOptions {
  /**
   * Send Astro's per-page headers of prerendered pages (the Content-Security-Policy of
   * `security.csp`) as HTTP headers instead of `<meta>` tags, as `@astrojs/node`'s option of
   * the same name does. Off by default, as there.
   */
  staticHeaders?: boolean;
  /**
   * Edit Astro's render state in the server build so a render's objects die young instead of
   * being promoted to V8's old generation (src/adapter/short-lived-render-objects.ts). On by
   * default; `false` builds Astro exactly as it ships.
   */
  shortLivedRenderObjects?: boolean;
}

/** What the build hands to the origin server, beside the App itself. */
export interface BuildOptions {
  /** The client directory, relative to the server entry's directory (relocatable builds). */
  clientDir: string;
  /** Astro's assets prefix inside the client dir (hashed, immutable files). */
  assetsDir: string;
  /** The site's `base`, as Astro's manifest has it ("/", "/app", "/app/"). */
  base?: string;
  trailingSlash?: AstroConfig['trailingSlash'];
  buildFormat?: AstroConfig['build']['format'];
  /** STATIC_HEADERS_FILE when the build wrote one (relative to the server entry's directory). */
  staticHeadersFile?: string;
}

/** One prerendered page's headers, keyed by its pathname without the base ("/", "/about"). */
export interface StaticHeadersEntry {
  pathname: string;
  headers: Array<{ key: string; value: string }>;
}

// Published as compiled JS (lib/adapter/*.js); in this repo it runs from src/ as .ts.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const serverEntrypoint = fileURLToPath(new URL(`./server-entry${ext}`, import.meta.url));
// A path, not the package name: Astro resolves the entrypoint from its own directory, where this
// package is not necessarily installed beside it (this repository, linked packages).
export const SESSION_DRIVER_ENTRYPOINT = fileURLToPath(new URL(`../session/driver${ext}`, import.meta.url));

function getAdapter(staticHeaders: boolean): AstroAdapter {
  return {
    name: ADAPTER_NAME,
    entrypointResolution: 'auto',
    serverEntrypoint,
    adapterFeatures: { buildOutput: 'server', staticHeaders },
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

/**
 * The Astro integration: `adapter: origin()` in astro.config. Like `@astrojs/node` 10.1.4 it
 * answers config redirects at runtime (`build.redirects: false`), serves `/_image` from disk
 * (`astro/assets/endpoint/node`) and, unless the site configures a session driver, stores
 * sessions in Redis when the server runs with REDIS_URL, else on disk under Astro's cache dir
 * (src/session/driver.ts decides at runtime). The site's own `image.endpoint` and
 * `session.driver` win.
 */
export default function origin(adapterOptions: OriginAdapterOptions = {}): AstroIntegration {
  const staticHeaders = adapterOptions.staticHeaders ?? false;
  const editRenderObjects = adapterOptions.shortLivedRenderObjects ?? true;
  // Filled in astro:config:done, once every integration has had its say; the virtual module is
  // loaded later, during the build.
  const options: BuildOptions = { clientDir: '.', assetsDir: '_astro' };
  let finalConfig: AstroConfig | undefined;
  let routeToHeaders: Map<string, { headers: Headers }> | undefined;
  return {
    name: ADAPTER_NAME,
    hooks: {
      'astro:config:setup': ({ config, updateConfig, logger, command }) => {
        defaultCacheProvider(config, updateConfig);
        let session = config.session;
        if (!session?.driver) {
          logger.info('Enabling sessions: Redis when the server has REDIS_URL, else files under the cache dir');
          session = {
            ...session,
            driver: {
              entrypoint: SESSION_DRIVER_ENTRYPOINT,
              config: { base: fileURLToPath(new URL('sessions', config.cacheDir)) } satisfies SessionDriverOptions,
            },
          };
        }
        updateConfig({
          build: { redirects: false },
          image: {
            endpoint: {
              route: config.image.endpoint.route ?? '_image',
              entrypoint:
                config.image.endpoint.entrypoint ??
                (command === 'dev' ? 'astro/assets/endpoint/dev' : NODE_IMAGE_ENDPOINT),
            },
          },
          session,
          vite: {
            plugins: [
              {
                name: OPTIONS_MODULE_ID,
                resolveId: (id: string) => (id === OPTIONS_MODULE_ID ? RESOLVED_OPTIONS_MODULE_ID : undefined),
                load: (id: string) =>
                  id === RESOLVED_OPTIONS_MODULE_ID ? `export default ${JSON.stringify(options)};` : undefined,
              },
              ...(editRenderObjects && command === 'build' ? [shortLivedRenderObjects()] : []),
            ],
          },
        });
      },
      'astro:config:done': ({ config, setAdapter }) => {
        finalConfig = config;
        Object.assign(options, {
          clientDir: path.relative(fileURLToPath(config.build.server), fileURLToPath(config.build.client)),
          assetsDir: config.build.assets,
          base: config.base,
          trailingSlash: config.trailingSlash,
          buildFormat: config.build.format,
          staticHeadersFile: staticHeaders && config.security.csp ? STATIC_HEADERS_FILE : undefined,
        } satisfies BuildOptions);
        setAdapter(getAdapter(staticHeaders));
      },
      'astro:build:generated': (params) => {
        routeToHeaders = params.routeToHeaders;
      },
      'astro:build:done': async () => {
        if (!finalConfig || !options.staticHeadersFile) return;
        // Astro leaves the CSP out of prerendered pages when the adapter says it sends it.
        const entries: StaticHeadersEntry[] = [];
        for (const [pathname, { headers }] of routeToHeaders ?? []) {
          const csp = headers.get('content-security-policy');
          if (csp) entries.push({ pathname, headers: [{ key: 'Content-Security-Policy', value: csp }] });
        }
        await writeFile(new URL(options.staticHeadersFile, finalConfig.build.server), JSON.stringify(entries));
      },
    },
  };
}
