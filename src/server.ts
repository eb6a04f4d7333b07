#!/usr/bin/env node
// Process entry: configuration → origin (or, with WORKERS > 1, a primary that forks workers)
// → graceful shutdown on SIGTERM/SIGINT.
// Usage: astro-fastify-origin [build-dir]   (or BUILD_DIR=…; default ./dist)
import './runtime-v8-flags.ts';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import closeWithGrace from 'close-with-grace';
import { runPrimary } from './cluster/primary.ts';
import { runWorker } from './cluster/worker.ts';
import { type Config, loadConfig, workerCount } from './config.ts';
import { isOperatorError } from './errors.ts';
import { currentRequestId } from './request-context.ts';
import { type RunningOrigin, type StartOptions, startOrigin } from './standalone.ts';

async function main(): Promise<void> {
  const env = { ...process.env };
  if (process.argv[2]) env.BUILD_DIR = process.argv[2];
  const config = loadConfig(env);
  const workers = workerCount(config, availableParallelism());
  if (cluster.isPrimary && workers > 1) await runPrimary(config, workers);
  // WORKERS>1: this is one of the workers, stopped by the primary (src/cluster/worker.ts).
  else if (cluster.isWorker) await runWorker((options) => serve(config, options));
  // WORKERS=1: this process serves, no primary.
  else await serve(config);
}

/** Starts the origin, with signals and faults handled; drain() starts the graceful shutdown. */
async function serve(config: Config, options?: StartOptions): Promise<{ origin: RunningOrigin; drain: () => void }> {
  const origin = await startOrigin(config, options);
  const grace = handleFaultsAndSignals(origin, config);
  return { origin, drain: () => void grace.close() };
}

function handleFaultsAndSignals(origin: RunningOrigin, config: Config): ReturnType<typeof closeWithGrace> {
  const log = origin.app.log;
  // A promise rejected with nobody handling it (a fire-and-forget fetch in a component...):
  // Node's default would kill the process and every request in it. Log it and keep serving,
  // as @astrojs/node does. The request id is there where AsyncLocalStorage is cheap (faults.ts).
  process.on('unhandledRejection', (reason) => {
    log.error(
      { err: reason, reqId: currentRequestId() },
      'unhandled promise rejection: a promise was rejected and nothing handled it; the origin keeps serving. Await it or add .catch() where the stack points',
    );
  });
  // Signals and uncaught exceptions: drain, then exit (0 when drained in time). An uncaught
  // exception leaves the process in an unknown state: it drains and exits 1, and the cluster
  // primary (or the orchestrator) starts a fresh one.
  const grace = closeWithGrace(
    {
      // Our drain gives up at SHUTDOWN_TIMEOUT_MS and cuts what is left; this is the backstop.
      delay: config.SHUTDOWN_TIMEOUT_MS + 5000,
      skip: ['unhandledRejection'],
      logger: {
        error: (detail: unknown) => log.error(detail instanceof Error ? { err: detail } : { detail }, 'shutdown'),
      },
    },
    async ({ signal, err, manual }) => {
      if (err) log.error({ err }, 'uncaught exception: draining and exiting with 1');
      else
        log.info({ signal: signal ?? (manual ? 'primary' : undefined) }, 'shutting down: draining in-flight requests');
      const { forced } = await origin.close();
      if (forced)
        throw new Error(
          `shutdown: in-flight requests were cut after SHUTDOWN_TIMEOUT_MS=${config.SHUTDOWN_TIMEOUT_MS}`,
        );
    },
  );
  return grace;
}

main().catch((err: unknown) => {
  // Start-up errors are the operator's to fix: say what is wrong, no stack for the known ones.
  console.error(isOperatorError(err) ? `astro-fastify-origin: ${(err as Error).message}` : err);
  process.exit(1);
});
