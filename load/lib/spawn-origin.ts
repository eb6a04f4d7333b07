// Starts servers as child processes on free 127.0.0.1 ports, waits until they answer, and
// stops them with SIGTERM. Every child's output goes to reports/logs/<name>-<port>.log.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { NODE_FLAGS, RUNTIME_V8_FLAGS } from '../../src/node-flags.ts';
import { ROOT, reportsDir } from './paths.ts';

export const HOST = '127.0.0.1';

/** A free TCP port on 127.0.0.1: bind port 0, read it, close. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface Server {
  name: string;
  /** http://127.0.0.1:PORT */
  url: string;
  /** http://127.0.0.1:PORT/metrics, for our origin with metrics on. */
  metricsUrl: string | undefined;
  child: ChildProcess;
  logFile: string;
  /** The last `bytes` of the log. */
  log(bytes?: number): string;
  /** `signal` (SIGTERM), then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<Server>();
process.once('exit', () => {
  for (const server of running) server.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.all([...running].map((s) => s.stop(2000))).finally(() => process.exit(130));
  });
}

export interface SpawnOptions {
  name: string;
  /** Node script, relative to the repository root. */
  script: string;
  args?: string[];
  nodeArgs?: string[];
  env: Record<string, string>;
  port: number;
  /** Path polled until it answers `ready(status)`. */
  readyPath: string;
  ready?: (status: number) => boolean;
  metricsUrl?: string;
  timeoutMs?: number;
  /** A command that runs node, e.g. valgrind and its options (lib/callgrind.ts); none by default. */
  wrapper?: readonly string[];
}

/** Spawns `[wrapper] node [nodeArgs] script [args]` and resolves once readyPath answers. */
export async function spawnServer(o: SpawnOptions): Promise<Server> {
  const logFile = path.join(reportsDir('logs'), `${o.name.replace(/[^\w.-]+/g, '_')}-${o.port}.log`);
  const fd = openSync(logFile, 'w');
  const [command, ...wrapperArgs] = [...(o.wrapper ?? []), process.execPath];
  const child = spawn(command!, [...wrapperArgs, ...(o.nodeArgs ?? []), o.script, ...(o.args ?? [])], {
    cwd: ROOT,
    env: { ...inheritedEnv(), ...o.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const url = `http://${HOST}:${o.port}`;
  const log = (bytes = 4000) => {
    const text = readFileSync(logFile, 'utf8');
    return text.slice(-bytes);
  };
  let exited: Promise<number | null> | undefined;
  const server: Server = {
    name: o.name,
    url,
    metricsUrl: o.metricsUrl,
    child,
    logFile,
    log,
    stop(graceMs = 15_000, signal = 'SIGTERM') {
      exited ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const done = once(child, 'exit');
          child.kill(signal);
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await done;
          clearTimeout(timer);
        }
        running.delete(server);
        return child.exitCode;
      })();
      return exited;
    },
  };
  running.add(server);
  const ready = o.ready ?? ((status: number) => status === 200);
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(server);
      throw new Error(
        `${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready; log ${logFile}:\n${log()}`,
      );
    }
    const status = await statusOf(url + o.readyPath);
    if (status && ready(status)) return server;
    if (Date.now() > deadline) {
      await server.stop(1000);
      throw new Error(`${o.name} not ready within ${o.timeoutMs ?? 30_000} ms; log ${logFile}:\n${log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * GET on a connection of its own, closed after the answer: polling leaves no idle keep-alive
 * connection behind (tests of MAX_CONNECTIONS and of shutdown count connections). 0 if none.
 */
export function statusOf(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const request = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
  });
}

/** Our environment minus the scenarios' own LOAD_* options and npm's noise. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('LOAD_') && !k.startsWith('npm_')) env[k] = v;
  }
  return env;
}

export interface OriginOptions {
  name?: string;
  /** Build directory, relative to the root (default dist). */
  buildDir?: string;
  /** The server script (default src/server.ts; the compiled package: lib/src/server.js). */
  script?: string;
  /** Arguments after the build directory. */
  args?: string[];
  /** Run with the origin's Node flags (src/node-flags.ts), as `npm start` and the Docker image do (default true). */
  nodeFlags?: boolean;
  /** Extra origin environment (POOL_POLICY, METRICS_ENABLED, WORKERS…). */
  env?: Record<string, string>;
  nodeArgs?: string[];
  /** Keep the origin's load shedding (503 past its overload limits); off by default here. */
  shedding?: boolean;
  /** Keep the origin cache on (the demo caches /docs/**); off by default here, see NO_ORIGIN_CACHE. */
  cache?: boolean;
  /** How long to wait for /readyz (default 30 s). */
  timeoutMs?: number;
  /** Listen here instead of a free port (a restarted instance keeps its load balancer slot). */
  port?: number;
  metricsPort?: number;
  /** A command that runs node (SpawnOptions.wrapper). */
  wrapper?: readonly string[];
}

/**
 * Load shedding off: the scenarios measure capacity and isolation, and a 503 answered at once
 * would both fail the safety check and inflate req/s. Overload behaviour has its own tests.
 */
export const NO_SHEDDING = {
  MAX_EVENT_LOOP_DELAY_MS: '0',
  MAX_EVENT_LOOP_UTILIZATION: '0',
  MAX_HEAP_USED_BYTES: '0',
  MAX_RSS_BYTES: '0',
};

/**
 * The origin cache off: the scenarios and benchmarks measure rendering, and a cached docs page
 * would measure the cache instead. The cache's own tests and bench row turn it on (`cache: true`
 * or CACHE_MAX_BYTES in `env`).
 */
export const NO_ORIGIN_CACHE = { CACHE_MAX_BYTES: '0' };

/**
 * Our origin: `node <NODE_FLAGS> src/server.ts <buildDir>` with LOG_LEVEL=warn (no per-request log lines:
 * the load generator shares the machine) and load shedding off, unless env says otherwise.
 */
export async function spawnOrigin({
  name = 'origin',
  buildDir = 'dist',
  script = 'src/server.ts',
  args = [],
  nodeFlags = true,
  env = {},
  nodeArgs = [],
  shedding = false,
  cache = false,
  timeoutMs,
  wrapper,
  ...ports
}: OriginOptions = {}): Promise<Server> {
  const port = ports.port ?? (await freePort());
  const metricsPort = ports.metricsPort ?? (await freePort());
  const metricsOn = env.METRICS_ENABLED === undefined || /^(true|1)$/i.test(env.METRICS_ENABLED);
  return spawnServer({
    name,
    script,
    args: [buildDir, ...args],
    // As `npm start` and the Docker image run it.
    nodeArgs: [...(nodeFlags ? NODE_FLAGS : []), ...nodeArgs],
    port,
    env: {
      LOG_LEVEL: 'warn',
      ...(shedding ? {} : NO_SHEDDING),
      ...(cache ? {} : NO_ORIGIN_CACHE),
      ...env,
      HOST,
      PORT: String(port),
      METRICS_HOST: HOST,
      METRICS_PORT: String(metricsPort),
    },
    readyPath: '/readyz',
    metricsUrl: metricsOn ? `http://${HOST}:${metricsPort}/metrics` : undefined,
    timeoutMs,
    wrapper,
  });
}

/**
 * Ours as the benchmarks compare it: its default configuration (logs at info, one line per
 * request; metrics on; POOL_POLICY=off) in one process, with `env` on top. spawnOrigin's own
 * default is logs at warn, for the scenarios that are not about cost.
 */
export function benchOursEnv(env: Record<string, string> = {}): Record<string, string> {
  return { POOL_POLICY: 'off', WORKERS: '1', LOG_LEVEL: 'info', METRICS_ENABLED: 'true', ...env };
}

/** The same site built with @astrojs/node (standalone): `node <buildDir>/server/entry.mjs`. */
export async function spawnAstroNode({
  name = '@astrojs/node',
  buildDir = 'dist-node',
  env = {},
  nodeArgs = [],
  wrapper,
  timeoutMs,
}: OriginOptions = {}): Promise<Server> {
  return spawnPeer({ name, script: path.join(buildDir, 'server', 'entry.mjs'), nodeArgs, env, wrapper, timeoutMs });
}

/**
 * The Node flags a peer server (bare, the ladder's rungs) runs with to match our origin: npm
 * start's NODE_FLAGS, and on its command line the V8 flags our origin sets for itself.
 */
export const PEER_NODE_FLAGS: readonly string[] = [...NODE_FLAGS, ...RUNTIME_V8_FLAGS];

/**
 * The bare yardstick (load/bare-server.ts): node:http around the same build's App, nothing
 * else. Run with the same Node and V8 flags as our origin (PEER_NODE_FLAGS), so the two differ
 * only in the server code.
 */
export async function spawnBare({
  name = 'bare',
  buildDir = 'dist',
  nodeFlags = true,
  env = {},
  nodeArgs = [],
  wrapper,
  timeoutMs,
}: OriginOptions = {}): Promise<Server> {
  return spawnPeer({
    name,
    script: path.join('load', 'bare-server.ts'),
    args: [buildDir],
    nodeArgs: [...(nodeFlags ? PEER_NODE_FLAGS : []), ...nodeArgs],
    wrapper,
    timeoutMs,
    // The demo enables Astro's cache with our provider, which runs inside app.render() too:
    // off, as for our origin, or bare would be timing cache hits.
    env: { ...NO_ORIGIN_CACHE, ...env },
  });
}

/** A server with no /readyz (bare, @astrojs/node) on a free port: ready once `/` answers below 500. */
export async function spawnPeer(o: Omit<SpawnOptions, 'port' | 'readyPath' | 'ready'>): Promise<Server> {
  const port = await freePort();
  return spawnServer({
    ...o,
    port,
    env: { ...o.env, HOST, PORT: String(port) },
    readyPath: '/',
    ready: (status) => status > 0 && status < 500,
  });
}

/** Node flags that load the scenarios' preload (gc on SIGURG, optional exit on SIGTERM). */
export function preloadArgs({ gc = false }: { gc?: boolean } = {}): string[] {
  return [...(gc ? ['--expose-gc'] : []), '--import', path.join(ROOT, 'load', 'lib', 'preload.ts')];
}
