import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { type Purger, registerPurgeRoute } from '../cache/purge.ts';

/** A registry, or anything that renders an exposition the same way (the cluster primary). */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

/**
 * The metrics listener: its own port (METRICS_HOST:METRICS_PORT), never the public one, so an
 * origin behind a CDN cannot expose /metrics by accident.
 */
export async function startMetricsListener(
  registry: MetricsSource,
  {
    host,
    port,
    logger,
    purge,
  }: {
    host: string;
    port: number;
    logger: FastifyInstance['log'];
    /** POST /cache/purge, when a token is configured (CACHE_PURGE_TOKEN). */
    purge?: { token: string; purge: Purger };
  },
): Promise<{ server: FastifyInstance; url: string }> {
  const server = Fastify({
    loggerInstance: logger.child({ listener: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  server.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  if (purge) registerPurgeRoute(server, purge);
  await server.listen({ host, port });
  // The address actually bound: the port the system picked for METRICS_PORT=0, brackets for IPv6.
  const address = server.server.address();
  const bound = typeof address === 'object' && address ? address : { address: host, port };
  return {
    server,
    url: `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}/metrics`,
  };
}
