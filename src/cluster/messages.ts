// What the primary and its workers say to each other over the node:cluster IPC channel, and the
// environment variable the primary gives each worker. One place, so both sides agree.

/** The worker's slot (0..WORKERS-1), stable across restarts: its metrics label `worker`. */
export const WORKER_SLOT_ENV = 'ORIGIN_WORKER_SLOT';

/** Message types. Prefixed: a site's own code may use the IPC channel too. */
export const MESSAGE = {
  /** Worker → primary: listening and ready for traffic. */
  ready: 'astro-fastify-origin:ready',
  /**
   * Primary → worker: close your listener, and nothing else yet (keep-alive connections carry
   * on as usual). The first step of shutting the whole cluster down, see primary.ts.
   */
  stopAccepting: 'astro-fastify-origin:stop-accepting',
  /** Worker → primary: my listener is closed (sent after node:cluster's own close message), with the question's id. */
  stoppedAccepting: 'astro-fastify-origin:stopped-accepting',
  /** Primary → worker: drain as a single process does, and exit. */
  drain: 'astro-fastify-origin:shutdown',
  /** Primary → worker: send your metrics (registry.getMetricsAsJSON()). */
  metricsRequest: 'astro-fastify-origin:metrics-request',
  /** Worker → primary: the answer to a metrics request, by id. */
  metricsResponse: 'astro-fastify-origin:metrics-response',
} as const;

export type MessageType = (typeof MESSAGE)[keyof typeof MESSAGE];

/** Every message carries its type; questions and their answers an id (src/cluster/ask.ts); metrics answers the metrics or an error. */
export interface Message {
  type: MessageType;
  id?: number;
  metrics?: unknown;
  error?: string;
}

/** Narrows anything that came over the channel to one of our messages of `type`. */
export function isMessage<T extends MessageType>(value: unknown, type: T): value is Message & { type: T } {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === type;
}
