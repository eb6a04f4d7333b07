// npm run bench:metrics — what Prometheus metrics cost: req/s of the origin with
// METRICS_ENABLED=true while a scraper GETs /metrics every --scrape-interval seconds (1 s by
// default: 15× Prometheus' usual 15 s, the worst case), against METRICS_ENABLED=false.
// Goal: ≤ 3 % fewer req/s.

import { readOptions } from './lib/options.ts';
import { compareOrigins, publishComparison } from './lib/origin-ab.ts';

const opts = readOptions(
  'npm run bench:metrics',
  { connections: 50, duration: 10, rounds: 3, warmup: 20, scrapeInterval: 1, policy: 'off', build: true },
  {
    scrapeInterval: 'seconds between two /metrics scrapes of the metrics-on origin',
    policy: 'POOL_POLICY of both origins',
    build: 'build dist/ when missing or stale (--no-build to skip)',
  },
);

const ON = `metrics on (scrape ${opts.scrapeInterval} s)`;
const OFF = 'metrics off';
const result = await compareOrigins({
  ...opts,
  variants: [
    { name: OFF, env: { METRICS_ENABLED: 'false', POOL_POLICY: opts.policy, WORKERS: '1' } },
    {
      name: ON,
      env: { METRICS_ENABLED: 'true', POOL_POLICY: opts.policy, WORKERS: '1' },
      during(server) {
        const timer = setInterval(() => {
          void fetch(server.metricsUrl!).then(
            (r) => r.arrayBuffer(),
            () => {},
          );
        }, opts.scrapeInterval * 1000);
        return () => clearInterval(timer);
      },
    },
  ],
});

publishComparison(
  'bench-metrics',
  'Metrics overhead',
  `The metrics-on origin is scraped every ${opts.scrapeInterval} s while it is measured (Prometheus' default is 15 s). Goal: a req/s change of −3 % or better.`,
  result,
);
