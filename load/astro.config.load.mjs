// The demo site as the scenarios and `npm run bench` render it (→ dist-load/): astro.config.mjs
// without Astro's experimental cache. The peer build (load/astro.config.node.mjs) has no cache
// either, so all three servers of the bench run the same page pipeline; with the cache in the
// build, Astro runs the provider's onRequest on every request even when the origin cache is
// off. The cache is measured on its own, on the demo build as shipped (the bench's cached row).
import demo from '../astro.config.mjs';

const { cache: _cache, routeRules: _routeRules, ...experimental } = demo.experimental ?? {};

export default { ...demo, experimental };
