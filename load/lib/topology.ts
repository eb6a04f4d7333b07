// Several origins as they run in production, on loopback: one redis-server (shared sessions,
// cache purges passed on between instances), N origin processes with REDIS_URL, HAProxy in front
// (health checks on /readyz, retries), and optionally Prometheus scraping every instance as
// job="astro-origin". Used by `npm run cluster:local` and test/topology/. Every process it
// starts is stopped by its pid: stop(), or SIGKILL when this process exits without calling it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { reportsDir } from './paths.ts';
import { freePort, HOST, type Server, spawnOrigin, statusOf } from './spawn-origin.ts';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const HAPROXY = '/usr/sbin/haproxy';
export const PROMETHEUS = '/usr/bin/prometheus';
/** The scrape job the Grafana dashboard and the alert rules select on. */
export const JOB = 'astro-origin';
/** HAProxy's health-check interval: how soon a draining instance leaves the rotation. */
export const CHECK_INTERVAL_MS = 250;

/** A non-Node process of the topology (redis-server, haproxy, prometheus). */
interface Daemon {
  name: string;
  child: ChildProcess;
  logFile: string;
  log(): string;
}

const daemons = new Set<Daemon>();
process.once('exit', () => {
  for (const daemon of daemons) if (daemon.child.pid) daemon.child.kill('SIGKILL');
});

function startDaemon(name: string, command: string, args: string[]): Daemon {
  const logFile = path.join(reportsDir('logs'), `${name}-${process.pid}.log`);
  const fd = openSync(logFile, 'w');
  const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const daemon = { name, child, logFile, log: () => readFileSync(logFile, 'utf8').slice(-4000) };
  daemons.add(daemon);
  return daemon;
}

async function stopDaemon(daemon: Daemon, graceMs = 5000): Promise<void> {
  const { child } = daemon;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  daemons.delete(daemon);
}

async function waitUntil(what: string, daemon: Daemon | undefined, timeoutMs: number, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (daemon && (daemon.child.exitCode !== null || daemon.child.signalCode !== null))
      throw new Error(`${daemon.name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}): ${daemon.log()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} not ready within ${timeoutMs} ms${daemon ? `: ${daemon.log()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True once redis-server answers PING with PONG. */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port }, () => socket.write('PING\r\n'));
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('data', (data) => {
      resolve(data.toString().startsWith('+PONG'));
      socket.end();
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  pid: number | undefined;
  /** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * A throwaway redis-server on `port` (a free one by default): no persistence, nothing written
 * to disk, protected mode on, loopback only. Resolves once it answers PING.
 */
export async function startRedis({ dir, port }: { dir: string; port?: number }): Promise<RedisServer> {
  const redisPort = port ?? (await freePort());
  const daemon = startDaemon('redis-server', REDIS_SERVER, [
    ...['--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no'],
    ...['--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes'],
  ]);
  try {
    await waitUntil('redis-server', daemon, 10_000, () => redisPing(redisPort));
  } catch (err) {
    await stopDaemon(daemon);
    throw err;
  }
  return {
    url: `redis://${HOST}:${redisPort}`,
    port: redisPort,
    pid: daemon.child.pid,
    stop: () => stopDaemon(daemon),
  };
}

/** POST /cache/purge's bearer token on every instance of the topology (loopback only). */
export const PURGE_TOKEN = 'topology-purge-token';

export interface Instance {
  name: string;
  port: number;
  metricsPort: number;
  server: Server;
  /** http://127.0.0.1:PORT (this instance alone, not through HAProxy). */
  url: string;
}

export interface TopologyOptions {
  instances?: number;
  prometheus?: boolean;
  /** Prometheus scrape interval. */
  scrapeInterval?: string;
  /** Extra origin environment. */
  env?: Record<string, string>;
}

export interface Topology {
  /** HAProxy's frontend: what clients use. */
  url: string;
  /** HAProxy's stats page (CSV with `;csv`). */
  statsUrl: string;
  redisUrl: string;
  prometheusUrl: string | undefined;
  instances: Instance[];
  workDir: string;
  /** pids of everything running now, by name. */
  pids(): Record<string, number | undefined>;
  /** HAProxy's view of each server: UP, DOWN, MAINT… keyed by instance name. */
  backendStatus(): Promise<Record<string, string>>;
  /** SIGTERM instance i, wait for it to exit, start it again on the same ports, wait until HAProxy has it back. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

function haproxyConfig(frontendPort: number, statsPort: number, instances: Instance[]): string {
  return `# Written by load/lib/topology.ts for one run.
global
  maxconn 2000

defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  # A request refused by an instance that is closing (listener gone) or cut on an idle
  # keep-alive connection it just closed is sent again, to another instance ("redispatch 1":
  # on every retry, not only the last).
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
  # A busy instance answers /readyz late, not wrongly: only a 503 (draining) or a refused
  # connection takes it out; a check timing out at the interval would empty the backend under load.
  timeout check 2s

frontend site
  bind ${HOST}:${frontendPort}
  default_backend origins

frontend stats
  bind ${HOST}:${statsPort}
  stats enable
  stats uri /stats
  stats refresh 1s

backend origins
  balance roundrobin
  # A draining instance answers /readyz with 503: out of the rotation within one interval.
  option httpchk GET /readyz
  default-server inter ${CHECK_INTERVAL_MS}ms fall 1 rise 1
${instances.map((i) => `  server ${i.name} ${HOST}:${i.port} check`).join('\n')}
`;
}

function prometheusConfig(scrapeInterval: string, instances: Instance[]): string {
  return `# Written by load/lib/topology.ts for one run.
global:
  scrape_interval: ${scrapeInterval}
  scrape_timeout: ${scrapeInterval}
scrape_configs:
  - job_name: ${JOB}
    static_configs:
      - targets: [${instances.map((i) => `"${HOST}:${i.metricsPort}"`).join(', ')}]
`;
}

/** Starts the topology; on any failure stops what it had started and rethrows. */
export async function startTopology(o: TopologyOptions = {}): Promise<Topology> {
  const count = o.instances ?? 3;
  const workDir = mkdtempSync(path.join(tmpdir(), 'astro-origin-topology-'));
  const started: Daemon[] = [];
  const instances: Instance[] = [];
  let redis: RedisServer | undefined;
  const stopAll = async () => {
    await Promise.all(instances.map((i) => i.server?.stop(15_000)));
    await Promise.all([...started.map((d) => stopDaemon(d)), redis?.stop()]);
    rmSync(workDir, { recursive: true, force: true });
  };
  try {
    redis = await startRedis({ dir: workDir });
    const redisUrl = redis.url;

    // The origin cache as in production (the load harness turns it off by default), X-Cache on
    // every answer and the purge endpoint on: the tests watch purges cross instances.
    const env = { REDIS_URL: redisUrl, CACHE_DEBUG_HEADER: 'true', CACHE_PURGE_TOKEN: PURGE_TOKEN, ...o.env };
    const ports = await Promise.all(
      Array.from({ length: count }, async () => ({ port: await freePort(), metricsPort: await freePort() })),
    );
    const servers = await Promise.all(
      ports.map((p, i) => spawnOrigin({ name: `origin-${i + 1}`, env, cache: true, ...p, timeoutMs: 60_000 })),
    );
    servers.forEach((server, i) => {
      const p = ports[i] as { port: number; metricsPort: number };
      instances.push({ name: `origin-${i + 1}`, ...p, server, url: server.url });
    });

    const [frontendPort, statsPort] = [await freePort(), await freePort()];
    const haproxyFile = path.join(workDir, 'haproxy.cfg');
    writeFileSync(haproxyFile, haproxyConfig(frontendPort, statsPort, instances));
    // -db: stay in the foreground, so the pid we hold is HAProxy's own.
    const haproxy = startDaemon('haproxy', HAPROXY, ['-db', '-f', haproxyFile]);
    started.push(haproxy);
    const url = `http://${HOST}:${frontendPort}`;
    const statsUrl = `http://${HOST}:${statsPort}/stats`;
    const backendStatus = async (): Promise<Record<string, string>> => {
      const csv = await (await fetch(`${statsUrl};csv`)).text();
      const rows = csv.split('\n').map((line) => line.split(','));
      const header = (rows[0] as string[]).map((h) => h.replace(/^# /, ''));
      const [px, sv, status] = ['pxname', 'svname', 'status'].map((h) => header.indexOf(h)) as [number, number, number];
      return Object.fromEntries(
        rows.filter((r) => r[px] === 'origins' && r[sv]?.startsWith('origin-')).map((r) => [r[sv], r[status]]),
      );
    };
    const allUp = async () => Object.values(await backendStatus()).filter((s) => s === 'UP').length === count;
    await waitUntil('haproxy with every instance UP', haproxy, 20_000, allUp);

    let prometheus: Daemon | undefined;
    let prometheusUrl: string | undefined;
    if (o.prometheus) {
      const promPort = await freePort();
      const promFile = path.join(workDir, 'prometheus.yml');
      writeFileSync(promFile, prometheusConfig(o.scrapeInterval ?? '1s', instances));
      prometheus = startDaemon('prometheus', PROMETHEUS, [
        `--config.file=${promFile}`,
        `--storage.tsdb.path=${path.join(workDir, 'prometheus')}`,
        `--web.listen-address=${HOST}:${promPort}`,
        '--log.level=warn',
      ]);
      started.push(prometheus);
      prometheusUrl = `http://${HOST}:${promPort}`;
      await waitUntil(
        'prometheus',
        prometheus,
        30_000,
        async () => (await statusOf(`${prometheusUrl}/-/ready`)) === 200,
      );
    }

    return {
      url,
      statsUrl,
      redisUrl,
      prometheusUrl,
      instances,
      workDir,
      pids: () =>
        Object.fromEntries([
          ['redis-server', redis?.pid],
          ...started.map((d) => [d.name, d.child.pid]),
          ...instances.map((i) => [i.name, i.server.child.pid]),
        ]),
      backendStatus,
      async restart(i) {
        const instance = instances[i];
        if (!instance) throw new Error(`no instance ${i}: the topology has ${count}`);
        const code = await instance.server.stop(30_000);
        if (code !== 0) throw new Error(`${instance.name} exited ${code} on SIGTERM; log ${instance.server.logFile}`);
        instance.server = await spawnOrigin({
          name: instance.name,
          env,
          cache: true,
          port: instance.port,
          metricsPort: instance.metricsPort,
          timeoutMs: 60_000,
        });
        await waitUntil(`haproxy marking ${instance.name} UP`, haproxy, 20_000, allUp);
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export interface RollingRestartResult {
  /** Requests autocannon sent through HAProxy while the instances restarted one after another. */
  sent: number;
  responses: number;
  /** Non-2xx answers, connection errors and timeouts. */
  failed: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  seconds: number;
  /** How long each instance took from SIGTERM to back in HAProxy's rotation, ms. */
  restartMs: number[];
}

/**
 * Restarts every instance in turn under load through HAProxy; the load starts `warmupMs` before
 * the first restart and stops `cooldownMs` after the last one is back.
 */
export async function rollingRestart(
  topology: Topology,
  { connections = 8, paths = ['/', '/docs/', '/about'], warmupMs = 1000, cooldownMs = 1000, maxSeconds = 90 } = {},
): Promise<RollingRestartResult> {
  const started = performance.now();
  const instance = autocannon({
    url: topology.url,
    connections,
    duration: maxSeconds, // a bound: stopped as soon as the restarts are done
    timeout: 10,
    requests: paths.map((p) => ({ method: 'GET', path: p })),
  });
  const done = new Promise<autocannon.Result>((resolve, reject) => instance.on('done', resolve).on('error', reject));
  const restartMs: number[] = [];
  try {
    await new Promise((r) => setTimeout(r, warmupMs));
    for (let i = 0; i < topology.instances.length; i++) {
      const t = performance.now();
      await topology.restart(i);
      restartMs.push(Math.round(performance.now() - t));
    }
    await new Promise((r) => setTimeout(r, cooldownMs));
  } finally {
    instance.stop();
  }
  const r = await done;
  const responses = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
  return {
    // autocannon 9 counts requests written to the socket here (its typings leave it out).
    sent: (r.requests as autocannon.Histogram & { sent: number }).sent,
    responses,
    failed: r.non2xx + r.errors + r.timeouts,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, { count }]) => [code, count])),
    seconds: (performance.now() - started) / 1000,
    restartMs,
  };
}
