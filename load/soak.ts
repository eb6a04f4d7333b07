// npm run load:soak — a bounded soak: warm up, force a GC settle and read the baseline from
// /metrics, keep the load on for --duration seconds while sampling /metrics, settle again and
// compare. Fails when heap used after the settle grew more than --heap-growth over the warm
// baseline, when RSS is still climbing at the end (peak of the last third of the samples more
// than --rss-growth over the middle third's), or on any probe violation, error or non-2xx.
// The load mixes the probe pages (a unique token per request, checked) with every MDX page.

import type autocannon from 'autocannon';
import { POOL_POLICIES, type PoolPolicyName } from '../src/config.ts';
import { buildDirFor } from './lib/build.ts';
import { loadProblems, runLoad } from './lib/cannon.ts';
import { readOptions } from './lib/options.ts';
import { ProbeLedger } from './lib/probe.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { type Snapshot, snapshot, startSampler } from './lib/scrape.ts';
import { mdxPages } from './lib/site.ts';
import { preloadArgs, spawnOrigin } from './lib/spawn-origin.ts';
import { fixed, int, markdownTable, mib, percent } from './lib/stats.ts';

const opts = readOptions(
  'npm run load:soak',
  {
    duration: 60,
    warmup: 15,
    interval: 5,
    connections: 50,
    policy: 'shared',
    heapGrowth: 0.1,
    rssGrowth: 0.1,
    build: true,
  },
  {
    duration: 'seconds of soak after the warm-up',
    warmup: 'seconds of warm-up before the baseline',
    interval: 'seconds between two /metrics samples',
    connections: 'autocannon connections',
    policy: `POOL_POLICY (${POOL_POLICIES.join('|')})`,
    heapGrowth: 'largest allowed heap-used growth after the settle, as a fraction of the baseline',
    rssGrowth: 'largest allowed RSS growth from the middle to the last third of the soak',
    build: 'build dist/ when missing or stale (--no-build to skip)',
  },
);
const policy = opts.policy as PoolPolicyName;
if (!POOL_POLICIES.includes(policy)) throw new Error(`unknown policy ${policy}`);

const buildDir = await buildDirFor('origin', opts.build);
const origin = await spawnOrigin({
  name: `soak-${policy}`,
  buildDir,
  env: { POOL_POLICY: policy, WORKERS: '1' },
  nodeArgs: preloadArgs({ gc: true }),
});
const metricsUrl = origin.metricsUrl!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two full GCs in the origin (SIGURG → the preload), then a scrape. */
async function settle(): Promise<Snapshot> {
  origin.child.kill('SIGURG');
  await sleep(1500);
  return snapshot(metricsUrl);
}

const ledger = new ProbeLedger();
// Half the requests are probes (unique token, checked), half the MDX pages in turn.
const requests: autocannon.Request[] = mdxPages().flatMap((path) => [...ledger.requests(), { method: 'GET', path }]);

let failed = false;
try {
  console.error(
    `soak: POOL_POLICY=${policy}, ${opts.connections} connections, ${opts.warmup} s warm-up, ${opts.duration} s soak, /metrics every ${opts.interval} s`,
  );
  const warm = await runLoad({ url: origin.url, connections: opts.connections, duration: opts.warmup, requests });
  const baseline = await settle();
  const sampler = startSampler(metricsUrl, opts.interval * 1000);
  const soak = await runLoad({ url: origin.url, connections: opts.connections, duration: opts.duration, requests });
  const series = await sampler.stop();
  const after = await settle();

  const rows = series.map((s, i) => {
    const prev = series[i - 1];
    const rps = prev ? (s.httpRequests - prev.httpRequests) / ((s.at - prev.at) / 1000) : NaN;
    return [
      fixed((s.at - series[0]!.at) / 1000, 0),
      int(rps),
      mib(s.rssBytes),
      mib(s.heapUsedBytes),
      mib(s.heapTotalBytes),
      mib(s.externalBytes),
      int(s.poolAvailable),
      percent(s.eventLoopUtilization, 0),
    ];
  });
  const seriesTable = markdownTable(
    ['t (s)', 'req/s', 'RSS', 'heap used', 'heap total', 'external', 'pool nodes available', 'event-loop use'],
    rows,
  );

  const heapGrowth = after.heapUsedBytes / baseline.heapUsedBytes - 1;
  const third = Math.floor(series.length / 3);
  const peak = (xs: Snapshot[]) => Math.max(...xs.map((s) => s.rssBytes));
  const rssGrowth = third > 0 ? peak(series.slice(-third)) / peak(series.slice(third, 2 * third)) - 1 : NaN;
  const problems = [...loadProblems(warm).map((p) => `warm-up: ${p}`), ...loadProblems(soak).map((p) => `soak: ${p}`)];
  if (ledger.counts.violating > 0)
    problems.push(`${ledger.counts.violating} probe violations: ${ledger.counts.examples.join(' | ')}`);
  if (heapGrowth > opts.heapGrowth)
    problems.push(
      `heap used after settle grew ${percent(heapGrowth)} over the warm baseline (limit ${percent(opts.heapGrowth)})`,
    );
  if (rssGrowth > opts.rssGrowth)
    problems.push(
      `RSS still growing: last third's peak ${percent(rssGrowth)} over the middle third's (limit ${percent(opts.rssGrowth)})`,
    );
  if (Number.isNaN(rssGrowth))
    problems.push(`too few samples (${series.length}) to judge RSS: lengthen --duration or shorten --interval`);
  if (origin.child.exitCode !== null) problems.push(`the origin exited during the soak (${origin.child.exitCode})`);
  failed = problems.length > 0;

  const verdicts = markdownTable(
    ['', 'warm baseline (after settle)', 'end (after settle)', 'growth', 'limit'],
    [
      [
        'heap used',
        mib(baseline.heapUsedBytes),
        mib(after.heapUsedBytes),
        percent(heapGrowth),
        `≤ ${percent(opts.heapGrowth, 0)}`,
      ],
      ['RSS', mib(baseline.rssBytes), mib(after.rssBytes), percent(after.rssBytes / baseline.rssBytes - 1), 'n/a'],
      ['RSS peak, last vs middle third', '', '', percent(rssGrowth), `≤ ${percent(opts.rssGrowth, 0)}`],
    ],
  );
  const markdown = [
    `# Soak: POOL_POLICY=${policy} (${new Date().toISOString()})`,
    '',
    `${opts.connections} connections, ${opts.warmup} s warm-up, ${opts.duration} s soak (${int(soak.responses)} responses, ${int(soak.rps)} req/s, p99 ${fixed(soak.p99, 0)} ms); ` +
      `half the requests are probe pages with a unique token (${int(ledger.counts.verified)} checked, ${int(ledger.counts.violating)} violations), half the ${mdxPages().length} MDX pages. ` +
      `"Settle" = two forced full GCs in the origin (--expose-gc, SIGURG), then a scrape.`,
    '',
    seriesTable,
    '',
    verdicts,
    '',
    machineNote(),
    '',
    failed ? `**FAIL**\n\n${problems.map((p) => `- ${p}`).join('\n')}` : '**PASS**',
  ].join('\n');
  console.log(`\n${markdown}\n`);
  writeReport('soak', markdown, { opts, baseline, after, series, warm, soak, probe: ledger.counts });
} finally {
  await origin.stop();
}
process.exitCode = failed ? 1 : 0;
