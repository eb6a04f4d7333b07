// A rung of `npm run bench:ladder`: Fastify with no logger and the origin plugin alone (static
// files, the catch-all, the bridge, render turns), none of the production plugins (hardening,
// load shedding, compression, metrics, health, the request log). Usage (HOST, PORT from env):
// node load/plugin-server.ts <buildDir>
import Fastify from 'fastify';
import { astroOrigin } from '../src/plugin.ts';

const fastify = Fastify({ logger: false });
await fastify.register(astroOrigin, { buildDir: process.argv[2] ?? 'dist' });
await fastify.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 4321) });
