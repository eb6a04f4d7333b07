// Keep-alive clients that send their next request the moment the previous answer is complete,
// as browsers behind a CDN and CDN edge pools do. Used to judge a graceful shutdown: a request
// written to a connection the server had accepted must get an answer; only a connection the
// server refuses (the listener is closed) is allowed to fail.
import { Agent, request } from 'node:http';

export interface Failure {
  /** Client number, 0-based. */
  client: number;
  /** ECONNRESET, "socket hang up" (closed before any byte of the answer), EPIPE... */
  code: string;
  /** Requests this connection carried, this one included (1: a new connection). */
  requestsOnConnection: number;
  /** When that connection was established, in ms after mark() (negative: before; undefined: never). */
  connectedAtMs: number | undefined;
  /** The answer had started (status and headers read) when the connection failed. */
  afterHead: boolean;
  /** When it failed, in ms after mark() (negative: before). */
  atMs: number;
}

export interface KeepAliveResult {
  /** Requests written to a connection (new or kept alive). */
  sent: number;
  /** Responses read in full, by status. */
  byStatus: Record<string, number>;
  /** Responses that carried `Connection: close`. */
  connectionClose: number;
  /** Connection attempts refused by the server (no listener): allowed. */
  refused: number;
  /** Requests written to an open connection that got no complete answer. */
  failures: Failure[];
}

export interface KeepAliveClients {
  /** Complete responses so far. */
  answered(): number;
  /** Clients that have had at least one complete response. */
  served(): number;
  /** Sets the reference time of Failure.atMs (e.g. the moment of the signal). */
  mark(): void;
  /** Stops every client (after its current request) and resolves with the counts. */
  stop(): Promise<KeepAliveResult>;
}

/**
 * Starts `clients` loops, each with one keep-alive connection at a time (an Agent with
 * maxSockets 1). A loop ends on its first refused connection: the server has stopped
 * accepting, as a client behind a balancer would then go elsewhere.
 */
export function startKeepAliveClients(url: string, path: string, { clients = 40 } = {}): KeepAliveClients {
  const result: KeepAliveResult = { sent: 0, byStatus: {}, connectionClose: 0, refused: 0, failures: [] };
  let answered = 0;
  let stopped = false;
  let markedAt = performance.now();
  const perClient: number[] = [];
  const connections = new WeakMap<object, { requests: number; connectedAt?: number }>();

  const once = (client: number, agent: Agent): Promise<'again' | 'refused'> =>
    new Promise((resolve) => {
      let connection: { requests: number; connectedAt?: number } = { requests: 0 };
      let head = false;
      let written = false;
      let settled = false;
      const fail = (err: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        if (!written && err.code === 'ECONNREFUSED') {
          result.refused++;
          resolve('refused');
          return;
        }
        result.failures.push({
          client,
          code: err.code ?? err.message,
          requestsOnConnection: connection.requests,
          connectedAtMs: connection.connectedAt,
          afterHead: head,
          atMs: Math.round(performance.now() - markedAt),
        });
        resolve('again');
      };
      const req = request(`${url}${path}`, { agent }, (res) => {
        head = true;
        res.on('data', () => {});
        res.on('end', () => {
          if (settled) return;
          settled = true;
          answered++;
          result.byStatus[res.statusCode ?? 0] = (result.byStatus[res.statusCode ?? 0] ?? 0) + 1;
          if (res.headers.connection === 'close') result.connectionClose++;
          perClient[client] = (perClient[client] ?? 0) + 1;
          resolve('again');
        });
        res.on('aborted', () => fail(Object.assign(new Error('response cut'), { code: 'RESPONSE_CUT' })));
        res.on('error', fail);
      });
      req.on('socket', (socket) => {
        let known = connections.get(socket);
        if (!known) {
          const fresh: { requests: number; connectedAt?: number } = { requests: 0 };
          socket.once('connect', () => (fresh.connectedAt = Math.round(performance.now() - markedAt)));
          connections.set(socket, fresh);
          known = fresh;
        }
        known.requests++;
        connection = known;
      });
      req.on('finish', () => {
        written = true;
        result.sent++;
      });
      req.on('error', fail);
      req.end();
    });

  const loops = Array.from({ length: clients }, async (_, client) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!stopped && (await once(client, agent)) === 'again');
    } finally {
      agent.destroy();
    }
  });

  return {
    answered: () => answered,
    served: () => perClient.filter((n) => n > 0).length,
    mark() {
      markedAt = performance.now();
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return result;
    },
  };
}
