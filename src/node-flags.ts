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

/** The flags, in the order `npm start` passes them. */
export const NODE_FLAGS = ['--experimental-async-context-frame', `--max-semi-space-size=${SEMI_SPACE_MIB}`] as const;

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
const flagName = (flag: string) =>
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

/** Whether V8's allocation-site pretenuring is on in this process, by the flags it was given and set. */
export function allocationSitePretenuring(flags: readonly string[] = nodeFlags()): boolean {
  let on = true;
  for (const flag of flags) if (flagName(flag) === 'allocation-site-pretenuring') on = !flag.startsWith('--no-');
  return on;
}

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
  const missing = NODE_FLAGS.filter((flag) => !flags.includes(flag) && context.known.has(flag.split('=')[0]!));
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
