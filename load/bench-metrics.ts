// npm run bench:metrics — what Prometheus metrics and the per-request log line cost, in server
// CPU time per request (steadier than req/s on a shared machine) and in req/s. Four origins,
// alternating: metrics off, metrics on but never scraped, metrics on (scraped every
// --scrape-interval seconds from its start, as Prometheus does: 15 s by default, its default),
// and metrics on with one log line per request (LOG_LEVEL=info, to a file). The first three log
// at warn. The unscraped one separates what scraping costs from what the
// metrics cost per request.
// Goals: metrics on vs off ≤ 3 % more CPU per request; logs info vs warn ≤ 5 %.

import { readOptions } from './lib/options.ts';
import { compareOrigins, publishComparison } from './lib/origin-ab.ts';
import { scrapeEvery, settleSeconds } from './lib/scrape.ts';
import type { Server } from './lib/spawn-origin.ts';

const opts = readOptions(
  'npm run bench:metrics',
  {
    connections: 50,
    duration: 10,
    rounds: 3,
    warmup: 20,
    scrapeInterval: 15,
    policy: 'off',
    build: true,
    paced: true,
    pacedLoad: 0.2,
    pacedConnections: 16,
    pacedWarmup: 10,
    pacedSets: 3,
  },
  {
    scrapeInterval: 'seconds between two /metrics scrapes of the metrics-on origins',
    policy: 'POOL_POLICY of every origin',
    build: 'build dist-load/ when missing or stale (--no-build to skip)',
    paced:
      'then the same pages paced side by side: the three origins at once on one CPU, the same rate each (--no-paced to skip)',
    pacedLoad:
      'share of that CPU the origins use together when paced, by their closed-loop CPU per request (evenly paced, a request costs 2-3x that)',
    pacedConnections: 'kept-alive connections per origin when paced (lib/pacer.ts)',
    pacedWarmup: 'seconds of paced load per page before its rounds',
    pacedSets: "sets of processes paced: the closed loop's, then fresh ones (one set keeps its ~8 % bias)",
  },
);

const OFF = 'metrics off, logs warn';
const UNSCRAPED = 'metrics on (never scraped), logs warn';
const ON = `metrics on (scrape ${opts.scrapeInterval} s), logs warn`;
const INFO = `metrics on (scrape ${opts.scrapeInterval} s), logs info`;
const common = { POOL_POLICY: opts.policy, WORKERS: '1' };
const scrape = (server: Server) => scrapeEvery(server.metricsUrl!, opts.scrapeInterval * 1000);
const result = await compareOrigins({
  ...opts,
  paced: opts.paced
    ? {
        load: opts.pacedLoad,
        connections: opts.pacedConnections,
        warmup: opts.pacedWarmup,
        firstWarmup: settleSeconds(opts.scrapeInterval),
        sets: opts.pacedSets,
      }
    : undefined,
  variants: [
    { name: OFF, env: { ...common, METRICS_ENABLED: 'false', LOG_LEVEL: 'warn' } },
    { name: UNSCRAPED, env: { ...common, METRICS_ENABLED: 'true', LOG_LEVEL: 'warn' } },
    { name: ON, env: { ...common, METRICS_ENABLED: 'true', LOG_LEVEL: 'warn' }, during: scrape },
    { name: INFO, baseline: ON, env: { ...common, METRICS_ENABLED: 'true', LOG_LEVEL: 'info' }, during: scrape },
  ],
});

publishComparison(
  'bench-metrics',
  'Metrics and log-line overhead',
  `"${ON}" is compared with "${OFF}" (the metrics' cost), "${UNSCRAPED}" with "${OFF}" (the metrics without scrapes), "${INFO}" with "${ON}" (the log line's cost). ` +
    `The metrics-on origins are scraped every ${opts.scrapeInterval} s from their start, as Prometheus does (its default is 15 s); fresh processes get ${settleSeconds(opts.scrapeInterval)} s of paced warm-up first (their first scrapes disturb the JIT once). ` +
    'Goals: metrics ≤ +3 % CPU per request, the log line ≤ +5 %.',
  result,
);
