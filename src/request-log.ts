import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino from 'pino';
import { routeLabel } from './route-label.ts';

/**
 * Log characters gathered before one write to stdout (~32 KB; a busy origin writes ~130 request
 * lines at once).
 */
export const LOG_BUFFER_BYTES = 32 * 1024;
/**
 * Longest a gathered line waits for its write when traffic is light. Each write is a round trip
 * through libuv's thread pool that wakes the loop; at 100 ms (and 4 KB batches) those writes
 * were ~3 % of the CPU per request of a small page at a moderate pace, against 1 s and 32 KB.
 */
export const LOG_FLUSH_INTERVAL_MS = 1000;
/** Lines at this pino level and above (warn, error, fatal) are written at once: few, and wanted without delay. */
export const LOG_WRITE_AT_ONCE_LEVEL: number = pino.levels.values.warn!;

/**
 * stdout for the origin's logger, written asynchronously and in batches: pino's default
 * destination is asynchronous too but writes each line on its own as soon as it can (one
 * write through libuv's thread pool per request). Lines wait at most LOG_FLUSH_INTERVAL_MS;
 * shutdown flushes them (src/standalone.ts) and pino writes what is left synchronously on
 * exit. A SIGKILL (the OOM killer) loses at most that window: one second, or 32 KB of lines.
 *
 * The lines are gathered here, in an array joined once per batch, and sonic-boom (pino's
 * destination) gets whole batches. Gathered in sonic-boom (its `minLength`), each line cost a
 * copy of the batch so far: it appends to one string and measures that string's UTF-8 length on
 * every write, which flattens it (16 KB allocated per request line at 32 KB batches; heap
 * sampling, tiny page). sonic-boom still does the writing: asynchronous, partial writes and
 * EAGAIN retried, a batch that comes during a write queued behind it, a synchronous flush on exit.
 *
 * The flush timer is armed by the first line after a write, not run on an interval
 * (sonic-boom's `periodicFlush`): an interval writes nothing through the thread pool ten times a
 * second when nothing waits, waking an idle origin for it.
 *
 * Warnings and errors are not batched: pino tells the destination each line's level (its
 * metadata protocol, as for pino.multistream), and those lines go out with what waits.
 */
export class BatchedStdout implements pino.DestinationStream {
  readonly #out: pino.DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void };
  #lines: string[] = [];
  /** Characters in #lines (UTF-16 code units: the batch size need not be exact bytes). */
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Asks pino to set lastLevel before each write. */
  readonly [pino.symbols.needsMetadataGsym] = true;
  /** The level of the line being written (set by pino). */
  lastLevel = 0;

  constructor(dest: number | string = 1) {
    // minLength 1: every batch handed over (always more than a byte) is written as soon as no
    // write is in flight. Not 0: at 0 sonic-boom's flush(cb) calls back at once, before a write
    // in flight has finished, and shutdown would not wait for the last lines.
    this.#out = pino.destination({ dest, sync: false, minLength: 1, maxWrite: 2 * LOG_BUFFER_BYTES });
  }

  /** A flush is due: lines were written since the last one. */
  get flushPending(): boolean {
    return this.#timer !== undefined;
  }

  write(line: string): void {
    this.#lines.push(line);
    this.#size += line.length;
    if (this.lastLevel >= LOG_WRITE_AT_ONCE_LEVEL || this.#size >= LOG_BUFFER_BYTES) this.#handOver();
    else this.#timer ??= setTimeout(this.#handOver, LOG_FLUSH_INTERVAL_MS).unref();
  }

  /** pino's logger.flush(cb) (shutdown) ends here. */
  flush(cb?: (err?: Error) => void): void {
    this.#handOver();
    this.#out.flush(cb);
  }

  /** pino's fatal() and its exit handler end here. */
  flushSync(): void {
    this.#handOver();
    this.#out.flushSync();
  }

  readonly #handOver = (): void => {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#size === 0) return;
    const batch = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('');
    this.#lines = [];
    this.#size = 0;
    this.#out.write(batch);
  };
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
