import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import pino from 'pino';
import { routeLabel } from './route-label.ts';

/** Log bytes gathered before one write to stdout; a busy origin writes ~130 request lines at once. */
export const LOG_BUFFER_BYTES = 32 * 1024;
/**
 * Longest a gathered line waits for its write when traffic is light. Each write is a round trip
 * through libuv's thread pool that wakes the loop; at 100 ms (and 4 KB batches) those writes
 * were ~3 % of the CPU per request of a small page at a moderate pace, against 1 s and 32 KB.
 */
export const LOG_FLUSH_INTERVAL_MS = 1000;
/** Lines at this pino level and above (warn, error, fatal) are written at once: few, and wanted without delay. */
export const LOG_WRITE_AT_ONCE_LEVEL: number = pino.levels.values.warn!;
/** How soon a flush that met a write in flight is tried again. */
const FLUSH_RETRY_MS = 10;

/** sonic-boom in buffer mode (pino's types describe its default, string mode). */
interface BufferDestination {
  write(line: Buffer): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  /** sonic-boom's own: a write is in flight, and a flush() now would be ignored. */
  _writing?: boolean;
}

/**
 * stdout for the origin's logger, written asynchronously and in batches: pino's default
 * destination is asynchronous too but writes each line on its own as soon as it can (one
 * write through libuv's thread pool per request). Lines wait at most LOG_FLUSH_INTERVAL_MS;
 * shutdown flushes them (src/standalone.ts) and pino writes what is left synchronously on
 * exit. A SIGKILL (the OOM killer) loses at most that window: one second, or 32 KB of lines.
 *
 * sonic-boom (pino's destination) gathers the lines as Buffers (its `contentMode: 'buffer'`), one
 * per line, concatenated once per write. In its default mode it appends each line to one string
 * and measures that string's UTF-8 length on every write, which flattens it: a copy of the batch
 * so far for every line, 15.8 KB allocated per request line at 32 KB batches (heap sampling,
 * tiny page). The lines stay in sonic-boom, so its exit handler (registered by pino) still
 * writes them synchronously when the process exits.
 *
 * The flush timer is armed by the first line after a write, not run on an interval
 * (sonic-boom's `periodicFlush`): an interval writes nothing through the thread pool ten times a
 * second when nothing waits, waking an idle origin for it.
 *
 * Warnings and errors are not batched: pino tells the destination each line's level (its
 * metadata protocol, as for pino.multistream), and those lines flush what waits with them.
 */
export class BatchedStdout implements pino.DestinationStream {
  readonly #out: BufferDestination;
  #timer: NodeJS.Timeout | undefined;
  /** Asks pino to set lastLevel before each write. */
  readonly [pino.symbols.needsMetadataGsym] = true;
  /** The level of the line being written (set by pino). */
  lastLevel = 0;

  constructor(dest: number | string = 1) {
    // sonic-boom wants its largest single write above the batch size.
    this.#out = pino.destination({
      dest,
      sync: false,
      contentMode: 'buffer',
      minLength: LOG_BUFFER_BYTES,
      maxWrite: 2 * LOG_BUFFER_BYTES,
    }) as unknown as BufferDestination;
  }

  /** A flush is due: lines were written since the last one. */
  get flushPending(): boolean {
    return this.#timer !== undefined;
  }

  write(line: string): void {
    this.#out.write(Buffer.from(line));
    if (this.lastLevel >= LOG_WRITE_AT_ONCE_LEVEL) this.#flushNow();
    else this.#timer ??= setTimeout(this.#flushNow, LOG_FLUSH_INTERVAL_MS).unref();
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
    this.#cancel();
    // sonic-boom ignores a flush while a write is in flight, then keeps what came meanwhile
    // until a batch is full: without a retry a last line could wait for the next one.
    if (this.#out._writing) this.#timer = setTimeout(this.#flushNow, FLUSH_RETRY_MS).unref();
    else this.#out.flush();
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
