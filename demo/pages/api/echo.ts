// POST /api/echo: echoes a JSON body back with what the origin told Astro about the request.
// 201 and two Set-Cookie headers (a=1, b=2) on success; 400 when the body is not JSON.
// GET /api/echo: { ok: true }.
import type { APIRoute } from 'astro';
import { clientAddressOf, json } from './_json.ts';

export const GET: APIRoute = () => json({ ok: true });

export const POST: APIRoute = async (ctx) => {
  let received: unknown;
  try {
    const text = await ctx.request.text();
    received = JSON.parse(text);
  } catch (err) {
    return json({ error: `invalid JSON body: ${(err as Error).message}` }, { status: 400 });
  }
  ctx.cookies.set('a', '1', { path: '/', httpOnly: true, sameSite: 'lax' });
  ctx.cookies.set('b', '2', { path: '/', httpOnly: true, sameSite: 'lax' });
  return json(
    {
      received,
      locals: ctx.locals,
      clientAddress: clientAddressOf(ctx),
      method: ctx.request.method,
    },
    { status: 201 },
  );
};
