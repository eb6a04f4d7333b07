/** How many <ProbeToken> components /probe (MDX, queue renderer) and /probe-astro (.astro) each render. */
export const PROBE_TOKEN_COUNT = 24;
