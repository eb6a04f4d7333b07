// The bounded route label of a request, for logs and metrics: an Astro route pattern or a
// route's own pattern, never a raw URL. Every label that is not a pattern is here, and every
// write goes through setRouteLabel().
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Labels for requests that no route pattern describes (one value each, whatever the URL). */
export const ROUTE_LABELS = {
  /** A file of the build's client dir. */
  static: '(static)',
  /** No Astro route matched: Astro rendered its 404 page. */
  unmatched: '(unmatched)',
  /** Refused before routing (hostile or malformed input, unknown method). */
  rejected: '(rejected)',
  /** Shed under load (503 + Retry-After). */
  overloaded: '(overloaded)',
} as const;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by setRouteLabel(); read by routeLabel(). */
    originRouteLabel: string | undefined;
  }
  interface FastifyContextConfig {
    /** A route's fixed label (static files: ROUTE_LABELS.static). */
    routeLabel?: string;
  }
}

/** Gives the request its label: an Astro route pattern, or one of ROUTE_LABELS. */
export function setRouteLabel(request: FastifyRequest, label: string): void {
  request.originRouteLabel = label;
}

/** The request's label: set explicitly, else its route's fixed label or pattern, else unmatched. */
export function routeLabel(request: FastifyRequest): string {
  return (
    request.originRouteLabel ??
    request.routeOptions.config?.routeLabel ??
    request.routeOptions.url ??
    ROUTE_LABELS.unmatched
  );
}

/** Declares the request property up front, so every request object has the same shape. */
export function decorateRouteLabel(fastify: FastifyInstance): void {
  if (!fastify.hasRequestDecorator('originRouteLabel')) fastify.decorateRequest('originRouteLabel', undefined);
}
