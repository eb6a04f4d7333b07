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
 * The origin's own registry (never prom-client's global one, so a site's code that uses
 * prom-client cannot collide with us), with prom-client's default process/Node metrics:
 * heap per space, external memory, RSS, GC duration by kind, event-loop lag, handles.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  for (const name of NON_CONVENTIONAL) registry.removeSingleMetric(name);
  return registry;
}
