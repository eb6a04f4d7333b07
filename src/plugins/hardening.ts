// Hostile and malformed input: every refusal is a short JSON 4xx that says what was wrong and
// what to do, decided before routing and rendering (Astro never sees these requests). Costs
// per accepted request: a few string and length checks and one small regex on Host.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, LogController } from 'fastify';
import type { Config } from '../config.ts';

/** Error code of the overload plugin's 503s: expected under load, so not logged as errors. */
export const OVERLOADED_CODE = 'ORIGIN_OVERLOADED';

/** Route label of requests refused before routing (bounded: one value for all of them). */
export const REJECTED_ROUTE = '(rejected)';

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
  request.astroRoute = REJECTED_ROUTE;
  reply.code(statusCode).header('cache-control', 'no-store').send(errorBody(statusCode, message));
}

/**
 * Checks on the request head that Node's parser does not make: request-target form, URL
 * length (414), header count (431), Host syntax (400). Plus 405 for methods the catch-all
 * does not take, and clear messages for Fastify's own 4xx (bad percent-encoding, 413).
 */
export function registerHardening(fastify: FastifyInstance, config: Config): void {
  const maxUrl = config.MAX_URL_BYTES;
  const maxRawHeaders = config.MAX_HEADERS_COUNT * 2;
  const allow = ALLOWED_METHODS.join(', ');

  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw;
    const url = raw.url ?? '';
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      if (url === '*' && raw.method === 'OPTIONS') {
        request.astroRoute = REJECTED_ROUTE;
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
      refuse(
        request,
        reply,
        431,
        `The request has more than ${config.MAX_HEADERS_COUNT} header fields; send fewer headers.`,
      );
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
    request.astroRoute = REJECTED_ROUTE;
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
      if (error.code !== OVERLOADED_CODE)
        request.log.error({ err: error }, 'request failed before or outside rendering');
      reply
        .code(statusCode)
        .send(
          errorBody(
            statusCode,
            error.code === OVERLOADED_CODE
              ? error.message
              : `The origin failed to handle this request; it was logged with request id ${request.id}.`,
          ),
        );
      return;
    }
    const message =
      error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `The request body is larger than ${config.BODY_LIMIT_BYTES} bytes; send a smaller body.`
        : error.message;
    reply.code(statusCode).send(errorBody(statusCode, message));
  });
}

const rejectedLabel = () => REJECTED_ROUTE;

/**
 * Fastify's frameworkErrors: errors Fastify raises before routing. A malformed
 * percent-encoding in the path (FST_ERR_BAD_URL) is the common one. These requests skip every
 * hook, so they are logged and counted here.
 */
export function createFrameworkErrors(logController: LogController) {
  return function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    // This request object is built outside the routing context: it has no request decorators.
    request.routeLabel = rejectedLabel;
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
    request.astroRoute = REJECTED_ROUTE;
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
