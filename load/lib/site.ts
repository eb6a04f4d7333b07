// The demo site's pages the scenarios load: found from demo/pages and the build, not hard-coded,
// so the scenarios follow the site as it grows.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths.ts';

/** Pages that exist to fail or to probe, not to be benchmarked. */
const NOT_CONTENT = /(^|\/)(probe[^/]*|errors\/.*|404|500)\.mdx$/;

/**
 * URL paths of every static MDX page (demo/pages/**\/*.mdx, no [params]): the pages Astro
 * renders with the queue renderer when queuedRendering is on.
 */
export function mdxPages(): string[] {
  const pagesDir = path.join(ROOT, 'demo', 'pages');
  return readdirSync(pagesDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.mdx'))
    .map((e) => path.relative(pagesDir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .filter((file) => !file.includes('[') && !NOT_CONTENT.test(file))
    .map((file) => `/${file.replace(/\.mdx$/, '').replace(/(^|\/)index$/, '$1')}`)
    .map((url) => (url.length > 1 && url.endsWith('/') ? url.slice(0, -1) : url))
    .sort();
}

/** `paths` with the size of their 200 response from `baseUrl`, largest first (non-200s dropped). */
export async function bySize(
  baseUrl: string,
  paths: readonly string[],
): Promise<Array<{ path: string; bytes: number }>> {
  const sized = await Promise.all(
    paths.map(async (p) => {
      const res = await fetch(baseUrl + p);
      const bytes = (await res.arrayBuffer()).byteLength;
      return { path: p, bytes, ok: res.status === 200 };
    }),
  );
  return sized
    .filter((s) => s.ok)
    .map(({ path: p, bytes }) => ({ path: p, bytes }))
    .sort((a, b) => b.bytes - a.bytes);
}

/** The largest hashed asset (/_astro/…) of a build's client dir, as a URL path; undefined if none. */
export function largestAsset(buildDir: string): string | undefined {
  const clientDir = path.join(ROOT, buildDir, 'client');
  if (!existsSync(clientDir)) return undefined;
  let best: { url: string; size: number } | undefined;
  for (const e of readdirSync(clientDir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    const url = `/${path.relative(clientDir, full).split(path.sep).join('/')}`;
    if (!url.startsWith('/_astro/')) continue;
    const size = statSync(full).size;
    if (!best || size > best.size) best = { url, size };
  }
  return best?.url;
}

/** The demo's small pages made for the benchmarks (demo/pages/bench/, not in the docs nav). */
export const BENCH_PAGES = {
  /** A tiny .astro page: what a request costs around the render shows. */
  tiny: '/bench/tiny',
  /** An .astro page with 20 async components: the recursive renderer's streamed path. */
  async20: '/bench/async-20',
} as const;

export interface TargetChoice {
  tinyPath?: string;
  asyncPath?: string;
  mdxPath?: string;
  /** Another .astro page to add (e.g. the home page); none when empty. */
  astroPath?: string;
  assetPath?: string;
  withAsset?: boolean;
  /** Only these targets (by name); the largest MDX page is looked for only when 'mdx' is among them. */
  pages?: readonly string[];
}

/**
 * The benchmark targets: the tiny .astro page, the .astro page with 20 async components, the
 * largest MDX page (queue renderer) and, when asked, another .astro page and the largest
 * static asset. Sizes are read from `baseUrl`.
 */
export async function benchTargets(
  baseUrl: string,
  buildDir: string,
  c: TargetChoice = {},
): Promise<Array<{ name: string; paths: string[] }>> {
  const wanted = (name: string) => !c.pages || c.pages.includes(name);
  const targets: Array<{ name: string; paths: string[] }> = [];
  if (wanted('tiny')) targets.push({ name: 'tiny', paths: [c.tinyPath || BENCH_PAGES.tiny] });
  if (wanted('async-20')) targets.push({ name: 'async-20', paths: [c.asyncPath || BENCH_PAGES.async20] });
  if (wanted('mdx')) {
    // Rendering every MDX page once to find the largest takes a while (under callgrind, minutes).
    const mdxPath = c.mdxPath || (await bySize(baseUrl, mdxPages()))[0]?.path;
    if (!mdxPath) throw new Error('no MDX page found in demo/pages');
    targets.push({ name: 'mdx', paths: [mdxPath] });
  }
  if (c.astroPath && wanted('astro')) targets.push({ name: 'astro', paths: [c.astroPath] });
  if (c.withAsset && wanted('static')) {
    const assetPath = c.assetPath || largestAsset(buildDir);
    if (assetPath) targets.push({ name: 'static', paths: [assetPath] });
    else console.error('no /_astro/ asset in the build: the static-asset target is skipped');
  }
  return targets;
}
