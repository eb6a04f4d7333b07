// GET /api/redirect: a 302 to the first docs page.
import type { APIRoute } from 'astro';
import { FIRST_DOCS_PAGE } from '../../components/nav.ts';

export const GET: APIRoute = (ctx) => ctx.redirect(FIRST_DOCS_PAGE, 302);
