// Runs ceiling-worker.ts as its own process and returns its renders/s per round.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PoolPolicyName } from '../../src/config.ts';
import { ROOT } from './paths.ts';

export interface CeilingOptions {
  buildDir: string;
  paths: readonly string[];
  concurrency: number;
  warmup: number;
  duration: number;
  rounds: number;
  policy: PoolPolicyName;
}

export async function measureCeiling(o: CeilingOptions): Promise<number[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      path.join(ROOT, 'load', 'lib', 'ceiling-worker.ts'),
      JSON.stringify({ ...o, buildDir: path.resolve(ROOT, o.buildDir) }),
    ],
    // CACHE_MAX_BYTES=0: the ceiling measures renders, not the origin cache the demo turns on.
    { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', CACHE_MAX_BYTES: '0' }, maxBuffer: 16 * 1024 * 1024 },
  );
  const last = stdout.trim().split('\n').at(-1)!;
  return (JSON.parse(last) as { perRound: number[] }).perRound;
}
