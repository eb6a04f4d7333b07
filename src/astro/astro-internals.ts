// The one module that touches Astro internals (App.pipeline, NodePool, the App's logger, the
// client-address symbol, the manifest's pageMap). Astro 6.4 does not document them;
// test/astro/astro-internals.test.ts fails loudly when an upgrade moves them.
import type { App } from 'astro/app';
import { AstroInternalsError } from '../errors.ts';

export interface NodePoolStats {
  acquireFromPool: number;
  acquireNew: number;
  released: number;
  releasedDropped: number;
}

/** The subset of Astro's NodePool (astro/dist/runtime/server/render/queue/pool.js) we rely on. */
export interface NodePool {
  readonly maxSize: number;
  size(): number;
  getStats(): NodePoolStats & { poolSize: number; maxSize: number; hitRate: number };
}

interface AstroPipeline {
  nodePool: NodePool | undefined;
  createNodePool(poolSize: number, enableStats: boolean): NodePool;
}

export type AstroApp = App;
export type RouteData = NonNullable<ReturnType<App['match']>>;

function pipelineOf(app: AstroApp): AstroPipeline {
  const pipeline = (app as unknown as { pipeline?: Partial<AstroPipeline> }).pipeline;
  if (!pipeline || typeof pipeline.createNodePool !== 'function' || !('nodePool' in pipeline)) {
    throw new AstroInternalsError('App.pipeline.createNodePool/nodePool');
  }
  return pipeline as AstroPipeline;
}

export function queuedRenderingEnabled(app: AstroApp): boolean {
  const manifest = app.manifest as { experimentalQueuedRendering?: { enabled?: boolean } };
  return manifest.experimentalQueuedRendering?.enabled === true;
}

/** A NodePool made by Astro's own factory, with its statistics switched on. */
export function createNodePool(app: AstroApp, maxSize: number): NodePool {
  return pipelineOf(app).createNodePool(maxSize, true);
}

/** Makes every queue render of this App take its pool from `get()` (read once per render). */
export function setNodePoolSource(app: AstroApp, get: () => NodePool): void {
  const pipeline = pipelineOf(app);
  Object.defineProperty(pipeline, 'nodePool', { get, set: () => {}, configurable: true, enumerable: true });
}

// Astro's own page-kind test (render/page.js) runs on the loaded component; the component's
// file type decides it the same way and is known at match time, before rendering.
const RECURSIVE_PAGE = /\.(astro|md|markdown|mdown|mkdn|mkd|mdwn|html)$/;

export type RendererKind = 'queue' | 'recursive' | 'endpoint';

/** Which renderer Astro will use for this route, given the App's queuedRendering flag. */
export function rendererOf(route: RouteData, queueEnabled: boolean): RendererKind {
  if (route.type === 'endpoint') return 'endpoint';
  if (!queueEnabled || RECURSIVE_PAGE.test(route.component)) return 'recursive';
  return 'queue';
}

/** Astro's own symbol for the client address createRequest() derived (astro/dist/core/constants.js). */
const clientAddressSymbol = Symbol.for('astro.clientAddress');

/** The client address Astro's createRequest() stored on the Web Request (trusted proxies applied). */
export function clientAddressOf(request: Request): string | undefined {
  return Reflect.get(request, clientAddressSymbol) as string | undefined;
}

export type AstroLogEvent = {
  label: string | null;
  level: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  message: string;
};

/**
 * Sends the App's log lines to `destination` instead of the console. A site with
 * `experimental.logger` keeps its own logger: returns false and changes nothing.
 */
export function setAstroLogDestination(app: AstroApp, destination: { write(event: AstroLogEvent): void }): boolean {
  if ((app.manifest as { experimentalLogger?: unknown }).experimentalLogger) return false;
  (app as unknown as { logger: { setDestination(d: typeof destination): void } }).logger.setDestination(destination);
  return true;
}

/** The queue nodes one render acquired (see countQueueNodes). */
export interface QueueNodeCount {
  nodes: number;
}

type QueueNodeType = 'text' | 'html-string' | 'component' | 'instruction';
interface QueuePool {
  acquire(type: QueueNodeType, content?: string): unknown;
  release(node: unknown): void;
}
interface RenderResult {
  _experimentalQueuedRendering?: { pool?: QueuePool };
}
interface FetchStateLike {
  request: Request;
  createResult(...args: unknown[]): Promise<RenderResult>;
}

const counts = new WeakMap<Request, QueueNodeCount>();
const patched = new WeakSet<object>();

/**
 * Counts the queue nodes of each render whose Request was passed to countQueueNodes(), exactly,
 * however many renders interleave. Astro reads the pool (pipeline.nodePool) once per page render,
 * in FetchState#createResult, after several awaits: the pool's getter cannot tell which request
 * asks. The render's FetchState can: it holds the Request. So its createResult is wrapped, and
 * hands a counted render a thin counting front of the policy's pool. Renders nobody counts take
 * the original path (one WeakMap lookup). `fetchState` is the build's own FetchState class (the
 * adapter's server entry exports it; Astro bundles its own copy into every build). Returns false
 * when this build or Astro version has none, so the count is unavailable rather than wrong.
 */
export function enableQueueNodeCounting(fetchState: unknown): boolean {
  let proto: object | null = typeof fetchState === 'function' ? (fetchState.prototype as object) : null;
  while (proto && !Object.hasOwn(proto, 'createResult')) proto = Object.getPrototypeOf(proto);
  const owner = proto as (FetchStateLike & object) | null;
  if (!owner || typeof owner.createResult !== 'function') return false;
  if (patched.has(owner)) return true;
  const original = owner.createResult;
  owner.createResult = function (this: FetchStateLike, ...args: unknown[]) {
    const count = counts.get(this.request);
    if (!count) return original.apply(this, args);
    return original.apply(this, args).then((result) => {
      const queued = result._experimentalQueuedRendering;
      if (queued?.pool) queued.pool = countingPool(queued.pool, count);
      return result;
    });
  };
  patched.add(owner);
  return true;
}

/** Starts counting the queue nodes of the render of `request` (call before app.render()). */
export function countQueueNodes(request: Request): QueueNodeCount {
  const count = { nodes: 0 };
  counts.set(request, count);
  return count;
}

function countingPool(pool: QueuePool, count: QueueNodeCount): QueuePool {
  return {
    acquire(type, content) {
      count.nodes++;
      return pool.acquire(type, content);
    },
    release(node) {
      pool.release(node);
    },
  };
}

type PageLoader = () => Promise<unknown>;
const memoized = new WeakSet<PageLoader>();

/**
 * Makes each page module's loader (the build's `manifest.pageMap`: `() => import('./chunk.mjs')`)
 * import once and hand every later render the same promise. Astro calls the loader on every
 * render, and a repeated `import()` of a loaded module still goes through Node's ESM loader:
 * 26–34 µs of a small page's render on this project's bench machine (see README). A module is
 * evaluated once either way, so renders see the same namespace. A failed import is not kept:
 * the next render tries again, as without this. Returns how many loaders it wrapped (0 when the
 * manifest has no pageMap: an optimisation, so an unknown shape is left alone rather than refused).
 */
export function memoizePageModules(app: AstroApp): number {
  const pageMap = (app.manifest as { pageMap?: unknown }).pageMap;
  if (!(pageMap instanceof Map)) return 0;
  let wrapped = 0;
  for (const [component, load] of pageMap as Map<string, unknown>) {
    if (typeof load !== 'function' || memoized.has(load as PageLoader)) continue;
    let loaded: Promise<unknown> | undefined;
    const once: PageLoader = () => {
      loaded ??= (load as PageLoader)().catch((error: unknown) => {
        loaded = undefined;
        throw error;
      });
      return loaded;
    };
    memoized.add(once);
    pageMap.set(component, once);
    wrapped++;
  }
  return wrapped;
}
