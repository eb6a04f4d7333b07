// deploy/kubernetes/ without a cluster: `kubectl kustomize` renders the base and the production
// overlay; every object validates against the Kubernetes and Prometheus-Operator schemas
// (kubernetes-models), unknown field names included; and the objects agree with each other,
// with the Dockerfile's image and with the origin's own configuration schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import {
  at,
  type DockerStage,
  dashboardFiles,
  JOB,
  parseDockerfile,
  readYaml,
  yamlFiles,
} from '../stack/stack-helpers.ts';
import { ensureKubectl, type K8sObject, KUSTOMIZATIONS, one, render, validate } from './kubernetes.ts';

const dockerfile = parseDockerfile(readFileSync(at('Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1) as DockerStage;
const instruction = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

const rendered: Record<keyof typeof KUSTOMIZATIONS, K8sObject[]> = { base: [], production: [] };
before(() => {
  ensureKubectl();
  for (const name of Object.keys(KUSTOMIZATIONS) as Array<keyof typeof KUSTOMIZATIONS>) {
    const { objects, stderr } = render(KUSTOMIZATIONS[name]);
    // kustomize prints deprecations (commonLabels, patchesStrategicMerge, bases…) on stderr.
    assert.equal(stderr.trim(), '', `kubectl kustomize ${name} warned:\n${stderr}`);
    rendered[name] = objects;
  }
});

// biome-ignore lint/suspicious/noExplicitAny: a container of a rendered Deployment
function container(objects: K8sObject[]): any {
  const deployment = one(objects, 'Deployment');
  assert.equal(deployment.spec.template.spec.containers.length, 1);
  return deployment.spec.template.spec.containers[0];
}

function env(objects: K8sObject[]): Record<string, string> {
  return Object.fromEntries(
    container(objects).env.map((e: { name: string; value?: string }) => {
      assert.ok(e.value !== undefined, `${e.name}: only literal values are used here`);
      return [e.name, e.value];
    }),
  );
}

/** A Kubernetes memory quantity ("512Mi", "1Gi", "1G", "1048576") in bytes. */
function bytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  assert.ok(match, `unsupported quantity ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * (match[2] ? unit[match[2] as keyof typeof unit] : 1);
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('kubectl kustomize renders', () => {
  test('the base: every object the origin needs, once', () => {
    const kinds = rendered.base.map((o) => o.kind).sort();
    assert.deepEqual(kinds, [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PodMonitor',
      'PrometheusRule',
      'Service',
    ]);
  });

  test('the production overlay: the same objects in their own namespace, plus that namespace', () => {
    const kinds = rendered.production.map((o) => o.kind).sort();
    assert.deepEqual(kinds, [...rendered.base.map((o) => o.kind), 'Namespace'].sort());
    const namespace = one(rendered.production, 'Namespace');
    for (const object of rendered.production) {
      if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, namespace.metadata.name, object.kind);
    }
    assert.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    assert.match(
      container(rendered.production).image,
      /^[\w.-]+\.[\w.-]+\/[\w./-]+:[\w.-]+$/,
      'a registry image, tagged',
    );
    for (const kind of ['PodMonitor', 'PrometheusRule']) {
      assert.ok(
        one(rendered.production, kind).metadata.labels?.release,
        `${kind} carries the Prometheus selector label`,
      );
    }
  });
});

describe('schemas (kubernetes-models, @kubernetes-models/prometheus-operator)', () => {
  for (const name of Object.keys(KUSTOMIZATIONS) as Array<keyof typeof KUSTOMIZATIONS>) {
    test(`every object of ${name} is valid`, async () => {
      assert.deepEqual(await validate(rendered[name]), []);
    });
  }

  test('a wrong field name, a wrong type or a missing required field fails the validation', async () => {
    const broken = structuredClone(rendered.base);
    const deployment = one(broken, 'Deployment');
    const origin = deployment.spec.template.spec.containers[0];
    origin.readinesProbe = origin.readinessProbe; // misspelt
    delete origin.readinessProbe;
    const podMonitor = one(broken, 'PodMonitor');
    podMonitor.spec.podMetricsEndpoints[0].relabellings = podMonitor.spec.podMetricsEndpoints[0].relabelings;
    one(broken, 'HorizontalPodAutoscaler').spec.maxReplicas = '10';
    delete one(broken, 'Service').spec.ports[0].port;
    const problems = await validate(broken);
    const expect = [
      /^Deployment\/astro-origin: \/spec\/template\/spec\/containers\/0\/readinesProbe: .*readinesProbe\W+ does not exist in type 'IContainer'/,
      /^PodMonitor\/astro-origin: \/spec\/podMetricsEndpoints\/0\/relabellings: .*relabellings\W+ does not exist in type 'IPodMetricsEndpoint'/,
      /^HorizontalPodAutoscaler\/astro-origin: \/spec\/maxReplicas: must be integer/,
      /^Service\/astro-origin: \/spec\/ports\/0: must have required property port/,
    ];
    for (const pattern of expect)
      assert.ok(
        problems.some((p) => pattern.test(p)),
        `${pattern} not among:\n${problems.join('\n')}`,
      );
  });
});

describe('the objects agree with each other, the image and the origin', () => {
  for (const name of Object.keys(KUSTOMIZATIONS) as Array<keyof typeof KUSTOMIZATIONS>) {
    test(`${name}: the container's environment is a valid origin configuration`, () => {
      const config = loadConfig(env(rendered[name]));
      assert.equal(config.HOST, '0.0.0.0');
      assert.equal(config.METRICS_HOST, '0.0.0.0', 'Prometheus scrapes each pod over the pod network');
      assert.equal(config.METRICS_ENABLED, true);
    });

    test(`${name}: ports are the image's and the origin's`, () => {
      const config = loadConfig(env(rendered[name]));
      const ports = Object.fromEntries(
        container(rendered[name]).ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
      );
      assert.deepEqual(ports, { http: config.PORT, metrics: config.METRICS_PORT });
      assert.deepEqual(instruction('EXPOSE'), [String(config.PORT)], "the Dockerfile's EXPOSE");
      const service = one(rendered[name], 'Service');
      assert.deepEqual(
        service.spec.ports.map((p: { targetPort: unknown }) => p.targetPort),
        ['http'],
        'the Service sends traffic to the site port only',
      );
    });

    test(`${name}: non-root, read-only root filesystem, writable /tmp and session directory`, () => {
      const pod = one(rendered[name], 'Deployment').spec.template.spec;
      const origin = container(rendered[name]);
      assert.deepEqual(instruction('USER'), ['node'], "the image's user");
      assert.match(dockerfile.args.NODE_IMAGE ?? '', /^node:/, 'an official Node image, where node is uid 1000');
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.runAsUser, 1000, 'numeric, so the kubelet can check runAsNonRoot');
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
      assert.equal(origin.securityContext.readOnlyRootFilesystem, true);
      assert.equal(origin.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(origin.securityContext.capabilities.drop, ['ALL']);
      const workdir = instruction('WORKDIR').at(-1);
      const emptyDirs = new Set(
        pod.volumes.filter((v: { emptyDir?: unknown }) => v.emptyDir).map((v: { name: string }) => v.name),
      );
      const mounted = origin.volumeMounts
        .filter((m: { name: string }) => emptyDirs.has(m.name))
        .map((m: { mountPath: string }) => m.mountPath);
      // Astro's fs session driver as the adapter configures it: <cacheDir>/sessions, cacheDir
      // being node_modules/.astro under the build's root (the image's WORKDIR).
      assert.deepEqual(mounted.sort(), ['/tmp', `${workdir}/node_modules/.astro/sessions`].sort());
      assert.ok(origin.resources.requests.cpu && origin.resources.requests.memory && origin.resources.limits.memory);
      assert.ok(pod.topologySpreadConstraints.length >= 1);
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.enableServiceLinks, false, 'service links could set METRICS_PORT & co.');
    });

    test(`${name}: the origin sheds load (MAX_RSS_BYTES) before the memory limit OOM-kills it`, () => {
      const limit = bytes(container(rendered[name]).resources.limits.memory);
      const { MAX_RSS_BYTES } = loadConfig(env(rendered[name]));
      assert.ok(
        MAX_RSS_BYTES > 0 && MAX_RSS_BYTES < limit,
        `MAX_RSS_BYTES ${MAX_RSS_BYTES} must be set below the memory limit (${limit} bytes)`,
      );
      assert.ok(bytes(container(rendered[name]).resources.requests.memory) <= limit);
    });

    test(`${name}: probes — startup and readiness on /readyz, liveness on /healthz, on the site port`, () => {
      const origin = container(rendered[name]);
      const probe = (which: string) => [origin[which]?.httpGet?.path, origin[which]?.httpGet?.port];
      assert.deepEqual(probe('startupProbe'), ['/readyz', 'http']);
      assert.deepEqual(probe('readinessProbe'), ['/readyz', 'http']);
      assert.deepEqual(probe('livenessProbe'), ['/healthz', 'http']);
    });

    test(`${name}: the grace period outlasts the preStop sleep, the drain and its backstop`, () => {
      const pod = one(rendered[name], 'Deployment').spec.template.spec;
      const command: string[] = container(rendered[name]).lifecycle.preStop.exec.command;
      assert.equal(command[0], 'sleep');
      const sleep = Number(command[1]);
      assert.ok(sleep >= 1, 'a preStop sleep of a few seconds');
      const { SHUTDOWN_TIMEOUT_MS } = loadConfig(env(rendered[name]));
      // src/server.ts: close-with-grace's backstop fires 5 s after SHUTDOWN_TIMEOUT_MS.
      const needed = sleep + SHUTDOWN_TIMEOUT_MS / 1000 + 5;
      assert.ok(
        pod.terminationGracePeriodSeconds > needed,
        `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed preStop ${sleep} s + SHUTDOWN_TIMEOUT_MS ${SHUTDOWN_TIMEOUT_MS} ms + 5 s`,
      );
    });

    test(`${name}: every selector picks the origin's pods; the HPA scales its Deployment`, () => {
      const objects = rendered[name];
      const deployment = one(objects, 'Deployment');
      const podLabels = deployment.spec.template.metadata.labels;
      assert.ok(matches(deployment.spec.selector.matchLabels, podLabels));
      assert.ok(matches(one(objects, 'Service').spec.selector, podLabels), 'Service');
      assert.ok(matches(one(objects, 'PodDisruptionBudget').spec.selector.matchLabels, podLabels), 'PDB');
      assert.ok(matches(one(objects, 'NetworkPolicy').spec.podSelector.matchLabels, podLabels), 'NetworkPolicy');
      assert.ok(matches(one(objects, 'PodMonitor').spec.selector.matchLabels, podLabels), 'PodMonitor');
      for (const spread of deployment.spec.template.spec.topologySpreadConstraints)
        assert.ok(matches(spread.labelSelector.matchLabels, podLabels), 'topology spread');
      const hpa = one(objects, 'HorizontalPodAutoscaler');
      assert.deepEqual(hpa.spec.scaleTargetRef, {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: deployment.metadata.name,
      });
      assert.equal(deployment.spec.replicas, undefined, 'the HPA owns the replica count');
      assert.ok(hpa.spec.minReplicas >= 2, 'one pod can drain while another serves');
      assert.deepEqual(
        hpa.spec.metrics.map((m: { resource?: { name: string } }) => m.resource?.name),
        ['cpu'],
      );
      assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    });

    test(`${name}: the dashboards and alert rules reach the cluster as grafana/ has them`, () => {
      const configMap = one(rendered[name], 'ConfigMap');
      assert.equal(configMap.metadata.labels?.grafana_dashboard, '1', 'the label the Grafana sidecar looks for');
      for (const file of dashboardFiles())
        assert.equal(
          configMap.data[path.basename(file)],
          readFileSync(file, 'utf8'),
          'kustomize keeps it byte for byte',
        );
      const groups = yamlFiles(at('grafana/prometheus/rules')).flatMap((file) => readYaml(file).groups);
      assert.deepEqual(one(rendered[name], 'PrometheusRule').spec.groups, groups);
    });

    test(`${name}: Prometheus scrapes the metrics port as job "${JOB}", and only Prometheus may reach it`, () => {
      const objects = rendered[name];
      const podLabels = one(objects, 'Deployment').spec.template.metadata.labels;
      const podMonitor = one(objects, 'PodMonitor');
      assert.equal(podLabels[podMonitor.spec.jobLabel], JOB, 'the job the alert rules and the dashboard select');
      assert.deepEqual(
        podMonitor.spec.podMetricsEndpoints.map((e: { port: string; path: string }) => [e.port, e.path]),
        [['metrics', '/metrics']],
      );
      const policy = one(objects, 'NetworkPolicy');
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      const rulesFor = (port: string) =>
        policy.spec.ingress.filter((rule: { ports: Array<{ port: unknown }> }) =>
          rule.ports.some((p) => p.port === port),
        );
      const metricsRules = rulesFor('metrics');
      assert.equal(metricsRules.length, 1);
      assert.deepEqual(
        metricsRules[0].ports.map((p: { port: unknown }) => p.port),
        ['metrics'],
      );
      const from = metricsRules[0].from;
      assert.ok(from?.length > 0, 'the metrics port is not open to everyone');
      for (const peer of from) {
        assert.equal(peer.podSelector?.matchLabels?.['app.kubernetes.io/name'], 'prometheus', JSON.stringify(peer));
        assert.ok(peer.namespaceSelector, 'Prometheus pods of one namespace');
        assert.equal(peer.ipBlock, undefined);
      }
      assert.equal(rulesFor('http').length, 1, 'the site port is open to the Service');
    });
  }
});
