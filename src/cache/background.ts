// Work a render hands Astro's waitUntil (the origin cache's background revalidations): it
// outlives the response, and shutdown gives it a short while to finish before the app closes.
import { setTimeout as sleep } from 'node:timers/promises';

/** How long app.close() waits for background work before it closes anyway. */
export const BACKGROUND_SETTLE_MS = 2000;

export interface BackgroundTasks {
  /** Astro's render option: called with promises that must not be cut short by the response ending. */
  waitUntil: (promise: Promise<unknown>) => void;
  /** Promises still running. */
  readonly pending: number;
  /** Resolves when every pending promise settled, or after `timeoutMs`. */
  settle(timeoutMs?: number): Promise<void>;
}

export function createBackgroundTasks(): BackgroundTasks {
  const pending = new Set<Promise<unknown>>();
  return {
    waitUntil(promise) {
      const tracked: Promise<unknown> = promise.then(
        () => pending.delete(tracked),
        () => pending.delete(tracked),
      );
      pending.add(tracked);
    },
    get pending() {
      return pending.size;
    },
    async settle(timeoutMs = BACKGROUND_SETTLE_MS) {
      if (pending.size === 0) return;
      await Promise.race([Promise.allSettled([...pending]), sleep(timeoutMs, undefined, { ref: false })]);
    },
  };
}
