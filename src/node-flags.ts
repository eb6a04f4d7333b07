// The Node flags the origin is meant to run with, and what this process was given. `npm start`,
// `npm run demo`, the Docker image and the benchmarks pass NODE_FLAGS (a test holds them to it).
// V8 reads its heap flags once, at start, so a process cannot set them for itself: the
// `astro-fastify-origin` bin, which users start with whatever node they have, replaces itself
// once with a node that has them (restartWithNodeFlags). V8 flags it reads while running are set
// by the process itself (applyRuntimeV8Flags).
import v8 from 'node:v8';

/**
 * V8's semi-space (each half of the young generation) in MiB. V8's default on 64-bit Node 22 is
 * 16. Astro allocates ~65 KB per tiny page and ~1.6 MB per large MDX page, most of it garbage
 * by the response; with 50 renders in flight, 16 MiB fills before they finish, so their objects
 * get copied and promoted to the old generation, which then needs marking. At 64 MiB, measured
 * side by side on the demo's bench pages, ours used 21-29 % less CPU a request (README, *Node
 * flags*); the young generation may then take 128 MiB of memory (two semi-spaces) instead of 32.
 */
export const SEMI_SPACE_MIB = 64;

/**
 * The flags, in the order `npm start` passes them.
 *
 * --min-semi-space-size and --no-memory-reducer keep the heap at its working size while the
 * origin idles. With V8's defaults, after ~45 s without traffic its memory reducer shrinks the
 * heap and the young generation falls back to 1 MiB; the next burst then pays for regrowing it
 * (116-165 scavenges, 5-10 mark-compacts and ~0.9 page faults a request for 40 000 tiny-page
 * requests, against 43-49 scavenges warm): ~35 % more CPU a request for that burst. Either flag
 * alone left half of it. With and without them, every run after a 45 s idle: 0.89× (0.72-1.43)
 * the CPU a request on the tiny page, 0.84× (0.71-0.94) on the MDX page (README, *Node flags*).
 * The price is idle memory: the origin keeps what its busiest burst committed (idle RSS 398-401
 * MiB against 147-388). V8 refuses both in NODE_OPTIONS and reads them only at start, so they go
 * on the command line.
 */
export const NODE_FLAGS = [
  '--experimental-async-context-frame',
  `--max-semi-space-size=${SEMI_SPACE_MIB}`,
  `--min-semi-space-size=${SEMI_SPACE_MIB}`,
  '--no-memory-reducer',
] as const;

/**
 * NODE_FLAGS that are V8's and not Node's: process.allowedNodeEnvironmentFlags does not list
 * them, so the restart cannot ask it whether this node knows them. Node has passed them to V8
 * unchanged since V8 4.x; test/node-flags.test.ts checks them against `node --v8-options`.
 */
export const V8_ONLY_NODE_FLAGS: readonly string[] = [`--min-semi-space-size=${SEMI_SPACE_MIB}`, '--no-memory-reducer'];

/**
 * V8 flags the origin sets for itself when it starts (v8.setFlagsFromString), unless the command
 * line names them either way (`--allocation-site-pretenuring` opts out). V8 reads these while it
 * runs, so they need no restart; Node refuses them in NODE_OPTIONS.
 *
 * --no-allocation-site-pretenuring: V8 counts, per object-literal allocation site, how many of its
 * objects survive a scavenge; past 85 % it allocates that site's objects straight in the old
 * generation from then on, where only a mark-compact frees them. Render turns hold a saturated
 * origin's waiting requests across scavenges, so sites of per-request objects (made before the
 * render waits) cross that line and stay there: every later request's objects from them are
 * then old-generation garbage (381 sites in 1 000 MDX requests; none with the flag). Side by side
 * at 50 connections, this code against the code before: 0.89× (0.72-1.01) the CPU a request on
 * the tiny page, 7 of 8 rounds below 0.95; on the MDX page within the noise, 0.96× (0.71-1.27)
 * (README, *Node flags*). Set first thing by src/runtime-v8-flags.ts: a site moved while
 * modules load stays moved.
 */
export const RUNTIME_V8_FLAGS = ['--no-allocation-site-pretenuring'] as const;

/** The flag's name without `--` and `no-`, with `-` for `_` (V8 accepts both). */
export const flagName = (flag: string) =>
  flag
    .replace(/^--(no-)?/, '')
    .split('=')[0]!
    .replaceAll('_', '-');

/**
 * Sets the RUNTIME_V8_FLAGS this process was not started with (either way); returns those set.
 * Call it before serving: a site V8 has moved to the old generation stays there.
 */
export function applyRuntimeV8Flags(flags: readonly string[] = nodeFlags()): string[] {
  const given = new Set(flags.map(flagName));
  const set = RUNTIME_V8_FLAGS.filter((flag) => !given.has(flagName(flag)));
  for (const flag of set) v8.setFlagsFromString(flag);
  return set;
}

/** Whether V8's boolean flag `name` (on by default) is on, by the flags given; the last one wins. */
function v8FlagOn(name: string, flags: readonly string[]): boolean {
  let on = true;
  for (const flag of flags) if (flagName(flag) === name) on = !flag.startsWith('--no-');
  return on;
}

/** Whether V8's allocation-site pretenuring is on in this process, by the flags it was given and set. */
export const allocationSitePretenuring = (flags: readonly string[] = nodeFlags()) =>
  v8FlagOn('allocation-site-pretenuring', flags);

/** Whether V8's memory reducer (which shrinks an idle heap) is on in this process, by its flags. */
export const memoryReducer = (flags: readonly string[] = nodeFlags()) => v8FlagOn('memory-reducer', flags);

/** This process's Node flags in the order Node applies them: NODE_OPTIONS', then the command line's. */
export function nodeFlags(): string[] {
  return [...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean), ...process.execArgv];
}

/** The semi-space size this process was started with, in MiB; undefined for V8's default. */
export function semiSpaceMiB(flags: readonly string[] = nodeFlags()): number | undefined {
  let size: number | undefined;
  // The last one given wins, as in V8.
  for (const flag of flags) {
    const m = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(flag);
    if (m) size = Number(m[1]);
  }
  return size;
}

export interface RestartContext {
  execPath: string;
  execArgv: readonly string[];
  argv: readonly string[];
  /** The flags this node accepts (process.allowedNodeEnvironmentFlags): a newer node may drop one. */
  known: ReadonlySet<string>;
}

/**
 * The command line that starts this process again with the NODE_FLAGS it lacks, or undefined
 * when it needs no restart: a semi-space size was given (by npm start, the image, NODE_OPTIONS
 * or the operator, whatever the size: that is how to opt out), which also stops the restart
 * after one round. The flags go first, so the command line's own win where they conflict.
 */
export function restartArgv(
  flags: readonly string[] = nodeFlags(),
  context: RestartContext = {
    execPath: process.execPath,
    execArgv: process.execArgv,
    argv: process.argv,
    known: process.allowedNodeEnvironmentFlags,
  },
): string[] | undefined {
  if (semiSpaceMiB(flags) !== undefined) return undefined;
  const known = (flag: string) => context.known.has(flag.split('=')[0]!) || V8_ONLY_NODE_FLAGS.includes(flag);
  const missing = NODE_FLAGS.filter((flag) => !flags.includes(flag) && known(flag));
  if (semiSpaceMiB(missing) === undefined) return undefined;
  return [context.execPath, ...missing, ...context.execArgv, ...context.argv.slice(1)];
}

/**
 * Replaces this process (same pid, same stdio, same environment) with one started with the
 * NODE_FLAGS it lacks; returns when none are lacking, or where process.execve does not exist
 * (Node < 22.15, Windows) or fails: the origin then runs as it was started, and its start-up
 * lines say so (semiSpaceMiB, and the hint). Call it before anything else is loaded or opened.
 */
export function restartWithNodeFlags(): void {
  const argv = restartArgv();
  if (!argv || typeof process.execve !== 'function') return;
  try {
    process.execve(process.execPath, argv, process.env);
  } catch {
    // Not allowed here (a sandbox, a seccomp profile): serve without the flags.
  }
}
