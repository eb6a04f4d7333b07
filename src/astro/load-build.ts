import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildOptions, StaticHeadersEntry } from '../adapter/index.ts';
import { BuildLoadError } from '../errors.ts';
import type { AstroApp } from './astro-internals.ts';
import type { AstroNodeApi } from './bridge.ts';

export interface LoadedBuild {
  app: AstroApp;
  /** Absolute path of the build's client directory (static files, prerendered pages). */
  clientDir: string;
  /** URL prefix of Astro's hashed, immutable assets, e.g. "/_astro/". */
  assetsPrefix: string;
  /** The site's `base` ("/" when it has none). */
  base: string;
  trailingSlash: 'always' | 'never' | 'ignore';
  buildFormat: 'directory' | 'file' | 'preserve';
  /** Headers of prerendered pages (CSP, with the adapter's `staticHeaders`), by pathname without the base. */
  staticHeaders: StaticHeadersEntry[];
  /** The build's own copy of Astro's FetchState class (undefined in builds of older adapters). */
  fetchState?: unknown;
  /** Astro's Node request helpers, the build's own copy (a build of an older adapter: astro/app/node's). */
  astroNode: AstroNodeApi;
}

/**
 * Imports `<buildDir>/server/entry.mjs`, which our adapter emits, and checks it is one:
 * a build made with another adapter (or none) fails here with a message that says so.
 */
export async function loadBuild(buildDir: string): Promise<LoadedBuild> {
  const entry = path.resolve(buildDir, 'server', 'entry.mjs');
  let mod: { app?: AstroApp; options?: BuildOptions; FetchState?: unknown } & Partial<AstroNodeApi>;
  try {
    mod = await import(pathToFileURL(entry).href);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'ERR_MODULE_NOT_FOUND'
        ? `no Astro server build there: run \`astro build\` with the astro-fastify-origin adapter, or set BUILD_DIR`
        : (err as Error).message;
    throw new BuildLoadError(entry, hint, { cause: err });
  }
  if (!mod.app || !mod.options) {
    throw new BuildLoadError(
      entry,
      'it does not export { app, options }: it was not built with the astro-fastify-origin adapter (adapter: origin() in astro.config)',
    );
  }
  const { options } = mod;
  let staticHeaders: StaticHeadersEntry[] = [];
  if (options.staticHeadersFile) {
    const file = path.resolve(path.dirname(entry), options.staticHeadersFile);
    try {
      staticHeaders = JSON.parse(await readFile(file, 'utf8')) as StaticHeadersEntry[];
    } catch (err) {
      throw new BuildLoadError(
        entry,
        `cannot read ${file}, the headers of its prerendered pages (the adapter's staticHeaders): ${(err as Error).message}. Rebuild the site`,
        { cause: err },
      );
    }
  }
  return {
    app: mod.app,
    clientDir: path.resolve(path.dirname(entry), options.clientDir),
    assetsPrefix: `/${options.assetsDir.replace(/^\/|\/$/g, '')}/`,
    // Builds made before these options existed behave as they always did.
    base: options.base ?? '/',
    trailingSlash: options.trailingSlash ?? 'ignore',
    buildFormat: options.buildFormat ?? 'directory',
    staticHeaders,
    fetchState: mod.FetchState,
    astroNode:
      mod.createRequest && mod.getAbortControllerCleanup
        ? { createRequest: mod.createRequest, getAbortControllerCleanup: mod.getAbortControllerCleanup }
        : await import('astro/app/node'),
  };
}
