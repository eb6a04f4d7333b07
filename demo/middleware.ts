// The demo's middleware. A request with `x-render-delay-ms: N` (N ≤ 50) waits N ms before Astro
// renders it, as a middleware that awaits a session store or an auth service would: renders of
// concurrent requests then interleave before Astro builds their render state, which the tests
// of per-render figures (test/metrics/queue-nodes.test.ts) need to mean anything.
import { defineMiddleware } from 'astro:middleware';

export const onRequest = defineMiddleware(async (context, next) => {
  const delay = Number(context.request.headers.get('x-render-delay-ms'));
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(delay, 50)));
  return next();
});
