// Where the process is in its life: starting, ready for traffic, draining. /readyz reports it;
// while draining, every response closes its connection so clients reconnect elsewhere.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

export interface Lifecycle {
  /** Listening and loaded: /readyz answers 200. */
  ready: boolean;
  /** Shutting down: /readyz answers 503, every response carries Connection: close. */
  draining: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

const lifecyclePlugin: FastifyPluginAsync = async (fastify) => {
  const lifecycle: Lifecycle = { ready: false, draining: false };
  fastify.decorate('lifecycle', lifecycle);
  // The listener is closed by the time this matters, so the client's next connection reaches
  // another instance (see RunningOrigin.close()).
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (lifecycle.draining) reply.header('connection', 'close');
    done(null, payload);
  });
};

export const lifecycle = fp(lifecyclePlugin, { name: 'astro-origin-lifecycle', fastify: '5.x' });
