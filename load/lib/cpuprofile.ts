// Summarises a V8 .cpuprofile (node --cpu-prof): self time by package / area and by function,
// to say where a server's time goes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { markdownTable, percent } from './stats.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SummaryOptions {
  /** Functions listed (by self time). */
  top?: number;
  /**
   * Leave out the first `skipMs` of the profile: start-up (module loading, compiling) and
   * warm-up, so the summary is of the steady state under load.
   */
  skipMs?: number;
}

/** Where a frame belongs: a package, Node core, the site build, our src/, or V8 itself. */
export function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native: V8 builtins, libuv writes, JSON)';
  if (url.startsWith('node:internal/deps/undici')) return 'undici (Web Request/Headers/Response)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:'))
    return `node:${
      url
        .slice(5)
        .replace(/^internal\//, '')
        .split('/')[0]
    }`;
  if (/\/dist[^/]*\/server\//.test(url)) return 'Astro runtime + site (bundled in dist*/server)';
  if (/\/(src|routes)\//.test(url)) return 'astro-fastify-origin (src/, routes/)';
  if (/\/load\//.test(url)) return 'load/ (preload)';
  return url;
}

export interface ProfileSummary {
  totalMs: number;
  areas: Array<{ area: string; ms: number; share: number }>;
  functions: Array<{ name: string; where: string; area: string; ms: number; share: number }>;
}

export function summarizeProfile(file: string, options: number | SummaryOptions = {}): ProfileSummary {
  const { top = 15, skipMs = 0 } = typeof options === 'number' ? { top: options } : options;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let elapsedUs = 0;
  for (const [i, id] of profile.samples.entries()) {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsedUs += delta;
    if (elapsedUs < skipMs * 1000) continue;
    self.set(id, (self.get(id) ?? 0) + delta);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, { name: string; where: string; area: string; ms: number }>();
  let total = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const area = areaOf(url, functionName);
    const ms = us / 1000;
    total += ms;
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const where = url
      ? `${url.replace(/^file:\/\/.*?node_modules\//, '').replace(/^file:\/\/.*?\/(src|routes|dist[^/]*|load)\//, '$1/')}:${lineNumber + 1}`
      : '';
    const key = `${functionName}@${where}`;
    const f = functions.get(key) ?? { name: functionName || '(anonymous)', where, area, ms: 0 };
    f.ms += ms;
    functions.set(key, f);
  }
  const share = (ms: number) => ms / total;
  return {
    totalMs: total,
    areas: [...areas].map(([area, ms]) => ({ area, ms, share: share(ms) })).sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()]
      .map((f) => ({ ...f, share: share(f.ms) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  return files.length ? path.join(dir, files.sort().at(-1)!) : undefined;
}

export function profileMarkdown(title: string, s: ProfileSummary, areas = 12): string {
  return [
    `#### ${title}: self time by area (${(s.totalMs / 1000).toFixed(1)} s sampled)`,
    '',
    markdownTable(
      ['area', 'share'],
      s.areas.slice(0, areas).map((a) => [a.area, percent(a.share)]),
    ),
    '',
    `#### ${title}: top functions by self time`,
    '',
    markdownTable(
      ['function', 'where', 'share'],
      s.functions.map((f) => [f.name, f.where || f.area, percent(f.share)]),
    ),
  ].join('\n');
}
