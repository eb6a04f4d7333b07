import { collectDefaultMetrics, Registry } from 'prom-client';

// prom-client adds these gauges named *_total, which Prometheus reserves for counters
// (`promtool check metrics` rejects them). Each repeats the sum of its by-type gauge:
// nodejs_active_handles{type}, nodejs_active_requests{type}, nodejs_active_resources{type}.
const NON_CONVENTIONAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * How often prom-client's event-loop-lag histogram samples (nodejs_eventloop_lag_*). Each
 * sample is a timer that wakes the loop; at prom-client's 10 ms that was 100 wake-ups a second,
 * ~7 ms of CPU a second on an idle origin of the bench machine and ~3 % of CPU per request on a
 * small page at a moderate pace. Any stall longer than this is still caught whole, so the
 * 200 ms lag alert (grafana/prometheus/rules) sees what it saw at 10 ms.
 */
export const EVENT_LOOP_LAG_PRECISION_MS = 100;

/**
 * The origin's own registry (never prom-client's global one, so a site's code that uses
 * prom-client cannot collide with us), with prom-client's default process/Node metrics:
 * heap per space, external memory, RSS, GC duration by kind, event-loop lag, handles.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_LAG_PRECISION_MS });
  for (const name of NON_CONVENTIONAL) registry.removeSingleMetric(name);
  return registry;
}
