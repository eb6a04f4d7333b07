// The in-process ceiling: a child process that loads a build's Astro App and calls
// app.render() in a loop, `concurrency` renders in flight, no HTTP at all. Prints one JSON
// line: renders per second for each measured round. Run by ceiling.ts, one process (as the
// servers are one process).
import { loadBuild } from '../../src/astro/load-build.ts';
import { applyPoolPolicy } from '../../src/astro/pool-policy.ts';
import type { PoolPolicyName } from '../../src/config.ts';

interface Job {
  buildDir: string;
  paths: string[];
  concurrency: number;
  warmup: number;
  duration: number;
  rounds: number;
  policy: PoolPolicyName;
}

const job = JSON.parse(process.argv[2]!) as Job;
// The same loader as the server: a build made with another adapter fails here the same way.
const { app } = await loadBuild(job.buildDir);
const policy = applyPoolPolicy(app, job.policy, 1000);

async function renderOnce(url: string): Promise<void> {
  const request = new Request(url);
  const routeData = app.match(request);
  const response = await policy.run(() => app.render(request, { routeData }));
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  await response.text();
}

/** Renders for `seconds`; returns renders per second. */
async function measure(seconds: number): Promise<number> {
  const urls = job.paths.map((p) => `http://127.0.0.1${p}`);
  const until = performance.now() + seconds * 1000;
  let count = 0;
  const worker = async (offset: number) => {
    for (let i = offset; performance.now() < until; i++) {
      await renderOnce(urls[i % urls.length]!);
      count++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, (_, i) => worker(i)));
  return count / ((performance.now() - started) / 1000);
}

await measure(job.warmup);
const perRound: number[] = [];
for (let i = 0; i < job.rounds; i++) perRound.push(await measure(job.duration));
console.log(JSON.stringify({ perRound }));
