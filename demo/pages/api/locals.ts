// GET /api/locals: the request's `locals` as JSON, to check what the origin injects.
import type { APIRoute } from 'astro';
import { json } from './_json.ts';

export const GET: APIRoute = (ctx) => json(ctx.locals);
