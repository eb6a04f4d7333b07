// GET /api/late-throw: fails after an await, i.e. as a rejected promise, not a synchronous throw.
import type { APIRoute } from 'astro';

export const GET: APIRoute = async () => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  throw new Error('boom: deliberate late failure in an endpoint');
};
