// One autocannon run, as a promise of the few numbers the scenarios compare.
import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; ignored when amount is set. */
  duration?: number;
  /** Total requests (spread over the connections); the run stops after them. */
  amount?: number;
  /** One request template per path; a connection cycles through them. */
  requests?: autocannon.Request[];
  /** Seconds before an unanswered request counts as a timeout (autocannon's default 10). */
  timeout?: number;
  /** Requests per second over all connections (an open-loop pace); 0 or unset: as fast as answered. */
  rate?: number;
}

export interface LoadResult {
  /** Responses per second over the whole run (all status codes). */
  rps: number;
  /** Latency in ms. */
  p50: number;
  p97_5: number;
  p99: number;
  max: number;
  responses: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  statusCodes: Record<string, number>;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const started = performance.now();
  let lastResponse = started;
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? 10 }),
    timeout: o.timeout ?? 10,
    requests: o.requests,
    ...(o.rate ? { overallRate: o.rate } : {}),
  });
  // autocannon notices the end only at its next 1 s tick: time the run to its last response.
  instance.on('response', () => {
    lastResponse = performance.now();
  });
  const r = await instance;
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, { count }]) => [code, count]));
  const responses = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
  const seconds = (lastResponse - started) / 1000;
  return {
    rps: responses / seconds,
    p50: r.latency.p50,
    p97_5: r.latency.p97_5,
    p99: r.latency.p99,
    max: r.latency.max,
    responses,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    seconds,
    statusCodes,
  };
}

/** What makes a run invalid: errors, timeouts, non-2xx. Empty when clean. */
export function loadProblems(r: LoadResult): string[] {
  const problems: string[] = [];
  if (r.errors - r.timeouts > 0) problems.push(`${r.errors - r.timeouts} connection errors`);
  if (r.timeouts > 0) problems.push(`${r.timeouts} timeouts`);
  if (r.non2xx > 0) problems.push(`${r.non2xx} non-2xx responses (${JSON.stringify(r.statusCodes)})`);
  if (r.responses === 0) problems.push('no responses at all');
  return problems;
}

/** autocannon request templates for plain GETs of `paths`. */
export function getRequests(paths: readonly string[]): autocannon.Request[] {
  return paths.map((path) => ({ method: 'GET', path }));
}
