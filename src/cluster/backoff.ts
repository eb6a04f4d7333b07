// How long the primary waits before forking a worker again after it died: a crash loop must not
// burn the CPU, and a worker that ran fine for a while deserves a quick restart.

/** The first restart after minMs, doubling up to maxMs; back to minMs after stableMs of uptime. */
export const RESTART_BACKOFF = { minMs: 100, maxMs: 10_000, stableMs: 60_000 } as const;

export type BackoffPolicy = { readonly minMs: number; readonly maxMs: number; readonly stableMs: number };

/**
 * The delay before restarting a worker that died after `uptimeMs`, given the delay used for the
 * previous restart of its slot (undefined: never restarted).
 */
export function restartDelay(
  previousDelayMs: number | undefined,
  uptimeMs: number,
  policy: BackoffPolicy = RESTART_BACKOFF,
): number {
  if (previousDelayMs === undefined || uptimeMs >= policy.stableMs) return policy.minMs;
  return Math.min(Math.max(previousDelayMs, policy.minMs) * 2, policy.maxMs);
}
