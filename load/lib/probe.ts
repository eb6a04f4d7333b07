// The concurrency-safety probe: every request carries its own token, every response is
// checked against the request it answers. autocannon's verifyBody cannot see the request and
// onResponse cannot flag a mismatch (autocannon issue #487), so the check lives here: a
// connection sends one request at a time (pipelining 1), setupRequest puts the new token in
// the connection's context, and onResponse — called before the connection's next request is
// set up — compares the body with that token and counts violations in the ledger.
import { randomBytes } from 'node:crypto';
import type autocannon from 'autocannon';
import { PROBE_TOKEN_COUNT } from '../../demo/components/probe.ts';

export { PROBE_TOKEN_COUNT };

/**
 * The probe pages: MDX through the queue renderer (~70 nodes per render), its .astro twin
 * (recursive renderer), and a large MDX page (2 700 queue nodes, most of them reused under a
 * big shared pool).
 */
export const PROBE_PATHS = ['/probe', '/probe-astro', '/probe-large'] as const;

/** How a request carries its token: query string, x-probe-token header, or both. */
export const TRANSPORTS = ['query', 'header', 'both'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const SPAN = /<span class="probe-token" data-i="(\d+)">([^<]*)<\/span>/g;

export interface Violation {
  kind: 'status' | 'span-count' | 'span-index' | 'wrong-token' | 'token-count' | 'foreign-token';
  detail: string;
}

/**
 * Checks one probe response against its own token. `tokenPattern` matches every token of the
 * run, so a token of any other request of the run is found wherever it appears (head, attributes…).
 */
export function verifyProbeResponse(
  status: number,
  body: string,
  token: string,
  tokenPattern: RegExp,
  expected = PROBE_TOKEN_COUNT,
): Violation[] {
  if (status !== 200) return [{ kind: 'status', detail: `status ${status}` }];
  const violations: Violation[] = [];
  const spans = [...body.matchAll(SPAN)];
  if (spans.length !== expected)
    violations.push({ kind: 'span-count', detail: `${spans.length} probe spans, expected ${expected}` });
  const seen = new Set(spans.map((m) => Number(m[1])));
  const missing = Array.from({ length: expected }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0 || seen.size !== spans.length) {
    violations.push({ kind: 'span-index', detail: `data-i missing [${missing.join(',')}] or repeated` });
  }
  const wrong = spans.filter((m) => m[2] !== token);
  if (wrong.length > 0) {
    violations.push({
      kind: 'wrong-token',
      detail: `${wrong.length} spans show ${JSON.stringify(wrong[0]![2])} instead of ${token}`,
    });
  }
  const own = body.split(token).length - 1;
  if (own !== expected)
    violations.push({ kind: 'token-count', detail: `own token ${own} times, expected ${expected}` });
  const foreign = new Set([...body.matchAll(tokenPattern)].map((m) => m[0]).filter((t) => t !== token));
  if (foreign.size > 0) {
    violations.push({
      kind: 'foreign-token',
      detail: `tokens of other requests: ${[...foreign].slice(0, 3).join(', ')}`,
    });
  }
  return violations;
}

export interface ProbeCounts {
  /** Requests given a token (setupRequest calls). */
  issued: number;
  /** Responses checked (onResponse calls). */
  verified: number;
  /** Responses with at least one violation. */
  violating: number;
  byKind: Record<string, number>;
  byPath: Record<string, number>;
  byTransport: Record<string, number>;
  /** The first few violations, with the request they belong to. */
  examples: string[];
}

/** Issues tokens, builds the autocannon requests that carry them, and checks each response. */
export class ProbeLedger {
  readonly run = randomBytes(4).toString('hex');
  readonly pattern = new RegExp(`pt${this.run}n\\d+r[0-9a-f]+`, 'g');
  readonly counts: ProbeCounts = {
    issued: 0,
    verified: 0,
    violating: 0,
    byKind: {},
    byPath: {},
    byTransport: {},
    examples: [],
  };
  readonly paths: readonly string[];
  readonly expected: number;

  constructor({
    paths = PROBE_PATHS,
    expected = PROBE_TOKEN_COUNT,
  }: { paths?: readonly string[]; expected?: number } = {}) {
    this.paths = paths;
    this.expected = expected;
  }

  /** A token unique to this run and request: pt<run>n<sequence>r<random>. */
  private nextToken(): { token: string; seq: number } {
    const seq = this.counts.issued++;
    return { token: `pt${this.run}n${seq}r${randomBytes(3).toString('hex')}`, seq };
  }

  /** One autocannon request template; each call of its setupRequest is a new request. */
  requests(): autocannon.Request[] {
    return [
      {
        method: 'GET',
        setupRequest: (request, context) => {
          const { token, seq } = this.nextToken();
          const path = this.paths[seq % this.paths.length]!;
          const transport = TRANSPORTS[Math.floor(seq / this.paths.length) % TRANSPORTS.length]!;
          context.probe = { token, path, transport, seq };
          const query = transport === 'header' ? '' : `?token=${token}`;
          const headers =
            transport === 'query' ? { ...request.headers } : { ...request.headers, 'x-probe-token': token };
          this.counts.byPath[path] = (this.counts.byPath[path] ?? 0) + 1;
          this.counts.byTransport[transport] = (this.counts.byTransport[transport] ?? 0) + 1;
          return { ...request, path: path + query, headers };
        },
        onResponse: (status, body, context) => this.check(status, body, context.probe as ProbeRequest | undefined),
      },
    ];
  }

  private check(status: number, body: string, probe: ProbeRequest | undefined): void {
    this.counts.verified++;
    const violations = probe
      ? verifyProbeResponse(status, body, probe.token, this.pattern, this.expected)
      : [{ kind: 'status' as const, detail: 'response without a request context' }];
    if (violations.length === 0) return;
    this.counts.violating++;
    for (const v of violations) this.counts.byKind[v.kind] = (this.counts.byKind[v.kind] ?? 0) + 1;
    if (this.counts.examples.length < 5) {
      const who = probe ? `#${probe.seq} GET ${probe.path} (token in ${probe.transport})` : 'unknown request';
      this.counts.examples.push(`${who}: ${violations.map((v) => v.detail).join('; ')}`);
    }
  }
}

interface ProbeRequest {
  token: string;
  path: string;
  transport: Transport;
  seq: number;
}
