// The dashboards against a real Prometheus (Debian's 2.42, installed by
// scripts/install-test-deps.sh when absent): the origin runs on free loopback ports,
// Prometheus scrapes it every second with the shipped scrape config (target rewritten) and
// alert rules, traffic hits MDX, .astro, endpoint, 404 and 500 routes, then every PromQL
// expression of every shipped dashboard is evaluated through Prometheus' HTTP API, as Grafana
// would run it. Any error, or any query that returns no series, fails the test.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import {
  at,
  type DashboardTarget,
  dashboardTargets,
  ensurePrometheusInstalled,
  FILES,
  freePort,
  get,
  JOB,
  PROMETHEUS,
  promtool,
  ROOT,
  readYaml,
  sleep,
  substituteVariables,
  waitFor,
} from './stack-helpers.ts';

const SCRAPE_INTERVAL = '1s';
/** What the test puts for Grafana's $__rate_interval: >= 4 scrapes at 1s. */
const RATE_INTERVAL = '1m';
/** What the test puts for $__range (the dashboard's time range, for range-wide stats). */
const RANGE = '5m';

interface Spawned {
  child: ChildProcess;
  output: () => string;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

async function stop(spawned: Spawned | undefined): Promise<void> {
  if (!spawned || spawned.child.exitCode !== null || spawned.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => spawned.child.once('exit', () => resolve()));
  spawned.child.kill('SIGTERM');
  const timer = setTimeout(() => spawned.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

interface Series {
  metric: Record<string, string>;
  value?: [number, string];
  values?: Array<[number, string]>;
}

describe('dashboards against a real Prometheus', { timeout: 240_000 }, () => {
  let origin: Spawned | undefined;
  let prometheus: Spawned | undefined;
  let workDir = '';
  let siteUrl = '';
  let promUrl = '';
  let instance = '';

  async function api<T>(pathAndQuery: string, form?: Record<string, string>): Promise<PromResponse<T>> {
    const response = await fetch(`${promUrl}${pathAndQuery}`, {
      method: form ? 'POST' : 'GET',
      body: form ? new URLSearchParams(form) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    return (await response.json()) as PromResponse<T>;
  }

  /** Runs a dashboard expression as Grafana does: range query for timeseries, instant for stats. */
  async function evaluate(target: DashboardTarget, values: Record<string, string>) {
    const expr = substituteVariables(target.expr, values);
    const left = expr.match(/\$\{?\w+/g);
    if (left) return { expr, error: `unsubstituted variable(s) ${left.join(', ')}`, series: [] as Series[] };
    const now = Date.now() / 1000;
    const result = target.range
      ? await api<{ result: Series[] }>('/api/v1/query_range', {
          query: expr,
          start: String(now - 60),
          end: String(now),
          step: '1',
        })
      : await api<{ result: Series[] }>('/api/v1/query', { query: expr, time: String(now) });
    if (result.status !== 'success')
      return { expr, error: `${result.errorType}: ${result.error}`, series: [] as Series[] };
    return { expr, error: undefined, series: result.data.result };
  }

  /** Requests that make every panel non-empty: each renderer, a 404, a 500, static files. */
  async function drive(rounds: number): Promise<Map<string, number>> {
    const paths = [
      '/',
      '/docs/',
      '/about',
      '/probe?token=stack', // MDX page
      '/probe-astro?token=stack', // .astro page
      '/api/echo', // endpoint
      '/does-not-exist', // 404
      '/errors/throw', // 500
    ];
    const statuses = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        paths.map(async (p) => {
          statuses.set(p, await get(`${siteUrl}${p}`));
        }),
      );
    }
    return statuses;
  }

  // If the test process dies without running after(), take the children with it.
  const killChildren = () => {
    prometheus?.child.kill('SIGKILL');
    origin?.child.kill('SIGKILL');
  };

  before(async () => {
    process.once('exit', killChildren);
    ensurePrometheusInstalled();
    if (!existsSync(at('dist/server/entry.mjs'))) {
      const build = spawnSync(process.execPath, [at('node_modules/astro/bin/astro.mjs'), 'build'], {
        cwd: ROOT,
        stdio: 'inherit',
        timeout: 300_000,
        env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
      });
      assert.equal(build.status, 0, 'astro build of the demo site failed');
    }
    workDir = mkdtempSync(path.join(tmpdir(), 'astro-origin-stack-'));
    const [sitePort, metricsPort, promPort] = [await freePort(), await freePort(), await freePort()];

    origin = start(process.execPath, ['src/server.ts'], {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(sitePort),
      METRICS_ENABLED: 'true',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      BUILD_DIR: 'dist',
      POOL_POLICY: 'off',
      WORKERS: '1',
      LOG_LEVEL: 'warn',
    });
    siteUrl = `http://127.0.0.1:${sitePort}`;
    await waitFor("the origin's /readyz", 30_000, async () => {
      if (origin?.child.exitCode !== null) throw new Error(`origin exited: ${origin?.output()}`);
      return (await get(`${siteUrl}/readyz`, 2000)) === 200 ? true : undefined;
    });

    // The shipped scrape config, with the compose service's DNS discovery swapped for the test's address.
    const config = readYaml(FILES.prometheusConfig);
    const job = config.scrape_configs.find((c: { job_name: string }) => c.job_name === JOB);
    assert.deepEqual(
      job.dns_sd_configs.map((c: { names: string[]; port: number }) => [c.names, c.port]),
      [[['origin'], 9464]],
    );
    delete job.dns_sd_configs;
    job.static_configs = [{ targets: [`127.0.0.1:${metricsPort}`] }];
    for (const other of config.scrape_configs) {
      if (other !== job) other.static_configs = [{ targets: [`127.0.0.1:${promPort}`] }];
    }
    config.global = {
      ...config.global,
      scrape_interval: SCRAPE_INTERVAL,
      scrape_timeout: SCRAPE_INTERVAL,
      evaluation_interval: SCRAPE_INTERVAL,
    };
    config.rule_files = [path.join(FILES.rulesDir, '*.yml')];
    const configFile = path.join(workDir, 'prometheus.yml');
    writeFileSync(configFile, stringifyYaml(config));
    const check = promtool('check', 'config', configFile);
    assert.equal(check.status, 0, check.output);

    prometheus = start(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { ...process.env },
    );
    promUrl = `http://127.0.0.1:${promPort}`;
    await waitFor('Prometheus /-/ready', 30_000, async () => {
      if (prometheus?.child.exitCode !== null) throw new Error(`prometheus exited: ${prometheus?.output()}`);
      return (await get(`${promUrl}/-/ready`, 2000)) === 200 ? true : undefined;
    });
    instance = `127.0.0.1:${metricsPort}`;
    await waitFor('a successful scrape of the origin', 30_000, async () => {
      const targets = await api<{ activeTargets: Array<{ labels: Record<string, string>; health: string }> }>(
        '/api/v1/targets',
      );
      return targets.data.activeTargets.some(
        (t) => t.labels.job === JOB && t.labels.instance === instance && t.health === 'up',
      )
        ? true
        : undefined;
    });

    // Traffic spread over several scrapes, so that rate() has two samples of every series.
    const statuses = await drive(20);
    assert.equal(statuses.get('/errors/throw'), 500, 'the 500 route answers 500');
    assert.equal(statuses.get('/does-not-exist'), 404);
    for (const p of ['/', '/docs/', '/probe?token=stack', '/probe-astro?token=stack'])
      assert.equal(statuses.get(p), 200, p);
    for (let i = 0; i < 4; i++) {
      await sleep(1000);
      await drive(10);
    }
  });

  after(async () => {
    process.off('exit', killChildren);
    await stop(prometheus);
    await stop(origin);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('the $instance variable query finds the scraped origin', async () => {
    const result = await api<string[]>(
      `/api/v1/label/instance/values?${new URLSearchParams({ 'match[]': `http_requests_in_flight{job="${JOB}"}` })}`,
    );
    assert.equal(result.status, 'success');
    assert.deepEqual(result.data, [instance]);
  });

  const targets = dashboardTargets();

  test('every dashboard expression evaluates without error and returns series', async () => {
    assert.ok(targets.length >= 30, `expected the shipped dashboards' queries, found ${targets.length}`);
    // "All" (the default), and the one instance as Grafana puts a selected value: regex-escaped.
    const selections: Array<Record<string, string>> = [
      { instance: '.*', __rate_interval: RATE_INTERVAL, __range: RANGE },
      { instance: instance.replace(/\./g, '\\\\.'), __rate_interval: RATE_INTERVAL, __range: RANGE },
    ];
    let failures: string[] = [];
    let errors = 0;
    // Series appear as the scrapes after the traffic come in: poll (with a little traffic, so
    // rate() windows stay fresh), bounded. An error will not go away: stop at the first.
    await waitFor(
      'every dashboard query to return series',
      45_000,
      async () => {
        failures = [];
        errors = 0;
        await drive(1);
        for (const values of selections) {
          for (const target of targets) {
            const { expr, error, series } = await evaluate(target, values);
            if (error) errors++;
            if (error)
              failures.push(`${target.dashboard} / ${target.panel} [${target.refId}] ERROR ${error}\n    ${expr}`);
            else if (series.length === 0)
              failures.push(
                `${target.dashboard} / ${target.panel} [${target.refId}] NO SERIES (instance=${values.instance})\n    ${expr}`,
              );
          }
        }
        return failures.length === 0 || errors > 0 ? true : undefined;
      },
      1000,
    ).catch(() => undefined);
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${targets.length * selections.length} evaluations failed:\n${failures.join('\n')}`,
    );
  });

  /** The last value of each series a panel's query returns, keyed by its labels. */
  async function panelValues(
    panel: RegExp,
    refId = 'A',
  ): Promise<Array<{ labels: Record<string, string>; value: number }>> {
    const target = targets.find((t) => panel.test(t.panel) && t.refId === refId);
    assert.ok(target, `no panel ${panel}`);
    const { error, series } = await evaluate(target, {
      instance: '.*',
      __rate_interval: RATE_INTERVAL,
      __range: RANGE,
    });
    assert.equal(error, undefined);
    return series.map((s) => ({ labels: s.metric, value: Number(s.value?.[1] ?? s.values?.at(-1)?.[1]) }));
  }

  test('the panels show what the traffic did', async () => {
    const byStatus = await panelValues(/^Request rate by route and status$/);
    const statuses = new Set(byStatus.map((s) => s.labels.status_code));
    for (const code of ['200', '404', '500'])
      assert.ok(statuses.has(code), `request rate has no ${code} series: ${[...statuses]}`);
    assert.ok(byStatus.some((s) => s.labels.route === '/errors/throw' && s.labels.status_code === '500'));

    const [ratio] = await panelValues(/^5xx ratio$/);
    assert.ok(ratio && ratio.value > 0 && ratio.value < 1, `5xx ratio ${ratio?.value}`);

    const renderers = new Set((await panelValues(/^Render duration by renderer/)).map((s) => s.labels.renderer));
    for (const renderer of ['queue', 'recursive', 'endpoint'])
      assert.ok(renderers.has(renderer), `no ${renderer} renders: ${[...renderers]}`);

    const policies = await panelValues(/^Pool policy in force$/);
    assert.deepEqual(
      policies.map((p) => p.labels.policy),
      ['off'],
    );

    const acquires = new Map(
      (await panelValues(/^Pool acquires: reused vs new/)).map((s) => [s.labels.source, s.value]),
    );
    assert.ok((acquires.get('new') ?? 0) > 0, 'queue renders allocate nodes');
    assert.equal(acquires.get('reused'), 0, 'policy off never reuses a node');
    const releases = new Map(
      (await panelValues(/^Pool releases: pooled vs dropped/)).map((s) => [s.labels.outcome, s.value]),
    );
    assert.ok((releases.get('dropped') ?? 0) > 0);
    assert.equal(releases.get('pooled'), 0);

    const [breach] = await panelValues(/^Policy breach/);
    assert.equal(breach?.value, 0, 'no reuse while off');
  });

  test('the alert rules evaluate cleanly and none fires on a healthy origin under policy off', async () => {
    const groups = await waitFor('every rule to be evaluated', 20_000, async () => {
      const rules = await api<{
        groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }>;
      }>('/api/v1/rules');
      const all = rules.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
    });
    for (const rule of groups) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    const alerts = await api<{ alerts: Array<{ labels: { alertname: string } }> }>('/api/v1/alerts');
    const active = alerts.data.alerts.map((a) => a.labels.alertname);
    for (const name of ['AstroOriginDown', 'AstroOriginPoolReuseWhilePolicyOff', 'AstroOriginEventLoopLag']) {
      assert.ok(!active.includes(name), `${name} is active: ${active}`);
    }
  });
});
