import 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** The Astro route pattern that rendered this request (set by routes/astro.ts). */
    astroRoute: string | undefined;
    /** Extra Astro.locals for this request; a hook may set them before the catch-all runs. */
    astroLocals: Record<string, unknown> | undefined;
    /** The body failed after the response had started (it was cut): a 500, not a client abort. */
    renderFailed: boolean;
    /** The bounded route label for logs and metrics: a route pattern, never a raw URL. */
    routeLabel(): string;
  }
  interface FastifyContextConfig {
    routeLabel?: string;
  }
  interface FastifyInstance {
    lifecycle: { ready: boolean; draining: boolean };
    poolPolicy: import('./astro/pool-policy.ts').PoolPolicy;
  }
}
