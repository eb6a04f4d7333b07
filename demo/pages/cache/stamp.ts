// GET /cache/stamp: a page for the origin cache's tests, cacheable as its query says.
//   maxAge, swr (seconds) → context.cache.set(); tag=… (repeatable) → cache tags;
//   delay (ms, ≤ 2000) → a slow render; bytes (≤ 1 MiB) → body padding; status → 200/301/404/410/500;
//   cookie=1 → a Set-Cookie (Astro.cookies); private=1 → Cache-Control: private; vary=<header>.
// Each render is counted (GET /cache/renders) and numbered in the body and in X-Render-Count.
import type { APIRoute } from 'astro';
import { countRender } from './_renders.ts';

const int = (value: string | null, max: number) => Math.min(max, Math.max(0, Number.parseInt(value ?? '', 10) || 0));

export const ALL: APIRoute = async (ctx) => {
  const q = ctx.url.searchParams;
  const key = `${ctx.request.method} ${ctx.url.pathname}${ctx.url.search}`;
  const render = countRender(key);
  const maxAge = q.get('maxAge');
  if (maxAge !== null)
    ctx.cache.set({ maxAge: int(maxAge, 3600), swr: int(q.get('swr'), 3600), tags: q.getAll('tag') });
  const delay = int(q.get('delay'), 2000);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  if (q.get('cookie') === '1') ctx.cookies.set('stamp', String(render), { path: '/' });
  const headers = new Headers({ 'content-type': 'application/json', 'x-render-count': String(render) });
  if (q.get('private') === '1') headers.set('cache-control', 'private, max-age=60');
  const vary = q.get('vary');
  if (vary) headers.set('vary', vary);
  const status = [200, 301, 404, 410, 500].includes(Number(q.get('status'))) ? Number(q.get('status')) : 200;
  if (status === 301) headers.set('location', '/cache/stamp');
  const varied = vary ? ctx.request.headers.get(vary) : undefined;
  const body = JSON.stringify({ key, render, pid: process.pid, varied, pad: 'x'.repeat(int(q.get('bytes'), 1 << 20)) });
  return new Response(body, { status, headers });
};
