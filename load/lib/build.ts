// The three builds of the demo site the scenarios use, each built when missing or older
// than the site's sources (or always with force).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT, reportsDir } from './paths.ts';

export interface BuildKind {
  /** Astro config, relative to the root. */
  config: string;
  /** Output directory, relative to the root. */
  outDir: string;
  /** Pass outDir as --outDir (when the config's own outDir is another one). */
  outDirFlag?: boolean;
  what: string;
}

export const BUILDS = {
  /** The demo as shipped (`npm run build` → dist/): what the tests use. */
  demo: { config: 'astro.config.mjs', outDir: 'dist', what: 'astro-fastify-origin adapter, queuedRendering on' },
  /**
   * The demo in the scenarios' own directory, so that an `astro build` of dist/ during a
   * benchmark (a rebuild empties dist/ first) cannot pull pages from under a running origin;
   * without the experimental cache, as the peer build (load/astro.config.load.mjs).
   */
  origin: {
    config: 'load/astro.config.load.mjs',
    outDir: 'dist-load',
    outDirFlag: true,
    what: 'astro-fastify-origin adapter, queuedRendering on, no experimental cache',
  },
  /** Our adapter, queue renderer off: every page through the recursive renderer. */
  recursive: {
    config: 'load/astro.config.recursive.mjs',
    outDir: 'dist-recursive',
    what: 'astro-fastify-origin adapter, queuedRendering off',
  },
  /** The official @astrojs/node adapter, standalone, queue renderer on. */
  node: {
    config: 'load/astro.config.node.mjs',
    outDir: 'dist-node',
    what: '@astrojs/node standalone, queuedRendering on',
  },
} as const satisfies Record<string, BuildKind>;

export type BuildName = keyof typeof BUILDS;

/**
 * What goes into a build of the site: sources, public files, the config, and src/: besides the
 * adapter, Astro bundles the modules it names into the server build (the session driver, the
 * cache provider and what they import).
 */
const SOURCES = ['demo', 'src'];

function newestMtime(target: string): number {
  const full = path.join(ROOT, target);
  if (!existsSync(full)) return 0;
  const stat = statSync(full);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(full, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds `name` unless its entry is newer than every source; returns the outDir (relative). */
export async function ensureBuild(name: BuildName, { force = false, quiet = false } = {}): Promise<string> {
  const kind = BUILDS[name];
  const entry = path.join(ROOT, kind.outDir, 'server', 'entry.mjs');
  const built = existsSync(entry) ? statSync(entry).mtimeMs : 0;
  const sources = Math.max(...[...SOURCES, kind.config, 'astro.config.mjs'].map(newestMtime));
  if (!force && built > sources) return kind.outDir;
  if (!quiet) console.error(`building ${kind.outDir}/ (${kind.what})…`);
  const logFile = path.join(reportsDir('logs'), `build-${name}.log`);
  const fd = openSync(logFile, 'w');
  const args = [
    'build',
    '--config',
    kind.config,
    ...('outDirFlag' in kind && kind.outDirFlag ? ['--outDir', kind.outDir] : []),
  ];
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules/astro/bin/astro.mjs'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const [code] = await once(child, 'exit');
  if (code !== 0) {
    throw new Error(
      `astro ${args.join(' ')} failed (${code}); log ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
    );
  }
  return kind.outDir;
}

/** The build to use: built when missing or stale if `build`, else as it is (it must exist). */
export async function buildDirFor(name: BuildName, build: boolean): Promise<string> {
  if (build) return ensureBuild(name);
  const kind = BUILDS[name];
  if (!existsSync(path.join(ROOT, kind.outDir, 'server', 'entry.mjs'))) {
    throw new Error(`${kind.outDir}/ has no build (${kind.what}); run without --no-build`);
  }
  return kind.outDir;
}
