// Shared by the test/stack/*.test.ts files: where the stack's files are, how to read them,
// and small process/network helpers. No side effects on import.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const at = (...parts: string[]): string => path.join(ROOT, ...parts);

export const FILES = {
  compose: at('docker-compose.yml'),
  dockerfile: at('Dockerfile'),
  dockerignore: at('.dockerignore'),
  envExample: at('.env.example'),
  prometheusConfig: at('grafana/prometheus/prometheus.yml'),
  rulesDir: at('grafana/prometheus/rules'),
  datasources: at('grafana/provisioning/datasources'),
  dashboardProviders: at('grafana/provisioning/dashboards'),
  dashboardsDir: at('grafana/dashboards'),
  rulesUnitTests: at('test/stack/alerts.promtool.yml'),
  installPrometheus: at('scripts/install-test-deps.sh'),
};

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
export const JOB = 'astro-origin';

export function readYaml<T = any>(file: string): T {
  return parseYaml(readFileSync(file, 'utf8')) as T;
}

export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => path.join(dir, name));
}

/** Installs Debian's prometheus package with the project's script when a binary is missing. */
export function ensurePrometheusInstalled(): void {
  if (existsSync(PROMETHEUS) && existsSync(PROMTOOL)) return;
  const result = spawnSync('bash', [FILES.installPrometheus], { stdio: 'inherit', timeout: 600_000 });
  if (result.status !== 0 || !existsSync(PROMETHEUS) || !existsSync(PROMTOOL)) {
    throw new Error(
      `scripts/install-test-deps.sh failed (status ${result.status}); prometheus and promtool are required`,
    );
  }
}

export function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

// ----------------------------------------------------------------------------- dashboards

export interface DashboardTarget {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  /** Grafana runs a range query for it (timeseries), else an instant one. */
  range: boolean;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: Record<string, any> };
  targets?: Array<{ expr?: string; refId?: string; range?: boolean; instant?: boolean; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<Record<string, any>> };
}

export function dashboardFiles(): string[] {
  return readdirSync(FILES.dashboardsDir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => path.join(FILES.dashboardsDir, name));
}

export function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested (collapsed) panels included, rows themselves included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export function dashboardTargets(): DashboardTarget[] {
  return dashboardFiles().flatMap((file) => {
    const dashboard = readDashboard(file);
    return allPanels(dashboard).flatMap((panel) =>
      (panel.targets ?? [])
        .filter((target) => typeof target.expr === 'string' && target.expr.trim() !== '')
        .map((target) => ({
          dashboard: dashboard.title,
          panel: panel.title,
          refId: target.refId ?? '?',
          expr: target.expr as string,
          range: target.instant !== true,
        })),
    );
  });
}

/** Grafana's variables, as the test substitutes them (an unknown one is left for the caller to catch). */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(
    /\$\{(\w+)(?::[^}]*)?\}|\$(\w+)/g,
    (whole, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      return Object.hasOwn(values, name) ? (values[name] as string) : whole;
    },
  );
}

// ----------------------------------------------------------------------------- compose

/** ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err} references in a string. */
export const INTERPOLATION = /\$\{(\w+)(?:(:?[-?])([^}]*))?\}/g;

/** Compose-style interpolation with `env` (unset → the default, or '' as compose does). */
export function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(INTERPOLATION, (_whole, name: string, op: string | undefined, arg: string | undefined) => {
    const set = env[name];
    if (op === ':-') return set === undefined || set === '' ? (arg ?? '') : set;
    if (op === '-') return set === undefined ? (arg ?? '') : set;
    if (op?.endsWith('?')) {
      if (set === undefined || (op === ':?' && set === '')) throw new Error(`compose would stop: ${name} ${arg}`);
      return set;
    }
    return set ?? '';
  });
}

export function parseEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match) env[match[1] as string] = (match[2] as string).trim();
  }
  return env;
}

/** Walks any YAML/JSON value, calling `visit` on every string in it. */
export function eachString(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) for (const item of value) eachString(item, visit);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) eachString(item, visit);
}

// ----------------------------------------------------------------------------- Dockerfile

export interface DockerInstruction {
  keyword: string;
  args: string;
}

export interface DockerStage {
  name: string;
  from: string;
  instructions: DockerInstruction[];
}

/** A small Dockerfile reader: continuation lines joined, comments dropped, split into stages. */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: DockerStage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) && current === '') continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continued instruction
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (!match) continue;
    const keyword = (match[1] as string).toUpperCase();
    const rest = match[2] as string;
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest);
      stages.push({ from: from?.[1] ?? '', name: from?.[2] ?? String(stages.length), instructions: [] });
    } else if (stages.length === 0 && keyword === 'ARG') {
      const [name, value = ''] = rest.split('=');
      args[(name as string).trim()] = value.trim();
    } else {
      stages.at(-1)?.instructions.push({ keyword, args: rest });
    }
  }
  return { args, stages };
}

/** COPY/ADD flags and operands: `--from=x --chown=y a b dest`. */
export function copyOperands(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = args.trim().split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [name, value = ''] = (words.shift() as string).slice(2).split('=');
    flags[name as string] = value;
  }
  const dest = words.pop() ?? '';
  return { flags, sources: words, dest };
}

/** A .dockerignore pattern as a RegExp: `*` and `?` stay within a segment, `**` spans any. */
function dockerignoreRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (pattern.startsWith('**/', i)) {
      source += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      source += '.*';
      i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Whether .dockerignore keeps `relativePath` out of the build context (last match wins). */
export function dockerIgnored(relativePath: string, patterns: string[]): boolean {
  let ignored = false;
  const parts = relativePath.split('/');
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const regex = dockerignoreRegExp((negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, ''));
    // A pattern matches the path itself or one of its parent directories.
    for (let i = 1; i <= parts.length; i++) {
      if (regex.test(parts.slice(0, i).join('/'))) {
        ignored = !negated;
        break;
      }
    }
  }
  return ignored;
}

export function readDockerignore(): string[] {
  return readFileSync(FILES.dockerignore, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

// ----------------------------------------------------------------------------- processes

/** A free TCP port on 127.0.0.1 (bound, read, closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export { sleep, waitFor } from '../helpers/wait.ts';

/** GET with a deadline; resolves to the status (and drains the body). */
export async function get(url: string, timeoutMs = 10_000): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer();
  return response.status;
}
