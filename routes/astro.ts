// The catch-all: every request that is not a static file or another route is Astro's.
import type { FastifyPluginAsync } from 'fastify';
import {
  countQueueNodes,
  enableQueueNodeCounting,
  queuedRenderingEnabled,
  rendererOf,
} from '../src/astro/astro-internals.ts';
import {
  type QueueNodesEvent,
  queueNodesChannel,
  type RenderEvent,
  releaseWebRequest,
  renderChannel,
  sendWebResponse,
  toWebRequest,
} from '../src/astro/bridge.ts';
import { createErrorPageFetch } from '../src/astro/error-pages.ts';
import type { LoadedBuild } from '../src/astro/load-build.ts';
import { createBackgroundTasks } from '../src/cache/background.ts';
import { sendFreshHit } from '../src/cache/fast-path.ts';
import { CLIENT_CLOSED } from '../src/metrics/http.ts';
import { ALLOWED_METHODS } from '../src/plugins/hardening.ts';
import { runInRequest } from '../src/request-context.ts';
import { ROUTE_LABELS, setRouteLabel } from '../src/route-label.ts';

export interface AstroRoutesOptions {
  build: LoadedBuild;
}

const METHODS = [...ALLOWED_METHODS];
// The status of a reply nobody is left to read: the metrics' client-closed status (nginx's convention).
const CLIENT_CLOSED_STATUS = Number(CLIENT_CLOSED);
/** Requests whose render may be skipped when nobody is left to read it. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

const astroRoutes: FastifyPluginAsync<AstroRoutesOptions> = async (fastify, { build }) => {
  const { app } = build;
  const policy = fastify.poolPolicy;
  const turns = fastify.renderTurns;
  const queueEnabled = queuedRenderingEnabled(app);
  const nodesCountable = queueEnabled && enableQueueNodeCounting(build.fetchState);
  const allowedDomains = app.getAllowedDomains?.() ?? [];
  // createRequest builds the Web Request only where allowedDomains asks for it (bridge.ts).
  const astroNode = allowedDomains.length ? build.astroNode : undefined;
  const prerenderedErrorPageFetch = await createErrorPageFetch(build.clientDir);

  // Astro endpoints read the raw body themselves (JSON, form data, text...): hand it over as
  // bytes, whatever the content type. Fastify still enforces bodyLimit (413).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  fastify.addHook('onResponse', (request, _reply, done) => {
    releaseWebRequest(request, astroNode);
    done();
  });
  // The origin cache revalidates in the background through waitUntil; shutdown lets it finish briefly.
  const background = createBackgroundTasks();
  const { waitUntil } = background;
  fastify.addHook('onClose', async () => background.settle());

  fastify.route({
    method: METHODS,
    url: '/*',
    exposeHeadRoute: false,
    async handler(request, reply) {
      const { request: webRequest, clientAddress } = toWebRequest(request, allowedDomains, astroNode);
      // As @astrojs/node: prerendered routes count too (config redirects, prerendered endpoints),
      // except prerendered pages, which were files: a path that reaches here has no file, and
      // Astro answers it with the 404 page.
      const matched = app.match(webRequest, true);
      const routeData = matched?.type === 'page' && matched.prerender ? undefined : matched;
      const route = routeData?.route ?? ROUTE_LABELS.unmatched;
      setRouteLabel(request, route);
      // The origin cache's fresh copy, if any, without running Astro (src/cache/fast-path.ts).
      const hit = routeData && sendFreshHit(reply, webRequest);
      if (hit) return hit;
      // A busy loop gets back to its sockets between renders (src/astro/render-turns.ts).
      const turn = turns.admit();
      if (turn) {
        await turn;
        // The client left while the render waited (a CDN or load balancer gave up on a
        // saturated origin): no render for nobody. Safe methods only, so whether an endpoint's
        // side effects happen never depends on how long it waited.
        if (reply.raw.destroyed && SAFE_METHODS.has(request.method)) {
          request.log.debug({ route }, 'client left while its render waited: not rendered');
          return reply.code(CLIENT_CLOSED_STATUS).send();
        }
      }
      const renderer = routeData ? rendererOf(routeData, queueEnabled) : 'recursive';
      const started = performance.now();
      // Only while src/metrics/queue-nodes.ts listens: otherwise no per-request work at all.
      const nodes =
        nodesCountable && renderer === 'queue' && queueNodesChannel.hasSubscribers
          ? countQueueNodes(webRequest)
          : undefined;
      const locals = { requestId: request.id, ...request.astroLocals };
      const render = () =>
        policy.run(() =>
          app.render(webRequest, {
            routeData,
            addCookieHeader: true,
            clientAddress,
            locals,
            prerenderedErrorPageFetch,
            waitUntil,
          }),
        );
      // The request id follows the render's promises only where that is cheap (request-context.ts).
      const response = await runInRequest(request.id, render);
      // A queue render builds and renders its whole queue before its Response exists.
      if (nodes) queueNodesChannel.publish({ route, nodes: nodes.nodes } satisfies QueueNodesEvent);
      const published = renderChannel.hasSubscribers
        ? () =>
            renderChannel.publish({
              route,
              renderer,
              seconds: (performance.now() - started) / 1000,
            } satisfies RenderEvent)
        : undefined;
      return sendWebResponse(reply, response, {
        onBodyComplete: published,
        // Astro answers errors thrown before its Response exists; these come later, from the
        // body. Its renderError() logs them (with the request id from locals, src/plugins/faults.ts).
        onErrorBeforeSend(error) {
          return app.renderError(webRequest, {
            status: 500,
            error,
            routeData,
            clientAddress,
            locals,
            addCookieHeader: false,
            waitUntil: undefined,
            prerenderedErrorPageFetch,
          });
        },
        onErrorWhileStreaming(error) {
          request.renderFailed = true;
          request.log.error({ err: error, route }, 'render failed after the response started: the response was cut');
        },
      });
    },
  });
};

export default astroRoutes;
