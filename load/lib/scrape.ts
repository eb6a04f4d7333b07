// Reads our origin's /metrics (Prometheus text format) into the numbers the scenarios report:
// the same series a user's Prometheus scrapes.

import { Agent, get } from 'node:http';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(LABEL)) labels[key!] = value!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Sum of every sample of `name` whose labels include `labels`; NaN when there is none. */
export function pick(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  let total = NaN;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    total = (Number.isNaN(total) ? 0 : total) + s.value;
  }
  return total;
}

export async function scrape(metricsUrl: string): Promise<Sample[]> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET ${metricsUrl}: ${res.status}`);
  return parsePrometheus(await res.text());
}

/** The process and pool figures of one scrape (counters are totals since start). */
export interface Snapshot {
  at: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  minorFaults: number;
  majorFaults: number;
  voluntaryCs: number;
  involuntaryCs: number;
  cpuSeconds: number;
  cpuUserSeconds: number;
  cpuSystemSeconds: number;
  poolReused: number;
  poolNew: number;
  poolAvailable: number;
  httpRequests: number;
  eventLoopUtilization: number;
}

export function toSnapshot(samples: readonly Sample[], at = Date.now()): Snapshot {
  return {
    at,
    rssBytes: pick(samples, 'process_resident_memory_bytes'),
    heapUsedBytes: pick(samples, 'nodejs_heap_size_used_bytes'),
    heapTotalBytes: pick(samples, 'nodejs_heap_size_total_bytes'),
    externalBytes: pick(samples, 'nodejs_external_memory_bytes'),
    minorFaults: pick(samples, 'process_page_faults_total', { type: 'minor' }),
    majorFaults: pick(samples, 'process_page_faults_total', { type: 'major' }),
    voluntaryCs: pick(samples, 'process_context_switches_total', { type: 'voluntary' }),
    involuntaryCs: pick(samples, 'process_context_switches_total', { type: 'involuntary' }),
    cpuSeconds: pick(samples, 'process_cpu_seconds_total'),
    cpuUserSeconds: pick(samples, 'process_cpu_user_seconds_total'),
    cpuSystemSeconds: pick(samples, 'process_cpu_system_seconds_total'),
    poolReused: pick(samples, 'astro_queue_pool_acquires_total', { source: 'reused' }),
    poolNew: pick(samples, 'astro_queue_pool_acquires_total', { source: 'new' }),
    poolAvailable: pick(samples, 'astro_queue_pool_available_nodes'),
    httpRequests: pick(samples, 'http_request_duration_seconds_count'),
    eventLoopUtilization: pick(samples, 'nodejs_eventloop_utilization'),
  };
}

export async function snapshot(metricsUrl: string): Promise<Snapshot> {
  return toSnapshot(await scrape(metricsUrl));
}

/** What happened between two snapshots: counter deltas, and the later gauges. */
export interface Delta
  extends Pick<
    Snapshot,
    | 'minorFaults'
    | 'majorFaults'
    | 'voluntaryCs'
    | 'involuntaryCs'
    | 'cpuSeconds'
    | 'cpuUserSeconds'
    | 'cpuSystemSeconds'
    | 'poolReused'
    | 'poolNew'
    | 'httpRequests'
  > {
  seconds: number;
  /** Share of node acquires served from the pool in the interval; NaN when there were none. */
  poolHitRatio: number;
}

export function delta(before: Snapshot, after: Snapshot): Delta {
  const d = (k: keyof Snapshot) => after[k] - before[k];
  const reused = d('poolReused');
  const fresh = d('poolNew');
  return {
    seconds: (after.at - before.at) / 1000,
    minorFaults: d('minorFaults'),
    majorFaults: d('majorFaults'),
    voluntaryCs: d('voluntaryCs'),
    involuntaryCs: d('involuntaryCs'),
    cpuSeconds: d('cpuSeconds'),
    cpuUserSeconds: d('cpuUserSeconds'),
    cpuSystemSeconds: d('cpuSystemSeconds'),
    poolReused: reused,
    poolNew: fresh,
    poolHitRatio: reused + fresh > 0 ? reused / (reused + fresh) : NaN,
    httpRequests: d('httpRequests'),
  };
}

/**
 * How many scrape intervals a process needs before its CPU per request is what a long-scraped
 * origin pays. Its first few scrapes (each on the metrics listener, a second server in the same
 * process) send HTTP objects of other shapes through the Node and Fastify code the page traffic
 * has made hot: V8 throws away the optimised code of 10–26 functions at each of the first 2–3
 * scrapes (`--trace-deopt`), and recompiles it. Paced side by side on the tiny page (8 fresh sets
 * × 3 rounds, 80 req/s each, against an origin nobody scrapes): scraped from its start, 1.01×
 * (0.79–1.38); its first scrapes falling in the measured rounds, 1.18× (0.93–1.42).
 */
export const SCRAPES_TO_SETTLE = 3;

/** Seconds of load a freshly started origin scraped every `intervalSeconds` needs first (0: not scraped). */
export function settleSeconds(intervalSeconds: number): number {
  return intervalSeconds > 0 ? SCRAPES_TO_SETTLE * intervalSeconds + 5 : 0;
}

/**
 * How long Prometheus keeps an idle scrape connection (prometheus/common's HTTP client:
 * IdleConnTimeout 5 min). It scrapes over keep-alive since 2.0, so at a 15 s interval one
 * connection carries every scrape.
 */
const PROMETHEUS_IDLE_CONNECTION_MS = 5 * 60_000;

/**
 * GETs `metricsUrl` now and then every `intervalMs`, and drops the body, as Prometheus does: from
 * the process's start, over one kept-alive connection (fetch() would open one per scrape at
 * 15 s: undici drops idle connections after 4 s). The scrape's CPU lands in the server's
 * figures. Returns the stop function.
 */
export function scrapeEvery(metricsUrl: string, intervalMs: number): () => void {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: PROMETHEUS_IDLE_CONNECTION_MS });
  // A scrape cut by stop() (or by its server stopping) is dropped, as Prometheus drops it.
  const ignore = () => {};
  const once = () => void get(metricsUrl, { agent }, (res) => res.on('error', ignore).resume()).on('error', ignore);
  once();
  const timer = setInterval(once, intervalMs);
  return () => {
    clearInterval(timer);
    agent.destroy();
  };
}

/** Scrapes every `intervalMs` until stopped; returns the series (failed scrapes are skipped). */
export function startSampler(metricsUrl: string, intervalMs: number): { stop(): Promise<Snapshot[]> } {
  const series: Snapshot[] = [];
  let pending: Promise<void> = Promise.resolve();
  const tick = () => {
    pending = snapshot(metricsUrl).then(
      (s) => void series.push(s),
      () => {},
    );
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      return series;
    },
  };
}
