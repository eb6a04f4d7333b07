// Fastify request → Web Request → Astro → Web Response → Fastify reply. Knows nothing about
// metrics: it publishes each finished render on a diagnostics channel for whoever listens.
import diagnostics from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { createRequest, getAbortControllerCleanup } from 'astro/app/node';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { clientAddressOf } from './astro-internals.ts';

export interface RenderEvent {
  route: string;
  renderer: string;
  /** Seconds from the start of app.render() until the body was complete. */
  seconds: number;
}
export const renderChannel = diagnostics.channel('astro-fastify-origin:render');

export interface QueueNodesEvent {
  route: string;
  /** Queue nodes the render acquired from the pool policy's pool. */
  nodes: number;
}
/** One message per queue render, once its body is complete; only while someone subscribes. */
export const queueNodesChannel = diagnostics.channel('astro-fastify-origin:queue-nodes');

export interface WebRequest {
  request: Request;
  clientAddress: string | undefined;
}

/** The `security.allowedDomains` of the site: the hosts whose X-Forwarded-* Astro trusts. */
export type AllowedDomains = NonNullable<Parameters<typeof createRequest>[1]>['allowedDomains'];

/** Astro's Node request helpers, taken from the build's own bundled copy (LoadedBuild.astroNode). */
export interface AstroNodeApi {
  createRequest: typeof createRequest;
  getAbortControllerCleanup: typeof getAbortControllerCleanup;
}

/**
 * Without security.allowedDomains, Astro trusts neither Host nor X-Forwarded-*: createRequest
 * gives `<protocol>://localhost<path>`, the request's headers and the socket's address. That
 * common case is built here with the same URL, method, headers and address (a test compares
 * the two), and one difference: Astro.request.signal is made on first read instead of up
 * front. Making it eagerly (an AbortController, the signal undici's Request then follows, a
 * socket listener set and removed) was ~20 µs a request on this project's bench machine,
 * about 10 % of a small page, for a signal most pages never read.
 * With allowedDomains set, createRequest itself builds the request, so X-Forwarded-Host/Proto/For
 * are trusted exactly when Astro trusts them. Fastify has already read the body within its
 * bodyLimit (413 past it); it is handed over as bytes.
 */
export function toWebRequest(
  request: FastifyRequest,
  allowedDomains: AllowedDomains,
  astroNode?: AstroNodeApi,
): WebRequest {
  const raw = request.raw;
  const body = request.body;
  const withBody = Buffer.isBuffer(body) && body.byteLength > 0 && raw.method !== 'GET' && raw.method !== 'HEAD';
  if (allowedDomains?.length) {
    if (!astroNode)
      throw new TypeError(
        "toWebRequest: with allowedDomains, Astro's createRequest builds the request: pass the build's LoadedBuild.astroNode as the third argument",
      );
    const web = astroNode.createRequest(raw, { skipBody: true, allowedDomains });
    // The address is on this object only, not on a copy made to add the body.
    const clientAddress = clientAddressOf(web);
    return { request: withBody ? new Request(web, { body: body as Buffer<ArrayBuffer> }) : web, clientAddress };
  }
  const protocol = (raw.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const init: RequestInit = {
    method: raw.method || 'GET',
    headers: requestHeaders(raw),
    body: withBody ? (body as Buffer<ArrayBuffer>) : undefined,
  };
  let web: Request;
  try {
    web = new NodeRequest(`${protocol}://localhost${raw.url}`, init, raw);
  } catch {
    // As createRequest: a target URL that cannot parse gets the origin alone (the hardening
    // hook refuses most of them first).
    web = new NodeRequest(`${protocol}://localhost`, init, raw);
  }
  return { request: web, clientAddress: raw.socket?.remoteAddress };
}

/** createRequest's makeRequestHeaders: every value, repeated headers appended one by one. */
function requestHeaders(raw: IncomingMessage): Headers {
  const headers = new Headers();
  const all = raw.headers;
  for (const name in all) {
    const value = all[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.append(name, value);
  }
  return headers;
}

/** Where a lazily made signal keeps its cleanup (the socket listener) until the exchange ends. */
const releaseSignal = Symbol('astro-fastify-origin.releaseSignal');
type RawWithSignal = IncomingMessage & { [releaseSignal]?: (() => void) | null };

/**
 * A Request whose `signal` is made on first read: aborted when the client's connection closes
 * before the exchange is over, as createRequest's is. Read after the exchange (a waitUntil
 * task), it never aborts. Clones and rewrites (request.clone(), next(url)) read it, so they
 * follow it too. A subclass, so instances keep Request's shape (a per-instance getter cost more).
 */
class NodeRequest extends Request {
  readonly #raw: RawWithSignal;
  #signal: AbortSignal | undefined;

  constructor(url: string, init: RequestInit, raw: IncomingMessage) {
    super(url, init);
    this.#raw = raw;
  }

  override get signal(): AbortSignal {
    if (this.#signal) return this.#signal;
    const controller = new AbortController();
    this.#signal = controller.signal;
    const raw = this.#raw;
    const socket = raw.socket;
    // null: the exchange is over (releaseWebRequest ran); nothing to follow any more.
    if (raw[releaseSignal] === null || !socket) return this.#signal;
    if (socket.destroyed) {
      controller.abort();
      return this.#signal;
    }
    const onClose = () => {
      raw[releaseSignal] = null;
      controller.abort();
    };
    socket.once('close', onClose);
    raw[releaseSignal] = () => socket.off('close', onClose);
    return this.#signal;
  }
}

/**
 * Drops the socket listener the request's signal added (ours, or createRequest's: pass the
 * build's astroNode when allowedDomains made createRequest build it), once the exchange is over.
 */
export function releaseWebRequest(request: FastifyRequest, astroNode?: AstroNodeApi): void {
  const raw = request.raw as RawWithSignal;
  raw[releaseSignal]?.();
  raw[releaseSignal] = null;
  astroNode?.getAbortControllerCleanup(raw)?.();
}

export interface SendHooks {
  /** Called once the whole body has been produced (for the render-duration metric). */
  onBodyComplete?: () => void;
  /**
   * The body failed before anything was sent: returns the Response to send instead (Astro's
   * 500 page), sent without these hooks.
   */
  onErrorBeforeSend?: (error: unknown) => Promise<Response>;
  /** The body failed after the response had started: it is cut (the client sees a reset). */
  onErrorWhileStreaming?: (error: unknown) => void;
}

/** Known-length bodies up to this size are read whole and sent in one write. */
export const KNOWN_LENGTH_BUFFER_LIMIT_BYTES = 1024 * 1024;
/** A streamed body larger than this is streamed even if it is all there at once. */
export const BUFFER_LIMIT_BYTES = 64 * 1024;

/**
 * Sends an Astro Response through Fastify: status, every header, each Set-Cookie on its own
 * line. Headers are applied only when the body is ready to go, so a body that fails first
 * leaves nothing of the page (cookies included) on the 500 that replaces it.
 */
export async function sendWebResponse(
  reply: FastifyReply,
  response: Response,
  hooks: SendHooks = {},
): Promise<unknown> {
  // Straight onto the reply: no intermediate object, and getSetCookie() only when there are cookies.
  const applyHead = () => {
    reply.code(response.status);
    let cookies = false;
    for (const [name, value] of response.headers) {
      if (name === 'set-cookie') cookies = true;
      else reply.header(name, value);
    }
    if (cookies) reply.header('set-cookie', response.headers.getSetCookie());
  };
  if (!response.body) {
    hooks.onBodyComplete?.();
    applyHead();
    return reply.send();
  }
  const length = Number(response.headers.get('content-length') ?? NaN);
  if (length <= KNOWN_LENGTH_BUFFER_LIMIT_BYTES) {
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      return failBeforeSend(reply, error, hooks);
    }
    hooks.onBodyComplete?.();
    applyHead();
    return reply.send(bytes);
  }
  return sendStreamed(reply, response.body, applyHead, hooks);
}

async function failBeforeSend(reply: FastifyReply, error: unknown, hooks: SendHooks): Promise<unknown> {
  if (!hooks.onErrorBeforeSend) throw error;
  return sendWebResponse(reply, await hooks.onErrorBeforeSend(error));
}

const noop = () => {};
/** Astro enqueues Uint8Arrays; an endpoint's own stream may enqueue strings. */
const toBytes = (chunk: Uint8Array | string): Uint8Array => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk);

/**
 * A recursive render streams its page in many small chunks. What the renderer produces before
 * the event loop turns (everything that waits for no I/O or timer: most .astro pages, whole)
 * is gathered; if the body ends by then it goes as one buffer with a Content-Length, in one
 * write. Otherwise the response starts when the loop turns, with what is there (possibly
 * nothing yet), and the rest streams as it comes, with backpressure. When the client goes
 * away the stream is cancelled, which stops Astro's render.
 * Measured against piping Readable.fromWeb(), 3 alternating rounds: +2.2 % req/s on the demo's
 * .astro home page (1.02–1.04×); MDX pages arrive with a length and do not come here.
 * The gathering takes one continuation per chunk and one timer per response (an earlier
 * version raced every read against the turn: a Promise.race and three reactions per chunk).
 */
async function sendStreamed(
  reply: FastifyReply,
  body: ReadableStream<Uint8Array | string>,
  applyHead: () => void,
  hooks: SendHooks,
): Promise<unknown> {
  const reader = body.getReader();
  // A cancelled reader reports `done` too: only a body read to its end counts as a render.
  let cancelled = false;
  const cancel = () => {
    cancelled = true;
    void reader.cancel().catch(noop);
  };
  const onClose = () => {
    if (!reply.raw.writableFinished) cancel();
  };
  // 'close' has already fired if the client left during the render.
  if (reply.raw.destroyed) cancel();
  else reply.raw.once('close', onClose);
  const chunks: Uint8Array[] = [];
  let size = 0;
  let pending = reader.read();
  let ended: boolean;
  try {
    // true: the body ended before the loop turned; false: the rest is still to come, in `pending`.
    ended = await new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const settle = (value: boolean) => {
        settled = true;
        clearImmediate(immediate);
        resolve(value);
      };
      // Once the loop has turned, the read in flight belongs to the streaming phase below.
      const onRead = (result: ReadableStreamReadResult<Uint8Array | string>) => {
        if (settled) return;
        if (result.done) return settle(true);
        const bytes = toBytes(result.value);
        chunks.push(bytes);
        size += bytes.byteLength;
        pending = reader.read();
        if (size >= BUFFER_LIMIT_BYTES) return settle(false);
        pending.then(onRead, onError);
      };
      const onError = (error: unknown) => {
        if (settled) return;
        settled = true;
        clearImmediate(immediate);
        reject(error);
      };
      const immediate = setImmediate(() => {
        if (!settled) settle(false);
      });
      pending.then(onRead, onError);
    });
  } catch (error) {
    reply.raw.off('close', onClose);
    cancel();
    return failBeforeSend(reply, error, hooks);
  }
  if (ended) {
    reply.raw.off('close', onClose);
    if (!cancelled) hooks.onBodyComplete?.();
    applyHead();
    const only = chunks.length === 1 ? chunks[0]! : undefined;
    return reply.send(only ? Buffer.from(only.buffer, only.byteOffset, only.byteLength) : Buffer.concat(chunks, size));
  }
  // The read in flight may fail before the generator awaits it (client gone): handled there.
  pending.catch(noop);
  const head = size > 0 ? Buffer.concat(chunks, size) : undefined;
  async function* rest(): AsyncGenerator<Uint8Array> {
    try {
      if (head) yield head;
      for (;;) {
        const { done, value } = await pending;
        if (done) {
          if (!cancelled) hooks.onBodyComplete?.();
          return;
        }
        yield toBytes(value);
        pending = reader.read();
      }
    } catch (error) {
      // Cut the connection, so the client cannot take the partial body for a whole one, and
      // end the stream quietly: the error is reported here once, not again by every stage
      // of the pipe (compression, Fastify).
      hooks.onErrorWhileStreaming?.(error);
      reply.raw.destroy();
    } finally {
      cancel();
    }
  }
  const stream = Readable.from(rest(), { objectMode: false });
  applyHead();
  return reply.send(stream);
}
