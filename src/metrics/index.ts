// The metrics plugin: every origin metric family on one explicit registry. Each family lives in
// its own module; this file only composes them.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Registry } from 'prom-client';
import { PluginOptionsError } from '../errors.ts';
import { registerCacheMetrics } from './cache.ts';
import { registerHttpMetrics } from './http.ts';
import { registerOverloadMetrics } from './overload.ts';
import { registerPoolMetrics } from './pool.ts';
import { registerProcessMetrics } from './process.ts';
import { registerQueueNodeMetrics } from './queue-nodes.ts';
import { registerRenderMetrics, registerRenderTurnMetrics } from './render.ts';

export { startMetricsListener } from './listener.ts';
export { createRegistry } from './registry.ts';

export interface OriginMetricsOptions {
  registry: Registry;
  /**
   * Labels for the series that must not be summed across processes (pool statistics,
   * event-loop utilisation): under WORKERS > 1, { worker: '<slot>' }.
   */
  perProcess?: Record<string, string>;
}

const originMetricsPlugin: FastifyPluginAsync<OriginMetricsOptions> = async (fastify, options) => {
  const { registry, perProcess = {} } = options;
  if (!registry || typeof registry.metrics !== 'function')
    throw new PluginOptionsError('metrics: `registry` must be a prom-client Registry (createRegistry())');
  registerHttpMetrics(registry, fastify);
  registerProcessMetrics(registry, perProcess);
  const unsubscribeRender = registerRenderMetrics(registry);
  const unsubscribeQueueNodes = registerQueueNodeMetrics(registry);
  const unsubscribeOverload = registerOverloadMetrics(registry, fastify);
  const unsubscribeCache = registerCacheMetrics(registry);
  // The pool policy is the origin plugin's, registered after this one (so these HTTP hooks
  // cover its routes): its series are declared once the app is ready.
  fastify.addHook('onReady', async () => {
    if (fastify.hasDecorator('poolPolicy')) registerPoolMetrics(registry, fastify.poolPolicy, perProcess);
    if (fastify.hasDecorator('renderTurns')) registerRenderTurnMetrics(registry, fastify.renderTurns);
  });
  fastify.addHook('onClose', async () => {
    unsubscribeRender();
    unsubscribeQueueNodes();
    unsubscribeOverload();
    unsubscribeCache();
  });
};

/**
 * HTTP, render, queue-node, pool, overload and process metrics on `registry`. Register it before the
 * origin plugin, so its hooks see every route.
 */
export const originMetrics = fp(originMetricsPlugin, { name: 'astro-origin-metrics', fastify: '5.x' });
