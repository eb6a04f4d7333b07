import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { OVERLOAD_REASONS, type OverloadEvent, overloadChannel } from '../plugins/overload.ts';

/**
 * origin_overload_rejections_total (fed by the overload plugin's diagnostics channel),
 * origin_overloaded (read at scrape time) and origin_connections_dropped_total (MAX_CONNECTIONS).
 * Summed across workers all stay meaningful: rejections of all processes, how many processes
 * are shedding now, connections refused.
 */
export function registerOverloadMetrics(registry: Registry, fastify: FastifyInstance): () => void {
  const rejections = new Counter({
    name: 'origin_overload_rejections_total',
    help: 'Requests answered 503 + Retry-After because the process was past an overload limit, by the limit (eventLoopDelay; renderWait: renders waited that long for a loop turn; eventLoopUtilization, heapUsedBytes, rssBytes).',
    labelNames: ['reason'],
    registers: [registry],
  });
  // Every reason exists from the start (at 0), so rate() has a series before the first 503.
  for (const reason of OVERLOAD_REASONS) rejections.inc({ reason }, 0);
  new Gauge({
    name: 'origin_overloaded',
    help: 'Processes past an overload limit now (1 per process; summed over workers).',
    registers: [registry],
    collect() {
      this.set(fastify.isUnderPressure?.() ? 1 : 0);
    },
  });
  const dropped = new Counter({
    name: 'origin_connections_dropped_total',
    help: 'Connections closed on arrival because MAX_CONNECTIONS connections were open.',
    registers: [registry],
  });
  fastify.server.on('drop', () => dropped.inc());
  const onOverload = (message: unknown) => rejections.inc({ reason: (message as OverloadEvent).reason });
  overloadChannel.subscribe(onOverload);
  return () => overloadChannel.unsubscribe(onOverload);
}
