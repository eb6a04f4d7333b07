// The request being served, for log lines written outside any request object (stray
// rejections, Astro's own log lines). One AsyncLocalStorage for the whole origin.
import { AsyncLocalStorage } from 'node:async_hooks';
import { nodeFlags } from './node-flags.ts';

/**
 * Whether AsyncLocalStorage is cheap on this runtime: with AsyncContextFrame (default from
 * Node 24, a flag on 22) it costs nothing measurable; on Node 22's async_hooks implementation
 * it cost 12-22 % more CPU per render of the demo pages (measured), too much for a request id
 * on a rare log line.
 */
export function asyncContextIsCheap(): boolean {
  const major = Number(process.versions.node.split('.')[0]);
  const flags = nodeFlags();
  return major >= 24
    ? !flags.includes('--no-async-context-frame')
    : flags.includes('--experimental-async-context-frame');
}

/**
 * The id of the request being rendered. Undefined where AsyncLocalStorage is not cheap: those
 * log lines then carry the error and its stack but no request id.
 */
export const requestContext: AsyncLocalStorage<string> | undefined = asyncContextIsCheap()
  ? new AsyncLocalStorage()
  : undefined;

/** Runs `fn` with `requestId` as the current request (where that is cheap). */
export function runInRequest<T>(requestId: string, fn: () => T): T {
  return requestContext ? requestContext.run(requestId, fn) : fn();
}

/** The current request's id, if any and if tracked. */
export function currentRequestId(): string | undefined {
  return requestContext?.getStore();
}
