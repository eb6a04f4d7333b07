// The monitoring stack's files, checked without Docker: docker-compose.yml against the
// Dockerfile, the Prometheus config and Grafana's provisioning; the Dockerfile's stages against
// the build context; the dashboards' structure; promtool on the config and the alert rules.
// test/stack/prometheus.test.ts runs every dashboard query against a real Prometheus.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import {
  allPanels,
  at,
  copyOperands,
  type DockerStage,
  dashboardFiles,
  dashboardTargets,
  dockerIgnored,
  eachString,
  ensurePrometheusInstalled,
  FILES,
  INTERPOLATION,
  interpolate,
  JOB,
  parseDockerfile,
  parseEnvFile,
  promtool,
  ROOT,
  readDashboard,
  readDockerignore,
  readYaml,
  yamlFiles,
} from './stack-helpers.ts';

const compose = readYaml(FILES.compose);
const envExample = parseEnvFile(FILES.envExample);
const services: Record<string, any> = compose.services;
const prometheusConfig = readYaml(FILES.prometheusConfig);
const dockerfile = parseDockerfile(readFileSync(FILES.dockerfile, 'utf8'));

/** A compose value with its variables resolved as `docker compose` would with .env.example. */
const resolve = (value: unknown): string => interpolate(String(value), envExample);

function environment(service: string): Record<string, string> {
  const env = services[service]?.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry: string) => {
        const [name, ...value] = entry.split('=');
        return [name, resolve(value.join('='))];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, resolve(value)]));
}

/** Container ports a service publishes on the host ("[ip:]host:container" or long syntax). */
function publishedContainerPorts(service: string): number[] {
  return (services[service]?.ports ?? []).map((port: unknown) => {
    if (typeof port === 'object' && port) return Number((port as { target: unknown }).target);
    return Number(resolve(port).split(':').at(-1)?.split('/')[0]);
  });
}

/** [source, target] of a service's bind mounts (short syntax "./src:/target[:ro]"). */
function bindMounts(service: string): Array<[string, string]> {
  return (services[service]?.volumes ?? [])
    .map((volume: unknown) => {
      if (typeof volume === 'object' && volume) {
        const v = volume as { type?: string; source?: string; target?: string };
        return v.type === 'bind' ? [resolve(v.source), v.target] : undefined;
      }
      const [source, target] = resolve(volume).split(':');
      return source?.startsWith('.') || source?.startsWith('/') ? [source, target] : undefined;
    })
    .filter(Boolean) as Array<[string, string]>;
}

/** The host path mounted at `containerPath` (or at one of its parents) in `service`. */
function hostPathFor(service: string, containerPath: string): string | undefined {
  for (const [source, target] of bindMounts(service)) {
    if (containerPath === target) return path.resolve(ROOT, source);
    if (containerPath.startsWith(`${target}/`))
      return path.resolve(ROOT, source, containerPath.slice(target.length + 1));
  }
  return undefined;
}

function flag(service: string, name: string): string | undefined {
  const command: string[] = (services[service]?.command ?? []).map(resolve);
  const prefix = `--${name}=`;
  return command.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
}

function stage(name: string): DockerStage {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `Dockerfile has no stage "${name}"`);
  return found;
}

function baseImage(s: DockerStage): string {
  return interpolate(s.from, dockerfile.args);
}

/** "node:22.23.3-bookworm-slim" → [22, 23, 3]. */
function imageVersion(image: string): number[] | undefined {
  const match = /:v?(\d+)\.(\d+)\.(\d+)(?:[-_][\w.-]+)?$/.exec(image);
  return match ? match.slice(1, 4).map(Number) : undefined;
}

describe('docker-compose.yml', () => {
  test('has the origin, Prometheus, Grafana and optional load and Redis services', () => {
    assert.deepEqual(Object.keys(services).sort(), ['grafana', 'load', 'origin', 'prometheus', 'redis']);
    assert.deepEqual(services.load.profiles, ['load'], 'load runs only with --profile load');
    assert.deepEqual(services.redis.profiles, ['redis'], 'Redis runs only with --profile redis');
    for (const name of ['origin', 'prometheus', 'grafana'])
      assert.equal(services[name].profiles, undefined, `${name} starts by default`);
  });

  test('every variable it uses is documented in .env.example, with the same default', () => {
    const used = new Map<string, string | undefined>();
    eachString(compose, (s) => {
      for (const match of s.matchAll(INTERPOLATION))
        used.set(match[1] as string, match[2] === ':-' ? match[3] : undefined);
    });
    assert.ok(used.size > 0);
    for (const [name, fallback] of used) {
      assert.ok(Object.hasOwn(envExample, name), `.env.example does not document ${name}`);
      if (fallback !== undefined)
        assert.equal(envExample[name], fallback, `${name}: .env.example and the compose default differ`);
    }
  });

  test('images are pinned to exact versions; built services name their target stage', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) {
        assert.equal(resolve(service.build.context), '.', `${name} builds from the repository root`);
        assert.ok(existsSync(at(resolve(service.build.dockerfile ?? 'Dockerfile'))), `${name}: Dockerfile missing`);
        stage(service.build.target);
        continue;
      }
      const image = resolve(service.image);
      assert.ok(imageVersion(image), `${name}: image ${image} is not pinned to an x.y.z tag`);
      assert.doesNotMatch(image, /:latest$|@sha256:$/, `${name}: image ${image}`);
    }
    assert.equal(
      services.origin.build.target,
      dockerfile.stages.at(-1)?.name,
      "the origin is the Dockerfile's default (last) stage",
    );
  });

  test('every bind-mounted file or directory exists; named volumes are declared', () => {
    let mounts = 0;
    for (const name of Object.keys(services)) {
      for (const [source, target] of bindMounts(name)) {
        assert.ok(
          existsSync(path.resolve(ROOT, source)),
          `${name} mounts ${source} (at ${target}), which does not exist`,
        );
        mounts++;
      }
      for (const volume of services[name].volumes ?? []) {
        const source = typeof volume === 'string' ? resolve(volume).split(':')[0] : volume.source;
        if (typeof source === 'string' && !source.startsWith('.') && !source.startsWith('/')) {
          assert.ok(
            Object.hasOwn(compose.volumes ?? {}, source),
            `${name} uses volume ${source}, not declared under volumes:`,
          );
        }
      }
    }
    assert.ok(mounts >= 4, `expected the Prometheus and Grafana config mounts, found ${mounts}`);
    assert.ok(Object.keys(compose.volumes).length >= 2, 'Prometheus and Grafana keep their data in named volumes');
  });

  test('every long-running service has a healthcheck; dependents wait for it', () => {
    for (const name of ['prometheus', 'grafana', 'redis']) {
      assert.ok(services[name].healthcheck?.test, `${name} has no healthcheck`);
    }
    // The origin's is the image's HEALTHCHECK (asserted below against the Dockerfile).
    assert.ok(stage(services.origin.build.target).instructions.some((i) => i.keyword === 'HEALTHCHECK'));
    assert.equal(services.prometheus.depends_on.origin.condition, 'service_healthy');
    assert.equal(services.grafana.depends_on.prometheus.condition, 'service_healthy');
  });

  test('the origin listens on all interfaces, publishes its site port and only exposes its metrics port', () => {
    const env = environment('origin');
    assert.equal(env.HOST, '0.0.0.0');
    assert.equal(env.METRICS_HOST, '0.0.0.0');
    assert.equal(env.METRICS_ENABLED, 'true');
    const sitePort = Number(env.PORT);
    const metricsPort = Number(env.METRICS_PORT);
    assert.deepEqual(publishedContainerPorts('origin'), [sitePort], 'only the site port is published');
    assert.ok(
      !publishedContainerPorts('origin').includes(metricsPort),
      'the metrics port must not be published to the host',
    );
    assert.deepEqual(
      (services.origin.expose ?? []).map(Number),
      [metricsPort],
      'the metrics port is exposed to the compose network',
    );
    for (const name of Object.keys(services)) {
      for (const port of services[name].ports ?? []) {
        assert.match(
          resolve(port),
          /^127\.0\.0\.1:\d+:\d+$/,
          `${name} publishes ${resolve(port)}: loopback by default (BIND_ADDRESS)`,
        );
      }
    }
  });

  test('Prometheus scrapes the origin service on its metrics port, with the shipped config and rules', () => {
    const configPath = flag('prometheus', 'config.file');
    assert.ok(configPath, 'prometheus command sets --config.file');
    assert.equal(hostPathFor('prometheus', configPath), FILES.prometheusConfig);

    const job = prometheusConfig.scrape_configs.find((c: { job_name: string }) => c.job_name === JOB);
    assert.ok(job, `scrape config has job "${JOB}" (the dashboards and alerts select job="${JOB}")`);
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    // Every replica of the origin service (--scale): DNS discovery of the service name, not one
    // static address that resolves to a single container.
    assert.equal(job.static_configs, undefined, 'a static target would scrape one replica only');
    const discovered: Array<[string, number]> = job.dns_sd_configs.flatMap(
      (c: { names: string[]; type: string; port: number }) => {
        assert.equal(c.type, 'A', "Docker's DNS answers a service name with A records, one per container");
        return c.names.map((name) => [name, c.port]);
      },
    );
    assert.deepEqual(
      discovered,
      [['origin', Number(environment('origin').METRICS_PORT)]],
      'service name origin, port METRICS_PORT',
    );

    // rule_files point inside the mounted rules directory, and it has rule files.
    for (const pattern of prometheusConfig.rule_files) {
      const hostDir = hostPathFor('prometheus', path.posix.dirname(pattern));
      assert.equal(hostDir, FILES.rulesDir, `rule_files ${pattern} is not the mounted grafana/prometheus/rules`);
      assert.equal(path.posix.basename(pattern), '*.yml');
    }
    assert.ok(yamlFiles(FILES.rulesDir).length > 0);
    // Prometheus' own listen port is what Grafana's datasource and the healthcheck use.
    assert.equal(flag('prometheus', 'web.listen-address'), '0.0.0.0:9090');
    assert.match(services.prometheus.healthcheck.test.join(' '), /127\.0\.0\.1:9090\/-\/ready/);
  });

  test('Grafana is provisioned from grafana/: the datasource points at the prometheus service, dashboards are mounted where the provider looks', () => {
    const provisioning = hostPathFor('grafana', '/etc/grafana/provisioning');
    assert.equal(provisioning, at('grafana/provisioning'));

    const datasources = yamlFiles(FILES.datasources).flatMap((file) => readYaml(file).datasources);
    assert.equal(datasources.length, 1);
    const [ds] = datasources;
    assert.equal(ds.type, 'prometheus');
    assert.equal(ds.uid, 'prometheus');
    const url = new URL(ds.url);
    assert.ok(services[url.hostname], `datasource host ${url.hostname} is no compose service`);
    assert.equal(`0.0.0.0:${url.port}`, flag(url.hostname, 'web.listen-address'));
    assert.equal(
      ds.jsonData.timeInterval,
      prometheusConfig.global.scrape_interval,
      'datasource timeInterval = scrape_interval',
    );

    const providers = yamlFiles(FILES.dashboardProviders).flatMap((file) => readYaml(file).providers);
    assert.equal(providers.length, 1);
    assert.equal(hostPathFor('grafana', providers[0].options.path), FILES.dashboardsDir);

    const home = environment('grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    assert.ok(home && existsSync(hostPathFor('grafana', home) ?? ''), `home dashboard ${home} is not a mounted file`);

    const env = environment('grafana');
    assert.equal(env.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer', 'anonymous users may only view');
    assert.ok(env.GF_SECURITY_ADMIN_PASSWORD, 'the admin password comes from .env');
  });

  test('the origin can be scaled: no fixed container name, a host port that may be a range', () => {
    assert.equal(services.origin.container_name, undefined, 'a container name allows one replica only');
    const [published] = services.origin.ports as string[];
    // ORIGIN_PORT=4321-4323 gives each of three replicas its own host port.
    assert.match(published as string, /:\$\{ORIGIN_PORT:-\d+\}:\d+$/, 'the host port comes from ORIGIN_PORT');
    assert.match(interpolate(published as string, { ...envExample, ORIGIN_PORT: '4321-4323' }), /:4321-4323:4321$/);
    assert.match(readFileSync(FILES.compose, 'utf8'), /--scale origin=\d/, 'the compose file shows how to scale');
  });

  test('Redis is optional, pinned, kept off the host, with its data in a named volume', () => {
    assert.equal(services.redis.ports, undefined, 'Redis is reachable inside the compose network only');
    assert.match(resolve(services.redis.image), /^redis:\d+\.\d+\.\d+/);
    assert.ok(
      services.redis.volumes.some(
        (v: string) => v.endsWith(':/data') && Object.hasOwn(compose.volumes, v.split(':')[0]),
      ),
    );
    assert.ok(!JSON.stringify(services.origin).includes('redis'), 'the origin starts without Redis');
  });

  test('the load service targets the origin service inside the network', () => {
    const command = services.load.command as string[];
    assert.equal(command[0], 'load/safety.ts', 'the load service runs the concurrency-safety probe');
    assert.ok(existsSync(at(command[0])));
    const target = command.find((arg) => arg.startsWith('--target='));
    assert.ok(target, 'the probe is pointed at a running origin with --target');
    const url = new URL(resolve(target.slice('--target='.length)));
    assert.equal(url.hostname, 'origin');
    assert.equal(url.port, environment('origin').PORT);
    assert.equal(services.load.depends_on.origin.condition, 'service_healthy');
  });
});

describe('Dockerfile', () => {
  const ignore = readDockerignore();
  const names = dockerfile.stages.map((s) => s.name);
  const runtime = dockerfile.stages.at(-1) as DockerStage;
  const instruction = (s: DockerStage, keyword: string) => s.instructions.filter((i) => i.keyword === keyword);

  test('is multi-stage: dependencies, build, runtime (the last, default stage)', () => {
    assert.ok(names.includes('deps') && names.includes('build'), `stages: ${names.join(', ')}`);
    assert.equal(runtime.name, 'runtime');
  });

  test('every stage starts from a pinned Node 22 >= 22.18 image (or an earlier stage)', () => {
    for (const s of dockerfile.stages) {
      const from = baseImage(s);
      if (names.slice(0, names.indexOf(s.name)).includes(from)) continue;
      const version = imageVersion(from);
      assert.ok(version, `${s.name}: FROM ${from} is not an exact version`);
      assert.match(from, /^node:/);
      const [major, minor] = version;
      assert.ok(
        major === 22 && (minor as number) >= 18,
        `${s.name}: ${from}: the server needs Node 22 >= 22.18 (type stripping)`,
      );
    }
  });

  test('COPY sources exist in the build context and are not excluded by .dockerignore; --from names earlier stages', () => {
    let copies = 0;
    for (const [index, s] of dockerfile.stages.entries()) {
      for (const { args } of instruction(s, 'COPY')) {
        const { flags, sources } = copyOperands(args);
        if (flags.from !== undefined) {
          assert.ok(
            names.slice(0, index).includes(flags.from),
            `${s.name}: COPY --from=${flags.from} is not an earlier stage`,
          );
          continue;
        }
        for (const source of sources) {
          copies++;
          assert.ok(existsSync(at(source)), `${s.name}: COPY ${source}: not in the repository`);
          assert.ok(
            !dockerIgnored(source.replace(/^\.\//, '').replace(/\/$/, ''), ignore),
            `${s.name}: COPY ${source} is excluded by .dockerignore`,
          );
        }
      }
    }
    assert.ok(copies >= 5);
    for (const kept of ['src/server.ts', 'routes/astro.ts', 'astro.config.mjs', 'package-lock.json']) {
      assert.ok(!dockerIgnored(kept, ignore), `.dockerignore excludes ${kept}`);
    }
    for (const dropped of ['node_modules', 'dist', '.env', '.git', 'lib']) {
      assert.ok(dockerIgnored(dropped, ignore), `.dockerignore should exclude ${dropped}`);
    }
  });

  test('the runtime carries production dependencies only, from a stage that ran npm ci --omit=dev', () => {
    const modules = instruction(runtime, 'COPY')
      .map((i) => copyOperands(i.args))
      .find((c) => c.sources.some((s) => s.includes('node_modules')));
    assert.ok(modules?.flags.from, 'runtime copies node_modules from a dependencies stage');
    const deps = stage(modules.flags.from);
    const installs = instruction(deps, 'RUN')
      .map((i) => i.args)
      .filter((cmd) => /\bnpm (ci|install)\b/.test(cmd));
    assert.equal(installs.length, 1);
    assert.match(installs[0] as string, /npm ci\b.*--omit=dev/);
    assert.ok(
      !instruction(runtime, 'RUN').some((i) => /\bnpm (ci|install)\b/.test(i.args) && !/--omit=dev/.test(i.args)),
    );
  });

  test('npm start and npm run demo run the server with the Node flags the image runs it with', () => {
    const { scripts } = JSON.parse(readFileSync(at('package.json'), 'utf8')) as { scripts: Record<string, string> };
    const server = `node ${NODE_FLAGS.join(' ')} src/server.ts`;
    assert.equal(scripts.start, server);
    assert.ok(scripts.demo?.endsWith(`&& ${server}`), scripts.demo);
  });

  test('the build stage builds the site that the runtime copies', () => {
    const build = stage('build');
    assert.ok(
      instruction(build, 'RUN').some((i) => /astro(\.mjs)? build/.test(i.args)),
      'build stage runs astro build',
    );
    const fromBuild = instruction(runtime, 'COPY')
      .map((i) => copyOperands(i.args))
      .filter((c) => c.flags.from === 'build');
    assert.deepEqual(
      fromBuild.map((c) => c.sources),
      [['/app/dist']],
    );
  });

  test('the runtime runs src/server.ts as user node on 0.0.0.0, with a /healthz HEALTHCHECK and no metrics port', () => {
    assert.deepEqual(
      instruction(runtime, 'USER').map((i) => i.args),
      ['node'],
    );
    const cmd = JSON.parse(instruction(runtime, 'CMD').at(-1)?.args ?? '[]') as string[];
    assert.deepEqual(cmd, ['node', ...NODE_FLAGS, 'src/server.ts']);
    assert.ok(existsSync(at(cmd.at(-1) as string)));
    const env = instruction(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /\bHOST=0\.0\.0\.0\b/);
    assert.doesNotMatch(
      env,
      /METRICS_HOST/,
      'the image keeps the metrics listener on loopback; compose opens it to the network',
    );
    const healthcheck = instruction(runtime, 'HEALTHCHECK')
      .map((i) => i.args)
      .join(' ');
    assert.match(healthcheck, /\/healthz/);
    assert.match(healthcheck, /CMD \["node", "-e"/, "the slim image has no curl: the healthcheck uses node's fetch");
    assert.deepEqual(
      instruction(runtime, 'EXPOSE').map((i) => i.args),
      ['4321'],
    );
    for (const needed of ['src', 'routes', 'package.json']) {
      assert.ok(
        instruction(runtime, 'COPY').some((i) =>
          copyOperands(i.args).sources.some((s) => s.replace(/^\.\//, '') === needed),
        ),
        `runtime copies ${needed}`,
      );
    }
  });

  test('what the runtime runs imports production dependencies only (the image has no devDependencies)', () => {
    const lock = JSON.parse(readFileSync(at('package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const files = (dir: string, pattern: RegExp): string[] =>
      existsSync(dir)
        ? readdirSync(dir, { recursive: true, encoding: 'utf8' })
            .filter((f) => pattern.test(f))
            .map((f) => path.join(dir, f))
        : [];
    // The server's own sources (what `node src/server.ts` loads) and the built site.
    const sources = [
      ...files(at('src'), /\.ts$/),
      ...files(at('routes'), /\.ts$/),
      ...files(at('dist/server'), /\.mjs$/),
    ];
    assert.ok(sources.length > 10);
    // Static imports and re-exports (not `import type`, which Node strips), and import('…').
    const specifier =
      /^\s*(?:import|export)(?:\s+(?!type\s)|(?=[{*'"]))(?:[^'";]*?from\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
    const problems: string[] = [];
    for (const file of sources) {
      for (const match of readFileSync(file, 'utf8').matchAll(specifier)) {
        const spec = (match[1] ?? match[2]) as string;
        if (/^(\.|\/|node:|astro:|virtual:|data:)/.test(spec) || isBuiltin(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string);
        const entry = lock.packages[`node_modules/${name}`];
        if (!entry) problems.push(`${path.relative(ROOT, file)}: ${spec} is not installed by package-lock.json`);
        else if (entry.dev)
          problems.push(`${path.relative(ROOT, file)}: ${spec} is a devDependency, absent from the runtime image`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('the HEALTHCHECK command is valid JavaScript that probes /healthz', () => {
    const healthcheck = instruction(runtime, 'HEALTHCHECK').at(-1)?.args ?? '';
    const exec = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    assert.equal(exec[0], 'node');
    // Parses (does not run) the script.
    assert.doesNotThrow(() => new Function(exec[2] as string));
  });
});

describe('Prometheus config and alert rules (promtool)', () => {
  before(() => ensurePrometheusInstalled());

  test('promtool check config accepts the shipped config', () => {
    const { status, output } = promtool('check', 'config', FILES.prometheusConfig);
    assert.equal(status, 0, output);
  });

  test('promtool check config accepts it with the rules it loads in the container', () => {
    // rule_files is a container path: point it at the repository's rules so they are loaded too.
    const dir = mkdtempSync(path.join(tmpdir(), 'astro-origin-promcfg-'));
    try {
      const config = { ...prometheusConfig, rule_files: [path.join(FILES.rulesDir, '*.yml')] };
      writeFileSync(path.join(dir, 'prometheus.yml'), stringifyYaml(config));
      const { status, output } = promtool('check', 'config', path.join(dir, 'prometheus.yml'));
      assert.equal(status, 0, output);
      assert.match(output, /SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('promtool check rules accepts every rules file', () => {
    const files = yamlFiles(FILES.rulesDir);
    assert.ok(files.length > 0);
    const { status, output } = promtool('check', 'rules', ...files);
    assert.equal(status, 0, output);
  });

  test('the alert rules cover 5xx ratio, p99 latency, event-loop lag, memory growth and pool reuse under policy off', () => {
    const rules = yamlFiles(FILES.rulesDir).flatMap((file) =>
      readYaml(file).groups.flatMap((g: { rules: unknown[] }) => g.rules),
    );
    const alerts = new Map(
      rules.filter((r: { alert?: string }) => r.alert).map((r: { alert: string; expr: string }) => [r.alert, r]),
    );
    const required: Record<string, RegExp> = {
      AstroOriginHigh5xxRatio: /status_code=~"5\.\."/,
      AstroOriginHighP99Latency: /histogram_quantile\(0\.99/,
      AstroOriginEventLoopLag: /nodejs_eventloop_lag_p99_seconds/,
      AstroOriginMemoryGrowth: /nodejs_heap_size_used_bytes/,
      AstroOriginPoolReuseWhilePolicyOff: /astro_queue_pool_policy_info\{[^}]*policy="off"/,
      AstroOriginCacheHitRatioCollapsed: /origin_cache_requests_total\{[^}]*result=~"hit\|stale"/,
      AstroOriginCachePurgeNotPassedOn: /origin_cache_purge_fanout_failures_total/,
    };
    for (const [name, pattern] of Object.entries(required)) {
      const rule = alerts.get(name) as
        | { expr: string; labels?: { severity?: string }; annotations?: { summary?: string } }
        | undefined;
      assert.ok(rule, `missing alert ${name}`);
      assert.match(rule.expr, pattern, name);
      assert.match(rule.expr, new RegExp(`job="${JOB}"`), `${name} selects job="${JOB}"`);
      assert.ok(rule.labels?.severity && rule.annotations?.summary, `${name} needs a severity and a summary`);
    }
  });

  test('promtool test rules: each alert fires on synthetic series and stays quiet where it should', () => {
    const { status, output } = promtool('test', 'rules', FILES.rulesUnitTests);
    assert.equal(status, 0, output);
  });
});

describe('dashboards', () => {
  const files = dashboardFiles();
  const dashboard = readDashboard(at('grafana/dashboards/astro-origin.json'));
  const panels = allPanels(dashboard);
  const rows = dashboard.panels.filter((p) => p.type === 'row');
  const visual = panels.filter((p) => p.type !== 'row');
  const byTitle = (title: RegExp) => visual.filter((p) => title.test(p.title));

  test('"Astro origin" is there, valid JSON with a stable uid', () => {
    assert.ok(files.length >= 1);
    assert.equal(dashboard.title, 'Astro origin');
    assert.equal(dashboard.uid, 'astro-origin');
    assert.ok(dashboard.schemaVersion >= 39);
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
  });

  test('rows: Traffic, Rendering & pool, Memory & GC, Event loop & process, Origin cache', () => {
    assert.deepEqual(
      rows.map((r) => r.title),
      ['Traffic', 'Rendering & pool', 'Memory & GC', 'Event loop & process', 'Origin cache'],
    );
  });

  test('has a panel for everything the issue lists, in the right row', () => {
    const rowOf = (panel: { gridPos: { y: number } }) =>
      rows.filter((r) => r.gridPos.y <= panel.gridPos.y).at(-1)?.title;
    const required: Array<[RegExp, string, string]> = [
      [/^Request rate by route and status$/, 'Traffic', 'reqps'],
      [/^Latency p50 \/ p95 \/ p99 by route$/, 'Traffic', 's'],
      [/^In-flight requests$/, 'Traffic', 'short'],
      [/^5xx ratio$/, 'Traffic', 'percentunit'],
      [/^Render duration by renderer/, 'Rendering & pool', 's'],
      [/^Pool policy in force$/, 'Rendering & pool', 'short'],
      [/^Pool hit ratio/, 'Rendering & pool', 'percentunit'],
      [/^Pool acquires: reused vs new/, 'Rendering & pool', 'ops'],
      [/^Pool releases: pooled vs dropped/, 'Rendering & pool', 'ops'],
      [/^Heap used \/ total$/, 'Memory & GC', 'bytes'],
      [/^Heap used per space$/, 'Memory & GC', 'bytes'],
      [/^RSS$/, 'Memory & GC', 'bytes'],
      [/^External memory$/, 'Memory & GC', 'bytes'],
      [/^GC pause/, 'Memory & GC', 'percentunit'],
      [/^Event-loop lag p99$/, 'Event loop & process', 's'],
      [/^Event-loop utilisation$/, 'Event loop & process', 'percentunit'],
      [/^Page-fault rate/, 'Event loop & process', 'ops'],
      [/^Context-switch rate$/, 'Event loop & process', 'ops'],
      [/^Cache hit ratio$/, 'Origin cache', 'percentunit'],
      [/^Cache requests by result$/, 'Origin cache', 'reqps'],
      [/^Cache bytes$/, 'Origin cache', 'bytes'],
      [/^Cache revalidations/, 'Origin cache', 'ops'],
    ];
    for (const [title, row, unit] of required) {
      const found = byTitle(title);
      assert.ok(found.length > 0, `no panel titled ${title}`);
      assert.ok(
        found.some((p) => rowOf(p) === row),
        `${title} is not in row ${row}`,
      );
      assert.ok(
        found.some((p) => p.fieldConfig?.defaults?.unit === unit),
        `${title}: unit should be ${unit}`,
      );
    }
  });

  test('every panel has a unit, thresholds and a description, and uses the provisioned datasource', () => {
    for (const panel of visual) {
      assert.ok(panel.fieldConfig?.defaults?.unit, `${panel.title}: no unit`);
      assert.ok(panel.fieldConfig?.defaults?.thresholds?.steps?.length, `${panel.title}: no thresholds`);
      assert.ok((panel as { description?: string }).description, `${panel.title}: no description`);
      assert.equal(panel.datasource?.uid, 'prometheus', panel.title);
      assert.ok(panel.targets?.length, `${panel.title}: no query`);
      for (const target of panel.targets ?? [])
        assert.equal(target.datasource?.uid, 'prometheus', `${panel.title} ${target.refId}`);
    }
  });

  test('alert thresholds are drawn where the alerts fire', () => {
    const stepValues = (title: RegExp) =>
      byTitle(title).flatMap((p) =>
        p.fieldConfig?.defaults?.thresholds.steps.map((s: { value: number | null }) => s.value),
      );
    assert.ok(stepValues(/^5xx ratio$/).includes(0.05));
    assert.ok(stepValues(/^Latency p50/).includes(1));
    assert.ok(stepValues(/^Event-loop lag p99$/).includes(0.2));
  });

  test('panels sit on the 24-column grid without overlapping', () => {
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `${panel.title}: gridPos ${JSON.stringify(panel.gridPos)}`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          assert.ok(!cells.has(`${i},${j}`), `${panel.title} overlaps another panel at ${i},${j}`);
          cells.add(`${i},${j}`);
        }
      }
    }
  });

  test("has an instance selector: multi-value, All, from the origin's own series", () => {
    const instance = dashboard.templating.list.find((v) => v.name === 'instance');
    assert.ok(instance);
    assert.equal(instance.type, 'query');
    assert.equal(instance.multi, true);
    assert.equal(instance.includeAll, true);
    assert.equal(instance.datasource.uid, 'prometheus');
    assert.equal(instance.query.query, `label_values(http_requests_in_flight{job="${JOB}"}, instance)`);
  });

  test('every metric selector in every query is filtered by job and $instance', () => {
    const targets = dashboardTargets();
    assert.ok(targets.length >= 30);
    for (const { panel, refId, expr } of targets) {
      const where = `${panel} ${refId}: ${expr}`;
      // Every metric name of ours (or prom-client's) is followed by a selector...
      for (const match of expr.matchAll(/\b(?:http|astro|nodejs|process|origin)_[a-z0-9_]+/g)) {
        assert.equal(
          expr[(match.index as number) + match[0].length],
          '{',
          `${where}\n${match[0]} has no label selector`,
        );
      }
      // ...and every selector keeps to the job and the selected instances.
      const selectors = [...expr.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] as string);
      assert.ok(selectors.length > 0, where);
      for (const selector of selectors) {
        assert.match(selector, /\bjob="astro-origin"/, where);
        assert.match(selector, /\binstance=~"\$instance"/, where);
      }
    }
  });
});
