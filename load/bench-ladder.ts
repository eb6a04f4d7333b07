// npm run bench:ladder — where ours' extra CPU per request over bare goes, one rung at a time:
// bare (load/bare-server.ts) → the same work inside Fastify (load/fastify-server.ts) → Fastify
// with the origin plugin alone (load/plugin-server.ts) → ours with its production plugins but
// logs at warn and metrics off → ours as `npm run bench` runs it (logs at info, metrics on).
// Paced side by side (lib/paced.ts): the five servers at once on one CPU, the same fixed rate
// each, a fresh set of processes per set (one process keeps its JIT state and heap layout for
// life: ±8 % between two processes of the same server). Also each server's idle CPU.
import { buildDirFor } from './lib/build.ts';
import { readOptions } from './lib/options.ts';
import { firstWarmupSeconds, type PacedRun, pacedRatios, pacedSideBySide } from './lib/paced.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { scrapeEvery, settleSeconds } from './lib/scrape.ts';
import { BENCH_PAGES } from './lib/site.ts';
import { benchOursEnv, PEER_NODE_FLAGS, type Server, spawnBare, spawnOrigin, spawnPeer } from './lib/spawn-origin.ts';
import { markdownTable, spread, times, withRange } from './lib/stats.ts';

const opts = readOptions(
  'npm run bench:ladder',
  {
    sets: 4,
    rounds: 2,
    duration: 10,
    warmup: 20,
    rate: 80,
    connections: 16,
    idleSeconds: 10,
    page: BENCH_PAGES.tiny,
    build: true,
  },
  {
    sets: 'fresh sets of the five servers (each set: idle, a warm-up, then --rounds measured runs)',
    idleSeconds: 'seconds of CPU measured with no requests at the start of each set (0: none)',
    rate: 'requests per second each server gets (paced, CPU per request rises as the pace drops: at 100 and 120 the five sometimes filled CPU 0 and one fell behind, which makes the run invalid)',
    page: 'the page every server renders',
    build: 'build dist-load/ when missing or stale (--no-build to skip)',
  },
);

const buildDir = await buildDirFor('origin', opts.build);
// As spawnBare and spawnOrigin run theirs: npm start's flags, and ours' runtime V8 flags.
const peer = (name: string, script: string) =>
  spawnPeer({ name, script, args: [buildDir], nodeArgs: [...PEER_NODE_FLAGS], env: {} });
const ours = (name: string, env: Record<string, string>) => spawnOrigin({ name, buildDir, env: benchOursEnv(env) });
const RUNGS: Array<{ name: string; what: string; start: () => Promise<Server> }> = [
  { name: 'bare', what: 'node:http around app.render()', start: () => spawnBare({ name: 'bare', buildDir }) },
  {
    name: 'fastify',
    what: 'the same inside Fastify, no logger or hooks',
    start: () => peer('fastify', 'load/fastify-server.ts'),
  },
  { name: 'plugin', what: 'Fastify + the origin plugin alone', start: () => peer('plugin', 'load/plugin-server.ts') },
  {
    name: 'production',
    what: 'ours: + hardening, compression, health, request ids; load shedding off (as `npm run bench`), logs warn, metrics off',
    start: () => ours('production', { LOG_LEVEL: 'warn', METRICS_ENABLED: 'false' }),
  },
  {
    name: 'ours',
    what: 'ours as `npm run bench` runs it: + one log line per request (info), metrics on, scraped every 15 s',
    start: () => ours('ours', { LOG_LEVEL: 'info', METRICS_ENABLED: 'true' }),
  },
];

/** As Prometheus scrapes by default. */
const SCRAPE_INTERVAL_MS = 15_000;
/** The warm-up of each fresh set: long enough for ours' first scrapes to settle (lib/scrape.ts). */
const warmup = { warmup: opts.warmup, firstWarmup: settleSeconds(SCRAPE_INTERVAL_MS / 1000) };
let stopScraping: (() => void) | undefined;
const runs: PacedRun[] = [];
const problems: string[] = [];
const idle: Record<string, number[]> = {};
let placement = '';
for (let set = 1; set <= opts.sets; set++) {
  console.error(`set ${set}/${opts.sets}: ${RUNGS.length} fresh servers`);
  const servers: Server[] = [];
  try {
    for (const rung of RUNGS) servers.push(await rung.start());
    const metricsUrl = servers.at(-1)?.metricsUrl;
    stopScraping = metricsUrl ? scrapeEvery(metricsUrl, SCRAPE_INTERVAL_MS) : undefined;
    const result = await pacedSideBySide({
      servers: servers.map((s) => ({ name: s.name, url: s.url, pid: s.child.pid as number })),
      targets: [{ name: opts.page, paths: [opts.page], rate: opts.rate }],
      rounds: opts.rounds,
      duration: opts.duration,
      ...warmup,
      connections: opts.connections,
      idleSeconds: opts.idleSeconds,
    });
    placement = result.placement;
    for (const [name, ms] of Object.entries(result.idleMsPerSecond)) idle[name] = [...(idle[name] ?? []), ms];
    runs.push(...result.runs.map((r) => ({ ...r, round: (set - 1) * opts.rounds + r.round })));
    problems.push(...result.problems.map((p) => `set ${set}: ${p}`));
  } finally {
    stopScraping?.();
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Per-round ratios a ÷ b: both ran in the same seconds, so the machine's drift cancels. */
const ratios = (a: string, b: string) =>
  pacedRatios({ runs, idleMsPerSecond: {}, placement, problems }, a, b, opts.page);
const rows = RUNGS.map((rung, i) => [
  rung.name,
  rung.what,
  withRange(spread(runs.filter((r) => r.server === rung.name).map((r) => r.cpuUsPerRequest))),
  i === 0 ? '—' : withRange(spread(ratios(rung.name, RUNGS[i - 1]!.name)), times),
  i === 0 ? '—' : withRange(spread(ratios(rung.name, 'bare')), times),
  idle[rung.name] ? withRange(spread(idle[rung.name]!), (v) => v.toFixed(1)) : '—',
]);
const markdown = [
  `# CPU per request, rung by rung (${opts.page})`,
  '',
  `${opts.sets} fresh sets × ${opts.rounds} rounds of ${opts.duration} s at ${opts.rate} req/s each, after ${firstWarmupSeconds(warmup)} s of warm-up per set (ours scraped every ${SCRAPE_INTERVAL_MS / 1000} s from its start); ${placement}. ` +
    'CPU is user+system of the server process (all threads, /proc) over its responses; ratios are per-round pairs, medians (min–max).',
  '',
  markdownTable(['rung', 'what runs', 'CPU µs/request', '÷ the rung before', '÷ bare', 'idle CPU ms/s'], rows),
  '',
  problems.length
    ? `Problems (these rounds are not comparable):\n${problems.map((p) => `- ${p}`).join('\n')}`
    : 'No problems: every server kept the pace.',
  '',
  machineNote(),
].join('\n');
console.log(markdown);
writeReport('bench-ladder', markdown, {
  opts,
  idle,
  runs: runs.map(({ load, ...r }) => ({ ...r, rps: load.rps })),
  problems,
});
if (problems.length) process.exitCode = 1;
