import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { PoolPolicy } from '../astro/pool-policy.ts';
import { registerHttpMetrics } from './http.ts';
import { registerOverloadMetrics } from './overload.ts';
import { registerPoolMetrics } from './pool.ts';
import { registerProcessMetrics } from './process.ts';
import { registerQueueNodeMetrics } from './queue-nodes.ts';
import { registerRenderMetrics } from './render.ts';

export { startMetricsListener } from './listener.ts';
export { createRegistry } from './registry.ts';

/**
 * An app plugin (see AppOptions.plugins) that declares every origin metric on `registry`.
 * `perProcess` labels (under WORKERS > 1: { worker }) go on the series that must not be summed
 * across workers: pool statistics and event-loop utilisation.
 */
export function instrument(registry: Registry, { perProcess = {} }: { perProcess?: Record<string, string> } = {}) {
  return async (fastify: FastifyInstance, policy: PoolPolicy): Promise<void> => {
    registerHttpMetrics(registry, fastify);
    registerPoolMetrics(registry, policy, perProcess);
    registerProcessMetrics(registry, perProcess);
    const unsubscribeRender = registerRenderMetrics(registry);
    const unsubscribeQueueNodes = registerQueueNodeMetrics(registry);
    const unsubscribeOverload = registerOverloadMetrics(registry, fastify);
    fastify.addHook('onClose', async () => {
      unsubscribeRender();
      unsubscribeQueueNodes();
      unsubscribeOverload();
    });
  };
}
