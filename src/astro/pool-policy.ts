import { AsyncLocalStorage } from 'node:async_hooks';
import type { PoolPolicyName } from '../config.ts';
import {
  type AstroApp,
  createNodePool,
  type NodePool,
  type NodePoolStats,
  setNodePoolSource,
} from './astro-internals.ts';

/**
 * The node-pool policy: the one decision of which pool a render gets.
 * - off:         a zero-capacity pool; every acquire allocates, every release is dropped
 *                (what Astro's production SSR manifest asks for with poolSize: 0, made
 *                explicit and counted).
 * - per-request: a fresh pool per request; no node can cross requests.
 * - shared:      one process-wide pool of `size` nodes, as Astro uses for static builds.
 */
export interface PoolPolicy {
  readonly name: PoolPolicyName;
  /** Nodes a pool may keep: 0 for off, per request for per-request, process-wide for shared. */
  readonly capacity: number;
  /** Runs one render under the policy. */
  run<T>(render: () => Promise<T>): Promise<T>;
  /** Counters since start, all pools of this policy together. */
  stats(): NodePoolStats;
  /** Nodes waiting in a pool for reuse right now. */
  available(): number;
}

export function applyPoolPolicy(app: AstroApp, name: PoolPolicyName, size: number): PoolPolicy {
  if (name === 'per-request') return perRequest(app, size);
  const pool = createNodePool(app, name === 'off' ? 0 : size);
  setNodePoolSource(app, () => pool);
  return {
    name,
    capacity: pool.maxSize,
    run: (render) => render(),
    stats: () => ({ ...pool.getStats() }),
    available: () => pool.size(),
  };
}

function perRequest(app: AstroApp, size: number): PoolPolicy {
  const current = new AsyncLocalStorage<NodePool>();
  // Renders outside run() (none today) still get no reuse, and are still counted.
  const outside = createNodePool(app, 0);
  const finished: NodePoolStats = { acquireFromPool: 0, acquireNew: 0, released: 0, releasedDropped: 0 };
  setNodePoolSource(app, () => current.getStore() ?? outside);
  return {
    name: 'per-request',
    capacity: size,
    async run(render) {
      const pool = createNodePool(app, size);
      try {
        return await current.run(pool, render);
      } finally {
        const s = pool.getStats();
        finished.acquireFromPool += s.acquireFromPool;
        finished.acquireNew += s.acquireNew;
        finished.released += s.released;
        finished.releasedDropped += s.releasedDropped;
      }
    },
    stats() {
      const o = outside.getStats();
      return {
        acquireFromPool: finished.acquireFromPool + o.acquireFromPool,
        acquireNew: finished.acquireNew + o.acquireNew,
        released: finished.released + o.released,
        releasedDropped: finished.releasedDropped + o.releasedDropped,
      };
    },
    available: () => 0,
  };
}
