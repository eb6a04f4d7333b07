// A rung of `npm run bench:ladder`: bare's work (load/bare-server.ts) inside Fastify with no
// logger, hooks or plugins: what Fastify itself adds around the same render. Usage (HOST, PORT
// from env): node load/fastify-server.ts <buildDir>
import Fastify from 'fastify';
import { loadBuild } from '../src/astro/load-build.ts';

const { app } = await loadBuild(process.argv[2] ?? 'dist');
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 4321);
const fastify = Fastify({ logger: false });
fastify.get('/*', async (req, reply) => {
  const request = new Request(`http://${host}:${port}${req.url}`, { headers: req.headers as Record<string, string> });
  const response = await app.render(request);
  const body = Buffer.from(await response.arrayBuffer());
  reply.code(response.status);
  for (const [name, value] of response.headers) reply.header(name, value);
  return reply.send(body);
});
await fastify.listen({ host, port });
