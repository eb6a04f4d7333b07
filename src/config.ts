// Every environment variable the origin reads, in one schema: the Config type is derived from
// it, env-schema validates against it, and test/config.test.ts checks that README's
// Configuration table and .env.example name exactly these variables.
import { envSchema } from 'env-schema';
import { type Static, Type } from 'typebox';
import { availableCpus, CGROUP_ROOT } from './cpu-quota.ts';
import { ConfigError } from './errors.ts';

export const POOL_POLICIES = ['off', 'per-request', 'shared'] as const;
export type PoolPolicyName = (typeof POOL_POLICIES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (defaultValue: number, range: { minimum?: number; maximum?: number } = {}) =>
  Type.Integer({ default: defaultValue, ...range });
const text = (defaultValue: string) => Type.String({ default: defaultValue, minLength: 1 });
const oneOf = <T extends readonly string[]>(values: T, defaultValue: T[number]) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], default: defaultValue });

export const configSchema = Type.Object({
  HOST: text('127.0.0.1'),
  PORT: int(4321, { minimum: 0, maximum: 65535 }),
  BUILD_DIR: text('dist'),
  LOG_LEVEL: oneOf(LOG_LEVELS, 'info'),
  POOL_POLICY: oneOf(POOL_POLICIES, 'off'),
  POOL_SIZE: int(1000, { minimum: 0, maximum: 1_000_000 }),
  RENDER_SLICE_MS: int(5, { minimum: 0, maximum: 60_000 }),
  RENDER_TURNS_AFTER_ACCEPT_MS: int(1000, { minimum: 0, maximum: 3_600_000 }),
  METRICS_ENABLED: Type.Boolean({ default: true }),
  METRICS_HOST: text('127.0.0.1'),
  METRICS_PORT: int(9464, { minimum: 0, maximum: 65535 }),
  BODY_LIMIT_BYTES: int(1_048_576, { minimum: 0 }),
  COMPRESS_THRESHOLD_BYTES: int(1024, { minimum: 0 }),
  KEEP_ALIVE_TIMEOUT_MS: int(65_000, { minimum: 1 }),
  HEADERS_TIMEOUT_MS: int(15_000, { minimum: 1 }),
  REQUEST_TIMEOUT_MS: int(30_000, { minimum: 1 }),
  MAX_CONNECTIONS: int(0, { minimum: 0 }),
  MAX_HEADER_BYTES: int(16_384, { minimum: 1024 }),
  MAX_URL_BYTES: int(8192, { minimum: 256 }),
  MAX_HEADERS_COUNT: int(100, { minimum: 8, maximum: 2000 }),
  SHUTDOWN_TIMEOUT_MS: int(10_000, { minimum: 1 }),
  MAX_EVENT_LOOP_DELAY_MS: int(1000, { minimum: 0 }),
  MAX_EVENT_LOOP_UTILIZATION: Type.Number({ default: 0, minimum: 0, maximum: 1 }),
  MAX_HEAP_USED_BYTES: int(0, { minimum: 0 }),
  MAX_RSS_BYTES: int(0, { minimum: 0 }),
  OVERLOAD_RETRY_AFTER_SECONDS: int(10, { minimum: 1, maximum: 3600 }),
  WORKERS: Type.String({ default: '1', pattern: '^(auto|[1-9][0-9]*)$' }),
  STATIC_CACHE_CONTROL: Type.String({ default: 'public, max-age=60, must-revalidate', minLength: 1 }),
  // Empty counts as unset (compose passes `${REDIS_URL:-}`); src/session/driver.ts reads it.
  REDIS_URL: Type.String({ default: '', pattern: '^(rediss?://.+)?$' }),
  CACHE_MAX_BYTES: int(67_108_864, { minimum: 0 }),
  CACHE_DEBUG_HEADER: Type.Boolean({ default: false }),
  CACHE_PURGE_TOKEN: Type.String({ default: '' }),
});

export type Config = Static<typeof configSchema>;

/** One problem of env-schema's (Ajv's) structured errors, as a person would say it. */
interface SchemaProblem {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function describe(problem: SchemaProblem, env: Record<string, string | undefined>): string {
  const name = problem.instancePath.replace(/^\//, '');
  let what = problem.message ?? 'is not valid';
  if (problem.keyword === 'enum') what = `must be one of ${(problem.params.allowedValues as string[]).join(', ')}`;
  const given = env[name];
  return `${name} ${what}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`;
}

/**
 * Reads and validates the configuration. `env` defaults to process.env; tests pass their own.
 * Throws ConfigError naming every bad variable, its value and what is allowed.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  let config: Config;
  try {
    // env: false: only `env` counts, so a test's configuration is not mixed with the shell's.
    config = envSchema<Config>({ schema: configSchema, data: env, env: false, dotenv: false });
  } catch (err) {
    const problems = (err as { errors?: SchemaProblem[] }).errors ?? [];
    if (problems.length === 0) throw err;
    throw new ConfigError(problems.map((p) => describe(p, env)).join('; '));
  }
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `HEADERS_TIMEOUT_MS (${config.HEADERS_TIMEOUT_MS}) must not exceed REQUEST_TIMEOUT_MS (${config.REQUEST_TIMEOUT_MS}); Node refuses that combination`,
    );
  }
  if (config.MAX_URL_BYTES > config.MAX_HEADER_BYTES) {
    throw new ConfigError(
      `MAX_URL_BYTES (${config.MAX_URL_BYTES}) must not exceed MAX_HEADER_BYTES (${config.MAX_HEADER_BYTES}): the request line counts towards the head, so a longer URL would get 431 before the 414 check. Raise MAX_HEADER_BYTES or lower MAX_URL_BYTES`,
    );
  }
  return config;
}

/**
 * Number of worker processes WORKERS asks for here. `auto`: one per CPU the process may use —
 * `cores` (os.availableParallelism()) capped by the container's CPU limit (src/cpu-quota.ts).
 */
export function workerCount(config: Config, cores: number, cgroupRoot: string = CGROUP_ROOT): number {
  return config.WORKERS === 'auto' ? availableCpus(cgroupRoot, cores) : Number(config.WORKERS);
}
