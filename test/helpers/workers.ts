// Reaching each worker of a WORKERS=2 origin: node:cluster hands each new connection to the next
// worker (round-robin), so requests on fresh connections alternate between them.
import { get as httpGet } from 'node:http';
import type { OriginProcess } from './origin.ts';
import { waitFor } from './wait.ts';

/** Workers the primary counts as ready (listening), from its `origin_cluster_workers` gauge. */
export async function readyWorkerCount(origin: OriginProcess): Promise<number> {
  const text = await (await fetch(origin.metricsUrl)).text();
  return Number(/^origin_cluster_workers\{state="ready"\} (\S+)$/m.exec(text)?.[1] ?? 0);
}

/**
 * Under WORKERS > 1, /readyz (which spawnOrigin waits for) answers as soon as one worker
 * listens; tests that need every worker wait here.
 */
export async function waitForReadyWorkers(origin: OriginProcess, count: number, timeoutMs = 30_000): Promise<void> {
  try {
    await waitFor(`${count} ready workers`, timeoutMs, async () => (await readyWorkerCount(origin)) === count);
  } catch (error) {
    throw new Error(`${(error as Error).message}; the origin printed:\n${origin.output()}`);
  }
}

/** GET on a new connection each time, so the cluster's round-robin spreads them over the workers. */
export function getFresh(url: string): Promise<{ pid: number; render: number }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve(JSON.parse(text) as { pid: number; render: number }));
    }).on('error', reject);
  });
}

/**
 * GETs a /cache/stamp URL until each of two workers has answered `times` times; the renders
 * each worker answered with, by pid (the same number again: its cached copy).
 */
export async function bothWorkers(url: string, times = 2): Promise<Map<number, number[]>> {
  const seen = new Map<number, number[]>();
  for (let i = 0; i < 60; i++) {
    const { pid, render } = await getFresh(url);
    seen.set(pid, [...(seen.get(pid) ?? []), render]);
    if (seen.size === 2 && [...seen.values()].every((r) => r.length >= times)) return seen;
  }
  throw new Error(`the requests did not reach two workers: ${JSON.stringify([...seen])}`);
}
