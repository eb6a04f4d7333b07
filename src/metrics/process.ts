import { performance } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The seed study's process metrics (page faults, context switches) plus event-loop
 * utilisation, read from process.resourceUsage() and perf_hooks at scrape time.
 */
export function registerProcessMetrics(registry: Registry, labels: Record<string, string> = {}): void {
  new Counter({
    name: 'process_page_faults_total',
    help: 'Page faults of this process: minor (no disk I/O) and major (needed disk I/O).',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      const usage = process.resourceUsage();
      this.reset();
      this.inc({ type: 'minor' }, usage.minorPageFault);
      this.inc({ type: 'major' }, usage.majorPageFault);
    },
  });
  new Counter({
    name: 'process_context_switches_total',
    help: 'Context switches of this process: voluntary (it waited) and involuntary (it was preempted).',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      const usage = process.resourceUsage();
      this.reset();
      this.inc({ type: 'voluntary' }, usage.voluntaryContextSwitches);
      this.inc({ type: 'involuntary' }, usage.involuntaryContextSwitches);
    },
  });
  let last = performance.eventLoopUtilization();
  new Gauge({
    name: 'nodejs_eventloop_utilization',
    help: 'Share of time the event loop was busy since the previous scrape (0..1).',
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      const now = performance.eventLoopUtilization();
      this.set(labels, performance.eventLoopUtilization(now, last).utilization);
      last = now;
    },
  });
}
