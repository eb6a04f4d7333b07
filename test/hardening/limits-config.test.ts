// The hardening settings: documented defaults, and combinations refused with a message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

test('defaults of the limits and timeouts', () => {
  const c = loadConfig({});
  assert.deepEqual(
    {
      KEEP_ALIVE_TIMEOUT_MS: c.KEEP_ALIVE_TIMEOUT_MS,
      HEADERS_TIMEOUT_MS: c.HEADERS_TIMEOUT_MS,
      REQUEST_TIMEOUT_MS: c.REQUEST_TIMEOUT_MS,
      MAX_CONNECTIONS: c.MAX_CONNECTIONS,
      MAX_HEADER_BYTES: c.MAX_HEADER_BYTES,
      MAX_URL_BYTES: c.MAX_URL_BYTES,
      MAX_HEADERS_COUNT: c.MAX_HEADERS_COUNT,
      BODY_LIMIT_BYTES: c.BODY_LIMIT_BYTES,
      SHUTDOWN_TIMEOUT_MS: c.SHUTDOWN_TIMEOUT_MS,
      MAX_EVENT_LOOP_DELAY_MS: c.MAX_EVENT_LOOP_DELAY_MS,
      MAX_EVENT_LOOP_UTILIZATION: c.MAX_EVENT_LOOP_UTILIZATION,
      MAX_HEAP_USED_BYTES: c.MAX_HEAP_USED_BYTES,
      MAX_RSS_BYTES: c.MAX_RSS_BYTES,
      OVERLOAD_RETRY_AFTER_SECONDS: c.OVERLOAD_RETRY_AFTER_SECONDS,
      WORKERS: c.WORKERS,
    },
    {
      KEEP_ALIVE_TIMEOUT_MS: 65_000,
      HEADERS_TIMEOUT_MS: 15_000,
      REQUEST_TIMEOUT_MS: 30_000,
      MAX_CONNECTIONS: 0,
      MAX_HEADER_BYTES: 16_384,
      MAX_URL_BYTES: 8192,
      MAX_HEADERS_COUNT: 100,
      BODY_LIMIT_BYTES: 1_048_576,
      SHUTDOWN_TIMEOUT_MS: 10_000,
      MAX_EVENT_LOOP_DELAY_MS: 1000,
      MAX_EVENT_LOOP_UTILIZATION: 0,
      MAX_HEAP_USED_BYTES: 0,
      MAX_RSS_BYTES: 0,
      OVERLOAD_RETRY_AFTER_SECONDS: 10,
      WORKERS: '1',
    },
  );
});

test('a URL limit above the head limit is refused: the 414 could never happen', () => {
  assert.throws(
    () => loadConfig({ MAX_URL_BYTES: '32768', MAX_HEADER_BYTES: '16384' }),
    (err: unknown) =>
      err instanceof ConfigError &&
      /MAX_URL_BYTES \(32768\) must not exceed MAX_HEADER_BYTES \(16384\)/.test((err as Error).message),
  );
});

test('out-of-range limits are refused with the variable and value', () => {
  assert.throws(() => loadConfig({ MAX_HEADERS_COUNT: '5000' }), /MAX_HEADERS_COUNT must be <= 2000 \(got "5000"\)/);
  assert.throws(() => loadConfig({ MAX_EVENT_LOOP_UTILIZATION: '1.5' }), /MAX_EVENT_LOOP_UTILIZATION must be <= 1/);
  assert.throws(() => loadConfig({ OVERLOAD_RETRY_AFTER_SECONDS: '0' }), /OVERLOAD_RETRY_AFTER_SECONDS must be >= 1/);
});
