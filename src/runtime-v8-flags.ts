// Imported first by the process entry (src/server.ts), for its side effect: V8's runtime flags
// are set before any other module loads. A site V8 moves to the old generation while modules
// load stays there, and functions that run at load time run per request too.
import { applyRuntimeV8Flags } from './node-flags.ts';

applyRuntimeV8Flags();
