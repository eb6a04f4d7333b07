// Starts the real origin (real Astro build, real Fastify, real sockets) on ephemeral ports.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnOrigin as spawnProcess } from '../../load/lib/spawn-origin.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { type RunningOrigin, startOrigin } from '../../src/standalone.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_BUILD = path.join(ROOT, 'dist');
export const SECOND_SITE_BUILD = path.join(ROOT, 'test/fixtures/second-site/dist');

/** Configuration for tests: ephemeral ports, silent logs, the demo build, then `env` on top. */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'silent', BUILD_DIR: DEMO_BUILD, ...env });
}

export { freePort };

/** The origin in this test process. */
export async function startTestOrigin(env: Record<string, string> = {}): Promise<RunningOrigin> {
  return startOrigin(testConfig(env));
}

export interface OriginProcess {
  child: ChildProcess;
  url: string;
  metricsUrl: string;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The origin as its own process (`node <entry>`), as an operator runs it: the load scenarios'
 * harness (load/lib/spawn-origin.ts), with the defaults tests want — load shedding as
 * configured, none of npm start's Node flags unless asked (tests of both runtimes pass nodeArgs).
 */
export async function spawnOrigin(
  env: Record<string, string> = {},
  { entry = 'src/server.ts', args = [] as string[], nodeArgs = [] as string[], timeoutMs = 20_000 } = {},
): Promise<OriginProcess> {
  const [buildDir = env.BUILD_DIR ?? DEMO_BUILD, ...rest] = args;
  const server = await spawnProcess({
    name: 'test-origin',
    script: entry,
    buildDir,
    args: rest,
    nodeFlags: false,
    shedding: true,
    nodeArgs,
    timeoutMs,
    env: { LOG_LEVEL: 'warn', BUILD_DIR: DEMO_BUILD, ...env, METRICS_ENABLED: env.METRICS_ENABLED ?? 'true' },
  });
  return {
    child: server.child,
    url: server.url,
    metricsUrl: server.metricsUrl ?? '',
    output: () => server.log(Number.POSITIVE_INFINITY),
    stop: (signal = 'SIGTERM') => server.stop(30_000, signal),
  };
}

/** The JSON (pino) lines of a spawned origin's output; other lines are skipped. */
export function logLines(output: string): Array<Record<string, unknown>> {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Runs a command and resolves with its exit code and output (for promtool, CLI checks). */
export async function run(
  command: string,
  args: string[],
  { input, env }: { input?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const child = spawn(command, args, { cwd: ROOT, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  child.stdin.end(input ?? '');
  const [code] = await once(child, 'exit');
  return { code: code as number | null, output };
}

export interface Launched {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with [exit code, signal] when it exits. */
  exited: Promise<unknown[]>;
}

/**
 * Starts `command` in the repository with `env` over ours, collecting its output: for tests
 * that watch a process before it is ready (a primary forking, a start that must fail).
 */
export function launch(command: string, args: string[], env: Record<string, string>): Launched {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  return { child, output: () => output, exited: once(child, 'exit') };
}

/** The demo's largest docs page, uncached: one synchronous stretch of rendering (~2 300 queue nodes). */
export const LARGE_DOCS_PAGE = '/docs/load-testing/autocannon';

/**
 * An origin that starts one render a loop turn on any machine (RENDER_SLICE_MS=1: every render
 * of the large docs page takes longer), with no load shedding and no origin cache, that page
 * rendered `warmups` times first (compile, first renders), so tests meet a warm origin.
 */
export async function spawnOneRenderATurnOrigin(warmups: number): Promise<OriginProcess> {
  const origin = await spawnOrigin({ RENDER_SLICE_MS: '1', MAX_EVENT_LOOP_DELAY_MS: '0', CACHE_MAX_BYTES: '0' });
  try {
    for (let i = 0; i < warmups; i++) await (await fetch(origin.url + LARGE_DOCS_PAGE)).arrayBuffer();
  } catch (error) {
    await origin.stop();
    throw error;
  }
  return origin;
}
