// Starts the real origin (real Astro build, real Fastify, real sockets) on ephemeral ports.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../load/lib/spawn-origin.ts';
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

/** The origin as its own process (`node <entry>`), as an operator runs it. */
export async function spawnOrigin(
  env: Record<string, string> = {},
  { entry = 'src/server.ts', args = [] as string[], nodeArgs = [] as string[], timeoutMs = 20_000 } = {},
): Promise<OriginProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'warn',
      BUILD_DIR: DEMO_BUILD,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`origin exited with ${child.exitCode} before it was ready:\n${output}`);
    const ready = await isReady(url);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`origin not ready within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

/**
 * GET /readyz on a connection of its own, closed after the answer: polling leaves no idle
 * keep-alive connection behind (tests of MAX_CONNECTIONS and of shutdown count connections).
 */
export function isReady(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    httpGet(`${url}/readyz`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  });
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
