import { Counter, Gauge, type Registry } from 'prom-client';
import type { PoolPolicy } from '../astro/pool-policy.ts';

/**
 * Astro queue-renderer node-pool metrics. Read from the policy's counters at scrape time:
 * nothing on the render path beyond the integer increments Astro's pool does itself.
 * `labels` are added to every series: under WORKERS > 1, { worker } keeps each process's pool
 * apart when the primary aggregates (a summed hit ratio or capacity would be wrong).
 */
export function registerPoolMetrics(registry: Registry, policy: PoolPolicy, labels: Record<string, string> = {}): void {
  const extra = Object.keys(labels);
  new Counter({
    name: 'astro_queue_pool_acquires_total',
    help: 'Queue nodes acquired by renders, by source: reused from the pool, or newly allocated.',
    labelNames: ['source', ...extra],
    registers: [registry],
    collect() {
      const s = policy.stats();
      this.reset();
      this.inc({ source: 'reused', ...labels }, s.acquireFromPool);
      this.inc({ source: 'new', ...labels }, s.acquireNew);
    },
  });
  new Counter({
    name: 'astro_queue_pool_releases_total',
    help: 'Queue nodes released after rendering, by outcome: kept in the pool, or dropped (pool full or off).',
    labelNames: ['outcome', ...extra],
    registers: [registry],
    collect() {
      const s = policy.stats();
      this.reset();
      this.inc({ outcome: 'pooled', ...labels }, s.released);
      this.inc({ outcome: 'dropped', ...labels }, s.releasedDropped);
    },
  });
  new Gauge({
    name: 'astro_queue_pool_hit_ratio',
    help: 'Share of node acquires served from the pool since start (0..1); 0 under policy off.',
    labelNames: extra,
    registers: [registry],
    collect() {
      const s = policy.stats();
      const all = s.acquireFromPool + s.acquireNew;
      this.set(labels, all === 0 ? 0 : s.acquireFromPool / all);
    },
  });
  new Gauge({
    name: 'astro_queue_pool_available_nodes',
    help: 'Nodes waiting in the pool for reuse now (always 0 for off and per-request).',
    labelNames: extra,
    registers: [registry],
    collect() {
      this.set(labels, policy.available());
    },
  });
  const capacity = new Gauge({
    name: 'astro_queue_pool_capacity_nodes',
    help: 'Nodes a pool may keep: 0 for off, per request for per-request, process-wide for shared.',
    labelNames: extra,
    registers: [registry],
  });
  capacity.set(labels, policy.capacity);
  const info = new Gauge({
    name: 'astro_queue_pool_policy_info',
    help: 'The node-pool policy in force (POOL_POLICY), as a label; always 1.',
    labelNames: ['policy', ...extra],
    registers: [registry],
  });
  info.set({ policy: policy.name, ...labels }, 1);
}
