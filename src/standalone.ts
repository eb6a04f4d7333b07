import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp } from './app.ts';
import { loadBuild } from './astro/load-build.ts';
import type { Config } from './config.ts';
import { createRegistry, instrument, startMetricsListener } from './metrics/index.ts';

export interface RunningOrigin {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:4321 */
  url: string;
  /** e.g. http://127.0.0.1:9464/metrics; undefined when METRICS_ENABLED=false. */
  metricsUrl: string | undefined;
  /** Flips readiness to 503, stops accepting, lets in-flight requests finish, closes. */
  close(): Promise<void>;
}

/** Loads the Astro build, builds the app and listens: one process serving one build. */
export async function startOrigin(
  config: Config,
  { logger }: { logger?: FastifyServerOptions['logger'] } = {},
): Promise<RunningOrigin> {
  const build = await loadBuild(config.BUILD_DIR);
  const registry = config.METRICS_ENABLED ? createRegistry() : undefined;
  const app = await buildApp({ config, build, logger, plugins: registry ? [instrument(registry)] : [] });
  if (config.MAX_CONNECTIONS > 0) app.server.maxConnections = config.MAX_CONNECTIONS;
  await app.listen({ host: config.HOST, port: config.PORT });
  const metrics = registry
    ? await startMetricsListener(registry, { host: config.METRICS_HOST, port: config.METRICS_PORT, logger: app.log })
    : undefined;
  app.lifecycle.ready = true;
  app.log.info({ poolPolicy: app.poolPolicy.name, poolCapacity: app.poolPolicy.capacity, buildDir: config.BUILD_DIR }, 'origin ready');
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host}:${port}`,
    metricsUrl: metrics?.url,
    close() {
      closing ??= (async () => {
        app.lifecycle.draining = true;
        await app.close();
        await metrics?.server.close();
      })();
      return closing;
    },
  };
}
