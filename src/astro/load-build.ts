import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildOptions } from '../adapter/index.ts';
import type { AstroApp } from './astro-internals.ts';

export interface LoadedBuild {
  app: AstroApp;
  /** Absolute path of the build's client directory (static files, prerendered pages). */
  clientDir: string;
  /** URL prefix of Astro's hashed, immutable assets, e.g. "/_astro/". */
  assetsPrefix: string;
  /** The build's own copy of Astro's FetchState class (undefined in builds of older adapters). */
  fetchState?: unknown;
}

export class BuildLoadError extends Error {
  override name = 'BuildLoadError';
}

/**
 * Imports `<buildDir>/server/entry.mjs`, which our adapter emits, and checks it is one:
 * a build made with another adapter (or none) fails here with a message that says so.
 */
export async function loadBuild(buildDir: string): Promise<LoadedBuild> {
  const entry = path.resolve(buildDir, 'server', 'entry.mjs');
  let mod: { app?: AstroApp; options?: BuildOptions; FetchState?: unknown };
  try {
    mod = await import(pathToFileURL(entry).href);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint =
      code === 'ERR_MODULE_NOT_FOUND'
        ? `no Astro server build there: run \`astro build\` with the astro-fastify-origin adapter, or set BUILD_DIR`
        : (err as Error).message;
    throw new BuildLoadError(`Cannot load the Astro build at ${entry}: ${hint}`, { cause: err });
  }
  if (!mod.app || !mod.options) {
    throw new BuildLoadError(
      `${entry} does not export { app, options }: it was not built with the astro-fastify-origin adapter (adapter: origin() in astro.config).`,
    );
  }
  return {
    app: mod.app,
    clientDir: path.resolve(path.dirname(entry), mod.options.clientDir),
    assetsPrefix: `/${mod.options.assetsDir.replace(/^\/|\/$/g, '')}/`,
    fetchState: mod.FetchState,
  };
}

/** Every file under the client dir as a URL path ("/_astro/x.js"), read once at start-up. */
export async function listClientFiles(clientDir: string): Promise<string[]> {
  try {
    const entries = await readdir(clientDir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => `/${path.relative(clientDir, path.join(e.parentPath, e.name)).split(path.sep).join('/')}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
