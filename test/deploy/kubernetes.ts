// Shared by test/deploy/*.test.ts: render the kustomizations with `kubectl kustomize` (no
// cluster needed) and validate what comes out against the Kubernetes and Prometheus-Operator
// schemas of the kubernetes-models packages. No side effects on import.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { at, ROOT } from '../stack/stack-helpers.ts';

export const KUSTOMIZATIONS = {
  base: at('deploy/kubernetes/base'),
  production: at('deploy/kubernetes/overlays/production'),
};
/** The oldest kustomize that reads our kustomizations (`resources:` directories, `patches:`). */
export const MIN_KUSTOMIZE_MAJOR = 5;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are untyped until validated
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: idem
  data?: any;
}

/** The kubectl on PATH, with an embedded kustomize recent enough; installs kubectl if missing. */
export function ensureKubectl(): void {
  let version = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  if (version.error) {
    const install = spawnSync('bash', [at('scripts/install-test-deps.sh')], { stdio: 'inherit', timeout: 600_000 });
    if (install.status !== 0) throw new Error(`scripts/install-test-deps.sh failed (status ${install.status})`);
    version = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  }
  if (version.status !== 0) throw new Error(`kubectl version failed: ${version.stderr || version.error}`);
  const kustomize = (JSON.parse(version.stdout) as { kustomizeVersion?: string }).kustomizeVersion;
  const major = Number(/^v?(\d+)\./.exec(kustomize ?? '')?.[1]);
  if (!(major >= MIN_KUSTOMIZE_MAJOR)) {
    throw new Error(
      `kubectl's kustomize is ${kustomize ?? 'older than v4 (not reported)'}; the manifests need kustomize v${MIN_KUSTOMIZE_MAJOR}+ (kubectl 1.27 or later). Put a newer kubectl first on PATH`,
    );
  }
}

/** `kubectl kustomize dir`: the rendered objects, and what kubectl said on stderr (warnings). */
export function render(dir: string): { objects: K8sObject[]; stderr: string } {
  const result = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`kubectl kustomize ${path.relative(ROOT, dir)} failed:\n${result.stderr}`);
  return { objects: parseObjects(result.stdout), stderr: result.stderr };
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(document.errors.map((e) => e.message).join('; '));
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

/** Where each apiVersion's models are: kubernetes-models, and the Prometheus Operator's CRDs. */
const MODEL_MODULES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

const label = (object: K8sObject) => `${object.kind}/${object.metadata?.name}`;

/**
 * Every problem the schemas find in `objects`, as "Kind/name: where: what" lines.
 * Two checks over the same models: their JSON-schema validators (types, required fields,
 * formats), and their TypeScript types for the field names — the validators, like the
 * OpenAPI schemas they come from, accept any unknown field, which the API server would reject
 * (or, for a CRD, silently drop: a misspelt `relabelings` would just not relabel).
 */
export async function validate(objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) {
    const module = MODEL_MODULES[object.apiVersion];
    if (!module) {
      problems.push(`${label(object)}: no schema known for apiVersion ${object.apiVersion}`);
      continue;
    }
    const Model = ((await import(module)) as Record<string, new (data: unknown) => { validate(): void }>)[object.kind];
    if (!Model) {
      problems.push(`${label(object)}: ${module} has no kind ${object.kind}`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (err) {
      const errors = (err as { errors?: Array<{ instancePath: string; message?: string }> }).errors;
      if (!errors) throw err;
      for (const e of errors) problems.push(`${label(object)}: ${e.instancePath || '/'}: ${e.message}`);
    }
  }
  problems.push(...unknownFields(objects.filter((object) => MODEL_MODULES[object.apiVersion])));
  return problems;
}

/**
 * Fields the models' types do not have: each object is type-checked as an object literal of its
 * model's interface, so TypeScript's excess-property check names every unknown key, at any depth.
 */
function unknownFields(objects: K8sObject[]): string[] {
  // Virtual files next to the tests, so `kubernetes-models` resolves from the repository's node_modules.
  const files = new Map(
    objects.map((object, i) => {
      const module = `${MODEL_MODULES[object.apiVersion]}/${object.kind}`;
      const source = `import type { I${object.kind} } from '${module}';\nexport const object: I${object.kind} = ${JSON.stringify(object, null, 2)};\n`;
      return [path.join(ROOT, 'test/deploy', `__rendered-${i}__.ts`), { object, source }];
    }),
  );
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (file) => files.has(file) || fileExists(file);
  host.readFile = (file) => files.get(file)?.source ?? readFile(file);
  host.getSourceFile = (file, language, ...rest) => {
    const virtual = files.get(file);
    return virtual
      ? ts.createSourceFile(file, virtual.source, language, true)
      : getSourceFile.call(host, file, language, ...rest);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const virtual = diagnostic.file && files.get(path.normalize(diagnostic.file.fileName));
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (!virtual || diagnostic.start === undefined) return `types: ${message}`;
    return `${label(virtual.object)}: ${fieldPath(diagnostic.file as ts.SourceFile, diagnostic.start)}: ${message}`;
  });
}

/** The JSON path of the property at `position` in a virtual file, for messages people can act on. */
function fieldPath(file: ts.SourceFile, position: number): string {
  const parts: string[] = [];
  let node: ts.Node | undefined = findNode(file, position);
  while (node && node !== file) {
    const parent: ts.Node = node.parent;
    if (ts.isPropertyAssignment(node)) parts.unshift(node.name.getText(file).replace(/^"|"$/g, ''));
    else if (parent && ts.isArrayLiteralExpression(parent))
      parts.unshift(String(parent.elements.indexOf(node as ts.Expression)));
    node = parent;
  }
  return `/${parts.join('/')}`;
}

function findNode(node: ts.Node, position: number): ts.Node | undefined {
  if (position < node.getStart() || position >= node.getEnd()) return undefined;
  for (const child of node.getChildren()) {
    const found = findNode(child, position);
    if (found) return found;
  }
  return node;
}

/** The one object of `kind` (and `name`, when given) in `objects`. */
export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  return found[0] as K8sObject;
}
