// Helpers shared by the API routes (the leading underscore keeps this file out of routing).

/** A JSON response; `init` adds a status and headers. */
export function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set('content-type', 'application/json; charset=utf-8');
  if (!headers.has('cache-control')) headers.set('cache-control', 'no-store');
  return new Response(JSON.stringify(body, jsonSafe()), { ...init, headers });
}

/**
 * A JSON.stringify replacer that turns what JSON cannot hold into readable markers instead
 * of throwing: functions, bigints, symbols, circular references. `locals` may hold anything.
 */
export function jsonSafe(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'symbol') return value.toString();
    if (value instanceof Map) return Object.fromEntries(value);
    if (value instanceof Set) return [...value];
    if (value !== null && typeof value === 'object') {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
    }
    return value;
  };
}

/** `ctx.clientAddress`, or null when the adapter did not pass one (Astro throws then). */
export function clientAddressOf(ctx: { clientAddress: string }): string | null {
  try {
    return ctx.clientAddress;
  } catch {
    return null;
  }
}
