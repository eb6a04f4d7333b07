// npm run bench:instructions — instructions per request, ours against the bare yardstick
// (load/bare-server.ts), both under valgrind's callgrind (lib/callgrind.ts): the work each server
// does per request, counted, where `npm run bench` times it. The same pages as `npm run bench`;
// the servers stay alive the whole run; per page, a warm-up, then windows of a fixed request
// count taking turns in a rotated order; medians of the windows, per-window ratios, and ratios
// over all windows together; then where the instructions went, by kind of code (JIT code,
// builtins, GC, compiler...). `--node`: @astrojs/node too, between bare and ours. `--goals`: bare
// and three rungs of ours (logs at warn and metrics off, + the log line, + metrics), for the
// goals on each.
// Ours runs in its default configuration (logs at info, metrics on, POOL_POLICY=off) but is not
// scraped: under valgrind a server runs ~50x slower, so each second's timers and scrapes would be
// spread over ~50x fewer requests (the report's idle count says what a second costs; a scrape's
// cost is in `npm run bench:metrics`). For the same reason its render slice is 50x the default
// (250 ms): at 5 ms, a few renders under callgrind overrun the slice and the rest wait for a
// later turn (src/astro/render-turns.ts' slot callbacks, their timers and ticks), which at full
// speed happens only to a saturated origin.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NODE_FLAGS, RUNTIME_V8_FLAGS } from '../src/node-flags.ts';
import { buildDirFor } from './lib/build.ts';
import {
  CallgrindCounter,
  type CountedWindow,
  functionRows,
  INSTRUCTION_COLUMNS,
  instructionRows,
  KIND_COLUMNS,
  kindRows,
  PERF_MAP_NODE_ARGS,
  valgrindVersion,
} from './lib/callgrind.ts';
import { getRequests, loadProblems, runLoad } from './lib/cannon.ts';
import { readOptions } from './lib/options.ts';
import { machineNote, writeReport } from './lib/report-file.ts';
import { benchTargets } from './lib/site.ts';
import { benchOursEnv, type Server, spawnAstroNode, spawnBare, spawnOrigin } from './lib/spawn-origin.ts';
import { int, markdownTable } from './lib/stats.ts';

const opts = readOptions(
  'npm run bench:instructions',
  {
    windows: 6,
    connections: 10,
    tinyRequests: 2000,
    asyncRequests: 1000,
    mdxRequests: 40,
    warmupWindows: 15,
    pages: 'tiny,async-20,mdx',
    mdxPath: '',
    logLevel: 'info',
    renderSliceMs: 250,
    oursEnv: '',
    goals: false,
    node: false,
    kinds: true,
    functions: 0,
    idleSeconds: 10,
    singleThreaded: false,
    build: true,
  },
  {
    windows: 'measured windows per server and page (they alternate between the servers)',
    connections: 'autocannon connections',
    tinyRequests: 'requests per window on the tiny page',
    asyncRequests: 'requests per window on the 20-component page',
    mdxRequests: 'requests per window on the largest MDX page',
    warmupWindows: "warm-up per page, in windows' worth of requests (the JIT's warm-up is counted too)",
    pages: 'which pages: tiny, async-20, mdx',
    mdxPath: 'the MDX page (default: the largest MDX page of the site)',
    logLevel: 'our LOG_LEVEL (info: one line per request, the default configuration)',
    renderSliceMs:
      "our RENDER_SLICE_MS: the default 5 ms times callgrind's ~50x slowdown, so render turns hold back as many renders as at full speed",
    goals: "count the goals' rungs instead: bare, ours with logs at warn and metrics off, + the log line, + metrics",
    node: "count @astrojs/node (dist-node/) too, between bare and ours: ours' '÷ the one before' is then ours ÷ @astrojs/node",
    kinds: 'read every dump by kind of code (JIT code, builtins, GC, compiler...): a second table (--no-kinds to skip)',
    functions:
      "per page, the N functions whose main-thread count differs most between ours and bare (JavaScript named from V8's perf map: every server runs with --perf-basic-prof)",
    oursEnv: 'more environment for ours, as JSON (e.g. {"METRICS_ENABLED":"false"}): what one setting costs',
    idleSeconds: 'seconds of counting each idle server at the end (what a second costs with no traffic)',
    singleThreaded: "run both servers with V8's --single-threaded (GC and compilation on the main thread)",
    build: 'build dist-load/ when missing or stale (--no-build to skip)',
  },
);
// Off by default: tried, the windows varied more (0.39-1.93x between the servers' windows), as
// a major GC's whole marking then lands in one window.
const nodeArgs = [
  ...(opts.singleThreaded ? ['--single-threaded'] : []),
  ...(opts.functions > 0 ? PERF_MAP_NODE_ARGS : []),
];

if (opts.goals && opts.node) {
  console.error('--node and --goals do not go together: each rung is compared with the one before it.');
  process.exit(1);
}
const version = valgrindVersion();
if (!version) {
  console.error('valgrind is not installed: apt-get install -y valgrind (Debian), then run this again.');
  process.exit(1);
}
const ourBuild = await buildDirFor('origin', opts.build);
const dir = mkdtempSync(path.join(tmpdir(), 'bench-instructions-'));
// Under callgrind a server starts in ~20–60 s instead of 1.
const timeoutMs = 300_000;
const oursEnv = (env: Record<string, string>) =>
  benchOursEnv({
    LOG_LEVEL: opts.logLevel,
    RENDER_SLICE_MS: String(opts.renderSliceMs),
    ...env,
    ...(opts.oursEnv ? (JSON.parse(opts.oursEnv) as Record<string, string>) : {}),
  });
interface Contender {
  name: string;
  what: string;
  start(wrapper: string[]): Promise<Server>;
}
const bareContender: Contender = {
  name: 'bare',
  what: 'load/bare-server.ts: node:http around app.render()',
  start: (wrapper) => spawnBare({ name: 'bare-callgrind', buildDir: ourBuild, wrapper, nodeArgs, timeoutMs }),
};
const nodeContender: Contender = {
  name: '@astrojs/node',
  what: '@astrojs/node 10.1.4 standalone, the same site (dist-node/)',
  start: async (wrapper) =>
    spawnAstroNode({
      name: 'astrojs-node-callgrind',
      buildDir: await buildDirFor('node', opts.build),
      wrapper,
      nodeArgs,
      timeoutMs,
    }),
};
const ours = (name: string, what: string, env: Record<string, string>): Contender => ({
  name,
  what,
  start: (wrapper) =>
    spawnOrigin({ name: `${name}-callgrind`, buildDir: ourBuild, env: oursEnv(env), wrapper, nodeArgs, timeoutMs }),
});
// Bare first: every ratio is to it. --goals: the rungs the issue's goals compare, each adding one
// thing to the one before.
const contenders: Contender[] = opts.goals
  ? [
      bareContender,
      ours('production', 'ours, logs at warn, metrics off', { LOG_LEVEL: 'warn', METRICS_ENABLED: 'false' }),
      ours('+ log line', 'the same with one log line per request (info)', { METRICS_ENABLED: 'false' }),
      ours('+ metrics', 'ours in its default configuration: + metrics (not scraped)', {}),
    ]
  : [
      bareContender,
      ...(opts.node ? [nodeContender] : []),
      ours('astro-fastify-origin', 'ours in its default configuration (metrics not scraped)', {}),
    ];
const counters = new Map(
  contenders.map((c) => [
    c.name,
    new CallgrindCounter(dir, c.name, { kinds: opts.kinds, functions: opts.functions > 0 }),
  ]),
);
console.error(`${version}: starting ${contenders.length} servers under callgrind (dumps in ${dir})…`);
const servers = new Map<string, Server>();
await Promise.all(
  contenders.map(async (c) => {
    const counter = counters.get(c.name)!;
    const server = await c.start(counter.wrapper);
    counter.attach(server.child.pid!);
    servers.set(c.name, server);
  }),
);

const perWindow: Record<string, number> = {
  tiny: opts.tinyRequests,
  'async-20': opts.asyncRequests,
  mdx: opts.mdxRequests,
};
const wanted = new Set(opts.pages.split(',').map((p) => p.trim()));
const targets = await benchTargets(servers.get('bare')!.url, ourBuild, { mdxPath: opts.mdxPath, pages: [...wanted] });

const windows: CountedWindow[] = [];
const problems: string[] = [];
const idle: Record<string, number> = {};
try {
  for (const target of targets) {
    const amount = perWindow[target.name]!;
    const requests = getRequests(target.paths);
    console.error(`${target.name} ${target.paths[0]}: warm-up, ${opts.warmupWindows * amount} requests each`);
    await Promise.all(
      [...servers.values()].map((s) =>
        runLoad({ url: s.url, connections: opts.connections, amount: opts.warmupWindows * amount, requests }),
      ),
    );
    for (let w = 1; w <= opts.windows; w++) {
      // A rotated order each window, as lib/ab.ts: none is always first or last.
      const shift = (w - 1) % contenders.length;
      for (const { name } of [...contenders.slice(shift), ...contenders.slice(0, shift)]) {
        const counter = counters.get(name)!;
        await counter.zero();
        const load = await runLoad({ url: servers.get(name)!.url, connections: opts.connections, amount, requests });
        const counted = await counter.dump();
        for (const p of loadProblems(load)) problems.push(`${target.name} ${name} window ${w}: ${p}`);
        windows.push({ page: target.name, server: name, window: w, requests: load.responses, counted });
        console.error(
          `${target.name.padEnd(9)} window ${w}/${opts.windows} ${name.padEnd(21)} ` +
            `${int(counted.total / load.responses).padStart(9)} instructions/request ` +
            `(main thread ${int(counted.main / load.responses)})`,
        );
      }
    }
  }
  // What a second of each idle server costs, to weigh against the per-request figures.
  if (opts.idleSeconds > 0) {
    await Promise.all([...counters.values()].map((c) => c.zero()));
    await new Promise((r) => setTimeout(r, opts.idleSeconds * 1000));
    for (const [name, counter] of counters) idle[name] = (await counter.dump()).total / opts.idleSeconds;
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop(30_000)));
  for (const counter of counters.values()) counter.removePerfMap();
  rmSync(dir, { recursive: true, force: true });
}

const rows = instructionRows(
  windows,
  targets.map((t) => ({ name: t.name, label: `${t.name} \`${t.paths[0]}\`` })),
  contenders.map((c) => c.name),
);
const markdown = [
  `# Instructions per request${opts.goals ? ', rung by rung' : ': ours vs bare'} (${new Date().toISOString()})`,
  '',
  `${version}, callgrind; ${opts.windows} windows per server and page, alternating, ${opts.connections} connections; ` +
    `${contenders.map((c) => `**${c.name}**: ${c.what}`).join('; ')}; POOL_POLICY=off, RENDER_SLICE_MS=${opts.renderSliceMs} ` +
    `(callgrind's slowdown)${opts.oursEnv ? `, and ${opts.oursEnv}` : ''}; ` +
    `ours and bare with ${NODE_FLAGS.join(' ')} (as npm start) and ${RUNTIME_V8_FLAGS.join(' ')}, @astrojs/node as its docs run it${opts.singleThreaded ? '; every server with --single-threaded' : ''}. ` +
    'The main thread (the event loop) per window: medians (min–max), ratios of per-window pairs. A major GC or a ' +
    'compilation lands in one window, so the last three columns take every window together (sum of instructions ÷ ' +
    "sum of requests): the main thread's ratio to bare and to the server before, and all threads' (V8's GC and " +
    'compiler threads too) to bare.',
  '',
  markdownTable(INSTRUCTION_COLUMNS, rows),
  '',
  opts.node
    ? "On ours' row, '÷ the one before' is ours ÷ @astrojs/node. Where a server is CPU-bound on one core, " +
      'its req/s goes with the inverse of its instructions per request (not exactly: instructions are not time).'
    : '',
  '',
  ...(opts.kinds
    ? [
        'Where they went: instructions per request by kind of code, over all windows together (told apart by ' +
          "function name: `JIT code` is V8's compiled JavaScript, `builtins` V8's precompiled ones (the interpreter, " +
          "inline caches, Promise, string and array operations), `GC` V8's heap and collectors (allocation slow paths " +
          "and write barriers included), `compiler` parsing and compiling; the last two columns add V8's other threads):",
        '',
        markdownTable(
          KIND_COLUMNS,
          kindRows(
            windows,
            targets.map((t) => ({ name: t.name, label: t.name })),
            contenders.map((c) => c.name),
          ),
        ),
        '',
      ]
    : []),
  ...(opts.functions > 0
    ? targets.flatMap((t) => {
        const { columns, rows } = functionRows(
          windows,
          t.name,
          contenders.map((c) => c.name),
          opts.functions,
        );
        return [
          `${t.name}: the ${opts.functions} functions whose own main-thread instructions per request differ most ` +
            `between ${contenders.at(-1)!.name} and ${contenders[0]!.name}, all windows together (JavaScript named ` +
            "from V8's perf map, its tiers added up; code V8 freed and re-made at the same address can be misnamed):",
          '',
          markdownTable(columns, rows),
          '',
        ];
      })
    : []),
  Object.keys(idle).length
    ? `Idle, instructions per second: ${Object.entries(idle)
        .map(([name, count]) => `${name} ${int(count)}`)
        .join(', ')}.`
    : '',
  problems.length ? `\nProblems:\n${problems.map((p) => `- ${p}`).join('\n')}` : '',
  '',
  machineNote(),
].join('\n');
console.log(`\n${markdown}\n`);
writeReport('bench-instructions', markdown, { opts, version, windows, idle, problems });
process.exit(problems.length ? 1 : 0);
