import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Counts one exchange in the HTTP metrics. Set by the metrics plugin; called by its
     * onRequest hook, and by paths that bypass the hooks (Fastify's frameworkErrors).
     */
    observeHttp?: (request: FastifyRequest, reply: FastifyReply) => void;
  }
}

import { Gauge, type Registry } from 'prom-client';
import { routeLabel } from '../route-label.ts';
import { HotHistogram } from './histogram.ts';

/** Status label for a response the client closed before it was complete (nginx's convention). */
export const CLIENT_CLOSED = '499';

/**
 * http_request_duration_seconds and http_requests_in_flight. Both are settled on the
 * response's 'close', which fires for completed and aborted exchanges alike, so the gauge
 * cannot drift when clients hang up mid-response.
 *
 * Per request: one 'close' listener and one observation (HotHistogram: prom-client's own
 * Histogram costs more per observation, see there). The in-flight count is a plain number, read
 * into the gauge at scrape time.
 */
export function registerHttpMetrics(registry: Registry, fastify: FastifyInstance): void {
  const duration = new HotHistogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request arrival to the last byte of the response, by method, route pattern and status code (499: client closed first; 500 also for a response cut by a render error).',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  let inFlight = 0;
  new Gauge({
    name: 'http_requests_in_flight',
    help: 'Requests received and not yet answered or abandoned.',
    registers: [registry],
    collect() {
      this.set(inFlight);
    },
  });
  const observe = (request: FastifyRequest, reply: FastifyReply) => {
    inFlight++;
    // 'close' fires once per response: on() spares once()'s wrapper.
    reply.raw.on('close', () => {
      inFlight--;
      duration.observe(
        reply.elapsedTime / 1000,
        request.method,
        routeLabel(request),
        reply.raw.writableFinished ? String(reply.statusCode) : request.renderFailed ? '500' : CLIENT_CLOSED,
      );
    });
  };
  fastify.observeHttp = observe;
  fastify.addHook('onRequest', (request, reply, done) => {
    observe(request, reply);
    done();
  });
}
