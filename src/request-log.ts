import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino from 'pino';
import { routeLabel } from './route-label.ts';

/** Log bytes gathered before one write to stdout; a busy origin writes ~25 request lines at once. */
export const LOG_BUFFER_BYTES = 4096;
/** Longest a gathered line waits for its write when traffic is light. */
export const LOG_FLUSH_INTERVAL_MS = 100;

/**
 * stdout for the origin's logger, written asynchronously and in batches: pino's default
 * destination is asynchronous too but writes each line on its own as soon as it can (one
 * write through libuv's thread pool per request). Lines wait at most LOG_FLUSH_INTERVAL_MS;
 * shutdown flushes them (src/standalone.ts) and pino writes what is left synchronously on
 * exit. A SIGKILL loses at most that window.
 *
 * The flush timer is armed by the first line after a write, not run on an interval
 * (sonic-boom's `periodicFlush`): an interval writes nothing through the thread pool ten times a
 * second when nothing waits, waking an idle origin for it.
 */
export class BatchedStdout implements pino.DestinationStream {
  readonly #out: pino.DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void };
  #timer: NodeJS.Timeout | undefined;

  constructor(dest: number | string = 1) {
    this.#out = pino.destination({ dest, sync: false, minLength: LOG_BUFFER_BYTES });
  }

  /** A flush is due: lines were written since the last one. */
  get flushPending(): boolean {
    return this.#timer !== undefined;
  }

  write(line: string): void {
    this.#out.write(line);
    this.#timer ??= setTimeout(this.#flushNow, LOG_FLUSH_INTERVAL_MS).unref();
  }

  /** pino's logger.flush(cb) (shutdown) ends here. */
  flush(cb?: (err?: Error) => void): void {
    this.#cancel();
    this.#out.flush(cb);
  }

  /** pino's fatal() and its exit handler end here. */
  flushSync(): void {
    this.#cancel();
    this.#out.flushSync();
  }

  readonly #flushNow = (): void => {
    this.#timer = undefined;
    this.#out.flush();
  };

  #cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

export function logDestination(): pino.DestinationStream {
  return new BatchedStdout();
}

/**
 * One log line per request instead of Fastify's two ("incoming request" + "request
 * completed"), carrying the route pattern so logs group the way metrics do. Fastify's error
 * logs are left as they are. Nothing is built when the level is above info.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const log = reply.log;
    if (error) {
      log.error({ ...this.line(request, reply), err: error }, 'request errored');
    } else if ((log as Partial<pino.Logger>).isLevelEnabled?.('info') ?? true) {
      log.info(this.line(request, reply), 'request completed');
    }
  }

  private line(request: FastifyRequest, reply: FastifyReply) {
    return {
      method: request.method,
      url: request.url,
      route: routeLabel(request),
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
    };
  }
}
