import type { FastifyPluginAsync } from 'fastify';

const statusSchema = {
  response: {
    200: { type: 'object', properties: { status: { type: 'string' } } },
    503: { type: 'object', properties: { status: { type: 'string' } } },
  },
} as const;

/** /healthz: the process answers (liveness). /readyz: it should get traffic (readiness). */
const healthRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.get('/healthz', { schema: statusSchema }, async () => ({ status: 'ok' }));
  fastify.get('/readyz', { schema: statusSchema }, async (_request, reply) => {
    const { ready, draining } = fastify.lifecycle;
    if (draining) return reply.code(503).send({ status: 'draining' });
    if (!ready) return reply.code(503).send({ status: 'starting' });
    return { status: 'ready' };
  });
};

export default healthRoutes;
