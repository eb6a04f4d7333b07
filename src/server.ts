#!/usr/bin/env node
// Process entry: configuration → origin → graceful shutdown on SIGTERM/SIGINT.
// Usage: astro-fastify-origin [build-dir]   (or BUILD_DIR=…; default ./dist)
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadConfig } from './config.ts';
import { startOrigin } from './standalone.ts';

async function main(): Promise<void> {
  const env = { ...process.env };
  if (process.argv[2]) env.BUILD_DIR = process.argv[2];
  const config = loadConfig(env);
  const origin = await startOrigin(config);
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
    if (err) origin.app.log.error({ err }, 'shutting down after an uncaught error');
    else origin.app.log.info({ signal }, 'shutting down: draining in-flight requests');
    await origin.close();
  });
}

main().catch((err: unknown) => {
  // Start-up errors are the operator's to fix: say what is wrong, no stack for the known ones.
  const known = err instanceof ConfigError || (err instanceof Error && err.name === 'BuildLoadError');
  console.error(known ? `astro-fastify-origin: ${(err as Error).message}` : err);
  process.exit(1);
});
