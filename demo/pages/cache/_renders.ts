// Render counts of the cache test pages, per process (the leading underscore keeps this file
// out of routing). The origin cache must keep these low: a hit never runs the page.
const counts = new Map<string, number>();

/** Counts one render of `key`; returns how many there have been. */
export function countRender(key: string): number {
  const n = (counts.get(key) ?? 0) + 1;
  counts.set(key, n);
  return n;
}

export function renderCounts(): { total: number; byKey: Record<string, number> } {
  let total = 0;
  for (const n of counts.values()) total += n;
  return { total, byKey: Object.fromEntries(counts) };
}
