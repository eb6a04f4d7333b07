import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { PoolPolicy } from '../astro/pool-policy.ts';
import { registerHttpMetrics } from './http.ts';
import { registerPoolMetrics } from './pool.ts';
import { registerProcessMetrics } from './process.ts';
import { registerRenderMetrics } from './render.ts';

export { createRegistry } from './registry.ts';
export { startMetricsListener } from './listener.ts';

/** An app plugin (see AppOptions.plugins) that declares every origin metric on `registry`. */
export function instrument(registry: Registry) {
  return async (fastify: FastifyInstance, policy: PoolPolicy): Promise<void> => {
    registerHttpMetrics(registry, fastify);
    registerPoolMetrics(registry, policy);
    registerProcessMetrics(registry);
    const unsubscribe = registerRenderMetrics(registry);
    fastify.addHook('onClose', async () => unsubscribe());
  };
}
