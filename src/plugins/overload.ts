// Load shedding: past a configured event-loop delay / utilisation / heap / RSS, answer 503 with
// Retry-After at once instead of queueing work without bound. @fastify/under-pressure samples
// the process every OVERLOAD_SAMPLE_INTERVAL_MS; the per-request check reads four numbers.
import diagnostics from 'node:diagnostics_channel';
import underPressure, { TYPE_HEALTH_CHECK } from '@fastify/under-pressure';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { OverloadedError, PluginOptionsError } from '../errors.ts';
import { ROUTE_LABELS, setRouteLabel } from '../route-label.ts';

/** How often the process is sampled. Event-loop delay is the mean over this window. */
export const OVERLOAD_SAMPLE_INTERVAL_MS = 500;

/**
 * Routes never shed: probes must stay cheap and truthful under load. /healthz (liveness) must
 * not fail or the orchestrator restarts a busy process; /readyz (readiness) stays 200 because
 * overload is usually fleet-wide and pulling every instance at once turns a brownout into an
 * outage (see README, "Running in production").
 */
export const EXEMPT_ROUTES = new Set(['/healthz', '/readyz']);

/** The reason of a 503 sent because renders waited longer than maxEventLoopDelayMs for a loop turn. */
export const RENDER_WAIT_REASON = 'renderWait';
/** Every reason a request is shed for (the metric's label values). */
export const OVERLOAD_REASONS = [
  'eventLoopDelay',
  RENDER_WAIT_REASON,
  'eventLoopUtilization',
  'heapUsedBytes',
  'rssBytes',
];

export interface OverloadEvent {
  /** Which limit was exceeded: one of OVERLOAD_REASONS. */
  reason: string;
}
/** One message per shed request, for the metrics (origin_overload_rejections_total). */
export const overloadChannel = diagnostics.channel('astro-fastify-origin:overload');

export interface OverloadOptions {
  /** 0 turns each limit off. */
  maxEventLoopDelayMs: number;
  maxEventLoopUtilization: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  retryAfterSeconds: number;
}

const overloadPlugin: FastifyPluginAsync<OverloadOptions> = async (fastify, options) => {
  for (const [name, value] of Object.entries(options)) {
    if (typeof value !== 'number' || !(value >= 0))
      throw new PluginOptionsError(`overload: ${name} must be a number >= 0`);
  }
  const retryAfter = options.retryAfterSeconds;
  const maxDelay = options.maxEventLoopDelayMs;
  // Every limit off: nothing to shed for. under-pressure would still sample the event loop every
  // 10 ms (its fixed resolution), 100 wake-ups a second for nothing.
  const limits = [maxDelay, options.maxEventLoopUtilization, options.maxHeapUsedBytes, options.maxRssBytes];
  if (limits.every((limit) => limit === 0)) return;
  await fastify.register(underPressure, {
    maxEventLoopDelay: maxDelay,
    // The origin plugin caps the rendering one loop turn does (src/astro/render-turns.ts): a
    // saturated origin then shows its backlog as renders waiting for a turn, not as loop delay.
    // The same limit applies to that wait. Read lazily: the origin plugin registers later.
    ...(maxDelay > 0 && {
      healthCheck: async () => !fastify.hasDecorator('renderTurns') || fastify.renderTurns.oldestWaitMs() < maxDelay,
      healthCheckInterval: OVERLOAD_SAMPLE_INTERVAL_MS,
    }),
    maxEventLoopUtilization: options.maxEventLoopUtilization,
    // 'interval': utilisation over the last sample, not since start (the default), so the
    // origin recovers as soon as the load drops.
    eventLoopUtilizationMode: 'interval',
    maxHeapUsedBytes: options.maxHeapUsedBytes,
    maxRssBytes: options.maxRssBytes,
    sampleInterval: OVERLOAD_SAMPLE_INTERVAL_MS,
    retryAfter,
    pressureHandler(request, reply, type) {
      if (request.routeOptions.url !== undefined && EXEMPT_ROUTES.has(request.routeOptions.url)) return;
      setRouteLabel(request, ROUTE_LABELS.overloaded);
      if (overloadChannel.hasSubscribers)
        overloadChannel.publish({
          reason: type === TYPE_HEALTH_CHECK ? RENDER_WAIT_REASON : type,
        } satisfies OverloadEvent);
      reply.header('retry-after', String(retryAfter));
      // Thrown, not sent: the error handler answers (JSON 503), and Fastify stops the hooks.
      throw new OverloadedError(retryAfter);
    },
  });
};

/** Load shedding with 503 + Retry-After (@fastify/under-pressure). */
export const overload = fp(overloadPlugin, { name: 'astro-origin-overload', fastify: '5.x' });
