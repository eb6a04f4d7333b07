#!/usr/bin/env node
// The `astro-fastify-origin` command. Users start it with whatever node they have, so first it
// replaces itself with a node that has the origin's flags (src/node-flags.ts), unless it was
// given a semi-space size; then it is src/server.ts. Loaded after the restart, not before: the
// first process would load Fastify and Astro for nothing.
import { restartWithNodeFlags } from './node-flags.ts';

restartWithNodeFlags();
await import('./server.ts');
