import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { ROUTE_LABELS } from '../route-label.ts';

export interface StaticFilesOptions {
  clientDir: string;
  /** URL prefix of Astro's content-hashed assets, e.g. "/_astro/". */
  assetsPrefix: string;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
// Unhashed files (favicon, robots.txt, prerendered pages) may change on deploy: let caches
// keep them briefly and revalidate with the ETag.
const REVALIDATE = 'public, max-age=60, must-revalidate';

/**
 * Serves the build's client dir. `wildcard: false` makes @fastify/static list the dir once at
 * start-up and register one route per file: deciding "static or page?" costs no syscall per
 * request, and a path that is not a known file can never reach the filesystem.
 */
const staticFiles: FastifyPluginAsync<StaticFilesOptions> = async (fastify, { clientDir, assetsPrefix }) => {
  fastify.addHook('onRoute', (route) => {
    route.config = { ...route.config, routeLabel: ROUTE_LABELS.static };
  });
  await fastify.register(fastifyStatic, {
    root: clientDir,
    wildcard: false,
    redirect: true,
    cacheControl: false,
    etag: true,
    lastModified: true,
    acceptRanges: true,
    serveDotFiles: false,
    setHeaders(reply, filePath) {
      const urlPath =
        '/' +
        filePath
          .slice(clientDir.length)
          .replace(/^[\\/]+/, '')
          .replaceAll('\\', '/');
      reply.header('cache-control', urlPath.startsWith(assetsPrefix) ? IMMUTABLE : REVALIDATE);
    },
  });
};

// Encapsulated on purpose: the onRoute hook labels only this plugin's routes.
export default staticFiles;
