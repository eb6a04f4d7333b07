// POST /cache/invalidate {"tags": [...]} or {"path": "/…"}: a purge from the site's own code
// (context.cache.invalidate), as a CMS webhook would do it. Demo only: a real site guards this.
import type { APIRoute } from 'astro';
import { json } from '../api/_json.ts';

export const POST: APIRoute = async (ctx) => {
  const body = (await ctx.request.json().catch(() => ({}))) as { tags?: string[]; path?: string };
  if (body.path) await ctx.cache.invalidate({ path: body.path });
  if (body.tags?.length) await ctx.cache.invalidate({ tags: body.tags });
  return json({ invalidated: body });
};
