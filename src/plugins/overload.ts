// Load shedding: past a configured event-loop delay / utilisation / heap / RSS, answer 503 with
// Retry-After at once instead of queueing work without bound. @fastify/under-pressure samples
// the process every OVERLOAD_SAMPLE_INTERVAL_MS; the per-request check reads four numbers.
import diagnostics from 'node:diagnostics_channel';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { OVERLOADED_CODE } from './hardening.ts';

/** Route label of requests shed under pressure (bounded). */
export const OVERLOADED_ROUTE = '(overloaded)';

/** How often the process is sampled. Event-loop delay is the mean over this window. */
export const OVERLOAD_SAMPLE_INTERVAL_MS = 500;

/**
 * Routes never shed: probes must stay cheap and truthful under load. /healthz (liveness) must
 * not fail or the orchestrator restarts a busy process; /readyz (readiness) stays 200 because
 * overload is usually fleet-wide and pulling every instance at once turns a brownout into an
 * outage (see README, "Running in production").
 */
export const EXEMPT_ROUTES = new Set(['/healthz', '/readyz']);

export interface OverloadEvent {
  /** Which limit was exceeded: eventLoopDelay, eventLoopUtilization, heapUsedBytes, rssBytes. */
  reason: string;
}
/** One message per shed request, for the metrics (origin_overload_rejections_total). */
export const overloadChannel = diagnostics.channel('astro-fastify-origin:overload');

class OverloadedError extends Error {
  override name = 'OverloadedError';
  readonly code = OVERLOADED_CODE;
  readonly statusCode = 503;
}

/** Whether any overload limit is configured (all 0 = shedding off). */
export function overloadEnabled(config: Config): boolean {
  return (
    config.MAX_EVENT_LOOP_DELAY_MS > 0 ||
    config.MAX_EVENT_LOOP_UTILIZATION > 0 ||
    config.MAX_HEAP_USED_BYTES > 0 ||
    config.MAX_RSS_BYTES > 0
  );
}

export async function registerOverload(fastify: FastifyInstance, config: Config): Promise<void> {
  const retryAfter = config.OVERLOAD_RETRY_AFTER_SECONDS;
  await fastify.register(underPressure, {
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.MAX_EVENT_LOOP_UTILIZATION,
    // 'interval': utilisation over the last sample, not since start (the default), so the
    // origin recovers as soon as the load drops.
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: config.MAX_HEAP_USED_BYTES,
    maxRssBytes: config.MAX_RSS_BYTES,
    sampleInterval: OVERLOAD_SAMPLE_INTERVAL_MS,
    retryAfter,
    pressureHandler(request, reply, type) {
      if (request.routeOptions.url !== undefined && EXEMPT_ROUTES.has(request.routeOptions.url)) return;
      request.astroRoute = OVERLOADED_ROUTE;
      if (overloadChannel.hasSubscribers) overloadChannel.publish({ reason: type } satisfies OverloadEvent);
      reply.header('retry-after', String(retryAfter));
      // Thrown, not sent: the error handler answers (JSON 503), and Fastify stops the hooks.
      throw new OverloadedError(`The origin is overloaded; retry in ${retryAfter} s.`);
    },
  });
}
