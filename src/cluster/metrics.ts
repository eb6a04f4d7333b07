// Metrics under WORKERS > 1. Each worker keeps its own registry; the primary asks the ready
// workers for theirs over the cluster IPC channel at scrape time and merges them with
// prom-client's AggregatorRegistry.aggregate(): counters and histograms are summed, gauges use
// each metric's aggregator; series that must not be summed carry a `worker` label.
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { createAsker } from './ask.ts';
import { isMessage, MESSAGE } from './messages.ts';

/** What registry.getMetricsAsJSON() gives (prom-client does not export the type; `type` is a string at run time). */
type MetricsJSON = Array<{ name: string; type: string; aggregator?: string; values: unknown[] }>;

/** How long the primary waits for a worker's metrics before leaving it out of a scrape. */
export const WORKER_SCRAPE_TIMEOUT_MS = 2000;

/** In a worker: answer the primary's metrics requests with this registry. */
export function answerMetricsRequests(registry: Registry): void {
  process.on('message', (message: unknown) => {
    if (!isMessage(message, MESSAGE.metricsRequest)) return;
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: MESSAGE.metricsResponse, id: message.id, metrics }),
      (err: Error) => process.send?.({ type: MESSAGE.metricsResponse, id: message.id, error: err.message }),
    );
  });
}

export interface ClusterMetrics {
  /** The primary's own series: workers by state, restarts, scrape timeouts. */
  registry: Registry;
  restarts: Counter;
  /** Aggregated exposition: every ready worker's registry merged, then the primary's series. */
  metrics(workers: Iterable<Worker>): Promise<string>;
  /** A worker is gone: keep its last counters so the sums do not go backwards (see below). */
  retire(worker: Worker): Promise<void>;
  /** Wire to cluster.on('message'): a worker's answer. */
  onMessage(worker: Worker, message: unknown): void;
}

/**
 * The primary's side. A worker that dies takes its counters with it, and a summed counter
 * that drops looks like a reset to Prometheus (rate() spikes). So the primary keeps each
 * worker's counters and histograms from its last scrape and adds them to every later
 * exposition ("retired" series): sums stay monotonic, short of what the dead worker counted
 * after its last scrape.
 */
export function createClusterMetrics(workerStates: () => { ready: number; starting: number }): ClusterMetrics {
  const registry = new Registry();
  const restarts = new Counter({
    name: 'origin_cluster_worker_restarts_total',
    help: 'Workers the primary forked again after they exited unexpectedly.',
    registers: [registry],
  });
  new Gauge({
    name: 'origin_cluster_workers',
    help: 'Worker processes by state: ready (listening) or starting.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const states = workerStates();
      this.set({ state: 'ready' }, states.ready);
      this.set({ state: 'starting' }, states.starting);
    },
  });
  const timeouts = new Counter({
    name: 'origin_cluster_scrape_timeouts_total',
    help: `Scrapes in which a worker did not send its metrics within ${WORKER_SCRAPE_TIMEOUT_MS} ms and was left out.`,
    registers: [registry],
  });

  const asker = createAsker<MetricsJSON | undefined>(WORKER_SCRAPE_TIMEOUT_MS);
  const lastSeen = new Map<number, MetricsJSON>();
  let retired: MetricsJSON = [];
  /** The folding of exited workers' last metrics into `retired`, in order. */
  let retiring: Promise<void> = Promise.resolve();

  // A worker that dies mid-scrape is left out at once (the asker settles on its exit).
  const ask = async (worker: Worker): Promise<MetricsJSON | undefined> => {
    const result = await asker.ask(worker, { type: MESSAGE.metricsRequest });
    if (result.answered) return result.value;
    if (result.reason === 'timeout') timeouts.inc();
    return undefined;
  };

  return {
    registry,
    restarts,
    onMessage(worker, message) {
      if (!isMessage(message, MESSAGE.metricsResponse) || message.id === undefined) return;
      const metrics = message.metrics as MetricsJSON | undefined;
      if (metrics) lastSeen.set(worker.id, metrics);
      asker.answer(message.id, metrics);
    },
    async metrics(workers) {
      const answers = await Promise.all([...workers].map(async (worker) => ({ worker, metrics: await ask(worker) })));
      // A worker that answered and then died is in `retired` now (or soon): count it once.
      await retiring;
      const all = answers.flatMap((a) => (a.metrics && !a.worker.isDead() ? [a.metrics] : []));
      if (retired.length > 0) all.push(retired);
      const merged = all.length > 0 ? await AggregatorRegistry.aggregate(all).metrics() : '';
      return merged + (await registry.metrics());
    },
    retire(worker) {
      const last = lastSeen.get(worker.id);
      lastSeen.delete(worker.id);
      if (!last) return retiring;
      const monotonic = last.filter((m) => m.type === 'counter' || m.type === 'histogram');
      retiring = retiring.then(async () => {
        const folded = AggregatorRegistry.aggregate(retired.length > 0 ? [retired, monotonic] : [monotonic]);
        retired = (await folded.getMetricsAsJSON()) as unknown as MetricsJSON;
      });
      return retiring;
    },
  };
}
