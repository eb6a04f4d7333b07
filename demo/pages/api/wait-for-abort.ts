// GET /api/wait-for-abort?id=…&wait=ms: waits until Astro.request.signal aborts (the client went
// away) or `wait` ms pass (default 5000), and records which on globalThis, for the in-process
// tests of the request's signal (test/astro/web-request.test.ts).
import type { APIRoute } from 'astro';

const shared = globalThis as { __abortTestHooks?: Map<string, 'waiting' | 'aborted' | 'timeout'> };
shared.__abortTestHooks ??= new Map();
const outcomes = shared.__abortTestHooks;

export const GET: APIRoute = async ({ request, url }) => {
  const id = url.searchParams.get('id') ?? '';
  const wait = Number(url.searchParams.get('wait') ?? 5000);
  outcomes.set(id, 'waiting');
  const outcome = await new Promise<'aborted' | 'timeout'>((resolve) => {
    const { signal } = request;
    if (signal.aborted) return resolve('aborted');
    const timer = setTimeout(() => resolve('timeout'), wait);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve('aborted');
      },
      { once: true },
    );
  });
  outcomes.set(id, outcome);
  return new Response(outcome, { headers: { 'content-type': 'text/plain' } });
};
