import { envSchema } from 'env-schema';

export const POOL_POLICIES = ['off', 'per-request', 'shared'] as const;
export type PoolPolicyName = (typeof POOL_POLICIES)[number];

/** Every environment variable the origin reads. README "Configuration" mirrors this table. */
const schema = {
  type: 'object',
  properties: {
    HOST: { type: 'string', default: '127.0.0.1', minLength: 1 },
    PORT: { type: 'integer', default: 4321, minimum: 0, maximum: 65535 },
    BUILD_DIR: { type: 'string', default: 'dist', minLength: 1 },
    LOG_LEVEL: {
      type: 'string',
      default: 'info',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    },
    POOL_POLICY: { type: 'string', default: 'off', enum: POOL_POLICIES },
    POOL_SIZE: { type: 'integer', default: 1000, minimum: 0, maximum: 1_000_000 },
    METRICS_ENABLED: { type: 'boolean', default: true },
    METRICS_HOST: { type: 'string', default: '127.0.0.1', minLength: 1 },
    METRICS_PORT: { type: 'integer', default: 9464, minimum: 0, maximum: 65535 },
    BODY_LIMIT_BYTES: { type: 'integer', default: 1_048_576, minimum: 0 },
    COMPRESS_THRESHOLD_BYTES: { type: 'integer', default: 1024, minimum: 0 },
    KEEP_ALIVE_TIMEOUT_MS: { type: 'integer', default: 65_000, minimum: 1 },
    HEADERS_TIMEOUT_MS: { type: 'integer', default: 15_000, minimum: 1 },
    REQUEST_TIMEOUT_MS: { type: 'integer', default: 30_000, minimum: 1 },
    MAX_CONNECTIONS: { type: 'integer', default: 0, minimum: 0 },
    MAX_HEADER_BYTES: { type: 'integer', default: 16_384, minimum: 1024 },
    MAX_URL_BYTES: { type: 'integer', default: 8192, minimum: 256 },
    MAX_HEADERS_COUNT: { type: 'integer', default: 100, minimum: 8, maximum: 2000 },
    SHUTDOWN_TIMEOUT_MS: { type: 'integer', default: 10_000, minimum: 1 },
    MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', default: 1000, minimum: 0 },
    MAX_EVENT_LOOP_UTILIZATION: { type: 'number', default: 0, minimum: 0, maximum: 1 },
    MAX_HEAP_USED_BYTES: { type: 'integer', default: 0, minimum: 0 },
    MAX_RSS_BYTES: { type: 'integer', default: 0, minimum: 0 },
    OVERLOAD_RETRY_AFTER_SECONDS: { type: 'integer', default: 10, minimum: 1, maximum: 3600 },
    WORKERS: { type: 'string', default: '1', pattern: '^(auto|[1-9][0-9]*)$' },
  },
} as const;

export interface Config {
  HOST: string;
  PORT: number;
  BUILD_DIR: string;
  LOG_LEVEL: string;
  POOL_POLICY: PoolPolicyName;
  POOL_SIZE: number;
  METRICS_ENABLED: boolean;
  METRICS_HOST: string;
  METRICS_PORT: number;
  BODY_LIMIT_BYTES: number;
  COMPRESS_THRESHOLD_BYTES: number;
  KEEP_ALIVE_TIMEOUT_MS: number;
  HEADERS_TIMEOUT_MS: number;
  REQUEST_TIMEOUT_MS: number;
  MAX_CONNECTIONS: number;
  MAX_HEADER_BYTES: number;
  MAX_URL_BYTES: number;
  MAX_HEADERS_COUNT: number;
  SHUTDOWN_TIMEOUT_MS: number;
  MAX_EVENT_LOOP_DELAY_MS: number;
  MAX_EVENT_LOOP_UTILIZATION: number;
  MAX_HEAP_USED_BYTES: number;
  MAX_RSS_BYTES: number;
  OVERLOAD_RETRY_AFTER_SECONDS: number;
  WORKERS: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the configuration. `env` defaults to process.env; tests pass their own.
 * Throws ConfigError naming every bad variable, its value and what is allowed.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  let config: Config;
  try {
    // env: false: only `env` counts, so a test's configuration is not mixed with the shell's.
    config = envSchema<Config>({ schema, data: env, env: false, dotenv: false });
  } catch (err) {
    const detail = (err as Error).message
      .replace(/^env\//, '')
      .split(', env/')
      .map((problem) => {
        const name = problem.split(' ')[0] ?? '';
        return env[name] === undefined ? problem : `${problem} (got ${JSON.stringify(env[name])})`;
      })
      .join('; ');
    throw new ConfigError(`Invalid configuration: ${detail}. See the Configuration table in README.md.`);
  }
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `Invalid configuration: HEADERS_TIMEOUT_MS (${config.HEADERS_TIMEOUT_MS}) must not exceed REQUEST_TIMEOUT_MS (${config.REQUEST_TIMEOUT_MS}); Node refuses that combination.`,
    );
  }
  if (config.MAX_URL_BYTES > config.MAX_HEADER_BYTES) {
    throw new ConfigError(
      `Invalid configuration: MAX_URL_BYTES (${config.MAX_URL_BYTES}) must not exceed MAX_HEADER_BYTES (${config.MAX_HEADER_BYTES}): the request line counts towards the head, so a longer URL would get 431 before the 414 check. Raise MAX_HEADER_BYTES or lower MAX_URL_BYTES.`,
    );
  }
  return config;
}

/** Number of worker processes WORKERS asks for on this machine. */
export function workerCount(config: Config, cores: number): number {
  return config.WORKERS === 'auto' ? cores : Number(config.WORKERS);
}
