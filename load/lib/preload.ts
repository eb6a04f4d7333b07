// Loaded into servers under test with `node --import load/lib/preload.ts` (see preloadArgs):
// - SIGURG (ignored by default, and not one of close-with-grace's shutdown signals, which
//   SIGUSR2 is) runs two full garbage collections when the process has --expose-gc, so the soak
//   can read heap used "after a forced settle" from the outside;
// - PRELOAD_EXIT_ON_SIGTERM=1 turns SIGTERM into a normal exit, for servers that have no
//   SIGTERM handler of their own (@astrojs/node): --cpu-prof writes its profile only then.
process.on('SIGURG', () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
});
if (process.env.PRELOAD_EXIT_ON_SIGTERM === '1') process.once('SIGTERM', () => process.exit(0));
