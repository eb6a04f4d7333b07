// The Node flags the origin is meant to run with, and what this process was given. `npm start`,
// `npm run demo`, the Docker image and the benchmarks pass NODE_FLAGS (a test holds them to it).
// V8 reads its heap flags once, at start, so a process cannot set them for itself: the
// `astro-fastify-origin` bin, which users start with whatever node they have, replaces itself
// once with a node that has them (restartWithNodeFlags).

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
