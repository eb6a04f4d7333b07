// Faults in the site's code: a page that throws, a promise that rejects late, an endpoint that
// fails. Astro answers those with its 500 page; this module makes sure each is logged once, as
// JSON, with the request id. Stray rejections nobody awaits are logged by src/server.ts.
import type { FastifyBaseLogger } from 'fastify';
import { currentRequestId } from '../request-context.ts';
import { type AstroApp, type AstroLogEvent, setAstroLogDestination } from './astro-internals.ts';

const installed = new WeakMap<AstroApp, { log: FastifyBaseLogger }>();

/**
 * Sends Astro's own log lines to the origin's logger (JSON instead of coloured multi-line
 * text), and logs every render error once, with the request id and route. Astro logs a render
 * error and calls renderError() in the same synchronous step; the log line is held until then
 * so it is not written twice. A site with `experimental.logger` keeps its own logger.
 * Idempotent per App (tests build several origins on one loaded build): the latest logger wins.
 */
export function logAstroFaults(app: AstroApp, log: FastifyBaseLogger): void {
  const existing = installed.get(app);
  if (existing) {
    existing.log = log;
    return;
  }
  const state = { log };
  installed.set(app, state);

  const write = (event: AstroLogEvent) => {
    if (event.level === 'silent') return;
    const fields = { astro: event.label ?? undefined, reqId: currentRequestId() };
    state.log[event.level](fields, event.message);
  };
  let pending: AstroLogEvent | undefined;
  const flushPending = () => {
    if (pending) write(pending);
    pending = undefined;
  };
  setAstroLogDestination(app, {
    write(event: AstroLogEvent) {
      if (event.level === 'error' && event.label === null) {
        flushPending();
        pending = event;
        queueMicrotask(flushPending);
        return;
      }
      write(event);
    },
  });

  const renderError = app.renderError;
  app.renderError = function renderErrorLogged(this: AstroApp, request, options) {
    const err = options.error;
    if (err !== undefined && err !== null) {
      const astroLine = err instanceof Error ? err.stack || err.message : String(err);
      if (pending?.message === astroLine) pending = undefined;
      const locals = options.locals as { requestId?: unknown } | undefined;
      state.log.error(
        { reqId: locals?.requestId, route: options.routeData?.route, err },
        'render failed: Astro answers 500 with the error page; the stack shows the page or component to fix',
      );
    }
    return renderError.call(this, request, options);
  };
}
