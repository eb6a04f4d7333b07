// A visit counter in Astro's session: 1, 2, 3… for one session cookie, whichever instance
// answers. Several instances share it only through a shared store (REDIS_URL): the topology
// test (test/topology/) counts through each instance in turn.
import type { APIRoute } from 'astro';
import { json } from './_json.ts';

export const GET: APIRoute = async ({ session }) => {
  if (!session) return json({ error: 'sessions are not configured' }, { status: 501 });
  const count = (((await session.get('count')) as number | undefined) ?? 0) + 1;
  session.set('count', count);
  return json({ count, pid: process.pid });
};
