// deploy/kubernetes/base/generated/ is a copy of grafana/ (alert rules, dashboards) in
// Kubernetes objects: it must say exactly what grafana/ says, and the drift check must catch
// a change made on one side only.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  DASHBOARD_CONFIGMAP_FILE,
  DASHBOARD_LABEL,
  DASHBOARDS_DIR,
  GENERATED_DIR,
  generatedFiles,
  PROMETHEUS_RULE_FILE,
  RULES_DIR,
  staleFiles,
} from '../../scripts/deploy-generate.ts';
import {
  at,
  dashboardFiles,
  ensurePrometheusInstalled,
  promtool,
  readYaml,
  yamlFiles,
} from '../stack/stack-helpers.ts';
import { type K8sObject, parseObjects } from './kubernetes.ts';

const readObject = (file: string): K8sObject => {
  const objects = parseObjects(readFileSync(at(file), 'utf8'));
  assert.equal(objects.length, 1, file);
  return objects[0] as K8sObject;
};

describe('deploy/kubernetes/base/generated/', () => {
  test('is up to date with grafana/ (else: npm run deploy:generate)', () => {
    assert.deepEqual(staleFiles(), [], 'run `npm run deploy:generate` and commit the result');
  });

  test('the kustomization includes every generated file', () => {
    const resources: string[] = readYaml(at('deploy/kubernetes/base/kustomization.yaml')).resources;
    for (const file of generatedFiles().keys())
      assert.ok(resources.includes(path.relative(at('deploy/kubernetes/base'), at(file))), `${file} is not applied`);
  });

  test('the ConfigMap holds each dashboard byte for byte, labelled for the Grafana sidecar', () => {
    const configMap = readObject(DASHBOARD_CONFIGMAP_FILE);
    assert.equal(configMap.metadata.labels?.grafana_dashboard, DASHBOARD_LABEL.grafana_dashboard);
    const files = dashboardFiles();
    assert.ok(files.length > 0);
    assert.deepEqual(Object.keys(configMap.data).sort(), files.map((f) => path.basename(f)).sort());
    for (const file of files) assert.equal(configMap.data[path.basename(file)], readFileSync(file, 'utf8'), file);
    // A ConfigMap holds at most 1 MiB; kubectl apply's last-applied annotation at most 256 KiB.
    assert.ok(Buffer.byteLength(readFileSync(at(DASHBOARD_CONFIGMAP_FILE))) < 256 * 1024);
  });

  describe('the PrometheusRule', () => {
    before(() => ensurePrometheusInstalled());

    test('has exactly the groups of grafana/prometheus/rules/', () => {
      const rule = readObject(PROMETHEUS_RULE_FILE);
      const groups = yamlFiles(at(RULES_DIR)).flatMap((file) => readYaml(file).groups);
      assert.deepEqual(rule.spec.groups, groups);
    });

    test('promtool check rules accepts its groups', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'astro-origin-prometheusrule-'));
      try {
        const file = path.join(dir, 'rules.yml');
        writeFileSync(file, stringifyYaml({ groups: readObject(PROMETHEUS_RULE_FILE).spec.groups }));
        const { status, output } = promtool('check', 'rules', file);
        assert.equal(status, 0, output);
        assert.match(output, /SUCCESS: [1-9]\d* rules found/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  test('the drift check catches a rule or a dashboard changed without regenerating', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'astro-origin-drift-'));
    try {
      for (const dir of [RULES_DIR, DASHBOARDS_DIR, GENERATED_DIR])
        cpSync(at(dir), path.join(root, dir), { recursive: true });
      assert.deepEqual(staleFiles(root), []);

      const rules = path.join(root, RULES_DIR, 'astro-origin.rules.yml');
      writeFileSync(rules, readFileSync(rules, 'utf8').replace('for: 10m', 'for: 15m'));
      assert.deepEqual(staleFiles(root), [PROMETHEUS_RULE_FILE]);

      const dashboard = path.join(root, DASHBOARDS_DIR, 'astro-origin.json');
      const edited = JSON.parse(readFileSync(dashboard, 'utf8'));
      edited.title = 'Astro origin (edited)';
      writeFileSync(dashboard, JSON.stringify(edited));
      assert.deepEqual(staleFiles(root), [PROMETHEUS_RULE_FILE, DASHBOARD_CONFIGMAP_FILE]);

      // An edit made to the generated file itself is drift too.
      for (const [file, content] of generatedFiles(root)) writeFileSync(path.join(root, file), content);
      assert.deepEqual(staleFiles(root), []);
      const generated = path.join(root, PROMETHEUS_RULE_FILE);
      writeFileSync(generated, readFileSync(generated, 'utf8').replace('severity: warning', 'severity: info'));
      assert.deepEqual(staleFiles(root), [PROMETHEUS_RULE_FILE]);
      assert.equal(parseYaml(readFileSync(generated, 'utf8')).kind, 'PrometheusRule');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
