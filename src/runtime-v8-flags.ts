// Imported first by the process entry (src/server.ts), for its side effect: V8's runtime flags
// are set before any other module loads. A site V8 moves to the old generation while modules
// load stays there, and functions that run at load time run per request too. Embedders that
// call startOrigin() directly get them when standalone.ts imports this (once per process).
import { applyRuntimeV8Flags } from './node-flags.ts';

/** The RUNTIME_V8_FLAGS this process set for itself (none that its command line names). */
export const appliedV8Flags: readonly string[] = applyRuntimeV8Flags();
