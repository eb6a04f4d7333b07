// Hostile and malformed input: every refusal is a short JSON 4xx that says what was wrong and
// what to do, decided before routing and rendering (Astro never sees these requests). Costs
// per accepted request: a few string and length checks and one small regex on Host.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  LogController,
} from 'fastify';
import fp from 'fastify-plugin';
import { OverloadedError, PluginOptionsError } from '../errors.ts';
import { ROUTE_LABELS, setRouteLabel } from '../route-label.ts';

/** Methods the origin answers; anything else Node parses is 405 with this Allow list. */
export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** A Host header: empty, or reg-name / IPv4 / [IPv6], with an optional port (RFC 9110 §7.2). */
const VALID_HOST = /^(?:(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?)?$/;

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

function refuse(request: FastifyRequest, reply: FastifyReply, statusCode: number, message: string): void {
  setRouteLabel(request, ROUTE_LABELS.rejected);
  reply.code(statusCode).header('cache-control', 'no-store').send(errorBody(statusCode, message));
}

export interface HardeningOptions {
  /** Longest URL (path + query) accepted; longer gets 414. */
  maxUrlBytes: number;
  /** Most header fields accepted; more gets 431. */
  maxHeadersCount: number;
  /** The server's bodyLimit, for the 413 message. */
  bodyLimitBytes: number;
}

const wholeNumber = (value: unknown) => Number.isInteger(value) && (value as number) >= 0;

/**
 * Checks on the request head that Node's parser does not make: request-target form, URL
 * length (414), header count (431), Host syntax (400). Plus 405 for methods the catch-all
 * does not take, and clear messages for Fastify's own 4xx (bad percent-encoding, 413).
 * Sets the not-found and error handlers of the app it is registered in.
 */
const hardeningPlugin: FastifyPluginAsync<HardeningOptions> = async (fastify, options) => {
  for (const name of ['maxUrlBytes', 'maxHeadersCount', 'bodyLimitBytes'] as const) {
    if (!wholeNumber(options[name])) throw new PluginOptionsError(`hardening: ${name} must be an integer >= 0`);
  }
  const { maxUrlBytes: maxUrl, maxHeadersCount, bodyLimitBytes } = options;
  const maxRawHeaders = maxHeadersCount * 2;
  const allow = ALLOWED_METHODS.join(', ');

  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const url = raw.url ?? '';
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      if (url === '*' && raw.method === 'OPTIONS') {
        setRouteLabel(request, ROUTE_LABELS.rejected);
        reply.code(204).header('allow', allow).send();
        return;
      }
      refuse(
        request,
        reply,
        400,
        'The request target must be a path starting with "/"; absolute and authority forms are for proxies, not an origin.',
      );
      return;
    }
    if (url.length > maxUrl) {
      refuse(
        request,
        reply,
        414,
        `The URL is longer than ${maxUrl} bytes; shorten the path and query (move data into a POST body).`,
      );
      return;
    }
    if (raw.rawHeaders.length > maxRawHeaders) {
      refuse(request, reply, 431, `The request has more than ${maxHeadersCount} header fields; send fewer headers.`);
      return;
    }
    const host = raw.headers.host;
    if (host === undefined ? raw.httpVersion === '1.1' : !VALID_HOST.test(host)) {
      refuse(
        request,
        reply,
        400,
        host === undefined
          ? 'HTTP/1.1 requests need a Host header.'
          : 'The Host header is not a valid host[:port] (or there is more than one Host header).',
      );
      return;
    }
    done();
  });

  // CONNECT (a proxy tunnel request): Node hands it to 'connect' listeners, and with none it
  // drops the socket without a word.
  fastify.server.on('connect', (_request: unknown, socket: Socket) => {
    writeAndClose(socket, 405, 'CONNECT is for proxies; this is an origin server.', { allow });
  });

  // The catch-all route takes every path for ALLOWED_METHODS, so "not found" here means a
  // method Node parses but the origin does not serve (TRACE, CONNECT, PROPFIND...).
  fastify.setNotFoundHandler((request, reply) => {
    setRouteLabel(request, ROUTE_LABELS.rejected);
    reply
      .code(405)
      .header('allow', allow)
      .header('cache-control', 'no-store')
      .send(errorBody(405, `The method ${request.method} is not allowed here; use one of ${allow}.`));
  });

  fastify.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode =
      error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    reply.header('cache-control', 'no-store');
    if (statusCode >= 500) {
      const overloaded = error instanceof OverloadedError;
      if (!overloaded) request.log.error({ err: error }, 'request failed before or outside rendering');
      const message = overloaded
        ? error.message
        : `The origin failed to handle this request; it was logged with request id ${request.id}.`;
      reply.code(statusCode).send(errorBody(statusCode, message));
      return;
    }
    const message =
      error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `The request body is larger than ${bodyLimitBytes} bytes; send a smaller body.`
        : error.message;
    reply.code(statusCode).send(errorBody(statusCode, message));
  });
};

/** Hostile and malformed input answered with clear 4xx; register it in the app's root context. */
export const hardening = fp(hardeningPlugin, { name: 'astro-origin-hardening', fastify: '5.x' });

/**
 * Fastify's frameworkErrors: errors Fastify raises before routing. A malformed
 * percent-encoding in the path (FST_ERR_BAD_URL) is the common one. These requests skip every
 * hook, so they are logged and counted here.
 */
export function createFrameworkErrors(logController: LogController) {
  return function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    // This request object is built outside the routing context: it skips every hook, so it is
    // labelled, counted and logged here.
    setRouteLabel(request, ROUTE_LABELS.rejected);
    request.server.observeHttp?.(request, reply);
    reply.raw.once('finish', () => logController.requestCompleted(null, request, reply));
    if (error.code === 'FST_ERR_BAD_URL') {
      refuse(
        request,
        reply,
        400,
        'The URL path is not valid percent-encoding: each "%" must start a "%XX" escape of UTF-8 bytes.',
      );
      return;
    }
    reply.send(error);
  };
}

// Errors Node's HTTP parser raises (llhttp codes) and what to tell the client.
const PARSER_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [
    431,
    'The request line and headers are larger than the server accepts; send a shorter URL and fewer or smaller headers.',
  ],
  HPE_INVALID_METHOD: [400, 'The request method is not a valid HTTP method.'],
  HPE_INVALID_URL: [400, 'The request target is not a valid URL path.'],
  HPE_INVALID_HEADER_TOKEN: [400, 'A header name contains characters not allowed in HTTP.'],
  HPE_INVALID_VERSION: [400, 'The HTTP version is not valid; use HTTP/1.1.'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [400, 'Content-Length and Transfer-Encoding conflict; send only one of them.'],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'The Transfer-Encoding is not valid; use chunked.'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'The Content-Length is not valid.'],
  HPE_INVALID_CHUNK_SIZE: [400, 'A chunk size in the chunked body is not valid.'],
  HPE_PAUSED_H2_UPGRADE: [400, 'HTTP/2 without TLS (prior knowledge) is not served here; use HTTP/1.1.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request did not arrive in time; send the whole request head and body promptly.'],
};

/**
 * Fastify's clientErrorHandler: the answer to bytes Node cannot parse as HTTP (the socket is
 * closed after it). Node's own answers are status lines with no explanation.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [statusCode, message] = PARSER_ERRORS[err.code ?? ''] ?? [
    400,
    'The request is not valid HTTP/1.1 (a control character, a malformed header or a malformed request line).',
  ];
  this.log.debug({ err }, 'client error');
  // A response already started on this connection: extra bytes would corrupt it.
  if ((socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  writeAndClose(socket, statusCode, message, {}, err.code);
}

/** Writes a complete JSON error response on a raw socket and closes it. */
function writeAndClose(
  socket: Socket,
  statusCode: number,
  message: string,
  headers: Record<string, string> = {},
  code?: string,
): void {
  if (socket.writable) {
    const body = JSON.stringify({ ...errorBody(statusCode, message), code });
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.write(
      `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${extra}Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
