// Fastify request → Web Request → Astro → Web Response → Fastify reply. Knows nothing about
// metrics: it publishes each finished render on a diagnostics channel for whoever listens.
import diagnostics from 'node:diagnostics_channel';
import { Readable } from 'node:stream';
import { createRequest, getAbortControllerCleanup } from 'astro/app/node';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Astro's own symbol for the client address it derived (astro/dist/core/constants.js). */
const clientAddressSymbol = Symbol.for('astro.clientAddress');

export interface RenderEvent {
  route: string;
  renderer: string;
  /** Seconds from the start of app.render() until the body was complete. */
  seconds: number;
}
export const renderChannel = diagnostics.channel('astro-fastify-origin:render');

export interface WebRequest {
  request: Request;
  clientAddress: string | undefined;
}

/**
 * Builds the Web Request with Astro's own createRequest, so X-Forwarded-Host/Proto/For are
 * trusted exactly when Astro trusts them (security.allowedDomains). Fastify has already read
 * the body within its bodyLimit (413 past it); it is handed over as bytes.
 */
export type AllowedDomains = NonNullable<Parameters<typeof createRequest>[1]>['allowedDomains'];

export function toWebRequest(request: FastifyRequest, allowedDomains: AllowedDomains): WebRequest {
  const raw = request.raw;
  let web = createRequest(raw, { skipBody: true, allowedDomains });
  const clientAddress = Reflect.get(web, clientAddressSymbol) as string | undefined;
  const body = request.body;
  if (Buffer.isBuffer(body) && body.byteLength > 0 && web.method !== 'GET' && web.method !== 'HEAD') {
    web = new Request(web, { body: body as Buffer<ArrayBuffer> });
  }
  return { request: web, clientAddress };
}

/** Drops the socket listener Astro's createRequest added, once the exchange is over. */
export function releaseWebRequest(request: FastifyRequest): void {
  getAbortControllerCleanup(request.raw)?.();
}

/**
 * Sends an Astro Response through Fastify: status, every header, each Set-Cookie on its own
 * line. Bodies of known length (queue renders, endpoints) go as one buffer; streamed bodies
 * go through a Readable that Fastify pipes with backpressure and destroys on client abort.
 */
export async function sendWebResponse(
  reply: FastifyReply,
  response: Response,
  onBodyComplete?: () => void,
): Promise<unknown> {
  reply.code(response.status);
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') headers[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  reply.headers(headers);

  if (!response.body) {
    onBodyComplete?.();
    return reply.send();
  }
  if (response.headers.has('content-length')) {
    const bytes = Buffer.from(await response.arrayBuffer());
    onBodyComplete?.();
    return reply.send(bytes);
  }
  const stream = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
  if (onBodyComplete) stream.once('end', onBodyComplete);
  return reply.send(stream);
}
