// An evenly paced load: one request every 1/rate seconds over kept-alive connections, whatever
// the answers do (an open loop). autocannon's rate limit is not that: each of its connections
// sends its share of a second back to back, then pauses until the next second, and all of them
// start together. Its "80 req/s over 16 connections" is a 16-way closed-loop burst of 80
// requests at the top of each second, then nothing; servers paced side by side all took their
// bursts at the same moment, on the same CPU. Used where a steady pace matters (lib/paced.ts).
import { Agent, request } from 'node:http';
import type { LoadResult } from './cannon.ts';

export interface PacedLoadOptions {
  /** Base URL, e.g. http://127.0.0.1:4321 */
  url: string;
  /** Requests per second, spread evenly. */
  rate: number;
  /** Seconds of sending. */
  duration: number;
  /** Kept-alive connections at most; a request due while all are busy waits for one. */
  connections: number;
  /** Paths, taken in turn. */
  paths: readonly string[];
  /** Seconds to wait for the last answers after the sending stops (default 10). */
  timeout?: number;
}

export function runPacedLoad(o: PacedLoadOptions): Promise<LoadResult> {
  const target = new URL(o.url);
  // fifo: the open connections in turn. With the default (lifo), those a moment of backlog opened
  // sit idle until the server's keep-alive timeout closes them, sometimes under a new request.
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections, scheduling: 'fifo' });
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let lastAnswer = 0;
  const started = performance.now();
  const stopAt = started + o.duration * 1000;
  const intervalMs = 1000 / o.rate;

  return new Promise<LoadResult>((resolve) => {
    let timedOut: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timedOut);
      agent.destroy();
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
      const responses = latencies.length;
      const ok = Object.entries(statusCodes).reduce((n, [code, count]) => (code.startsWith('2') ? n + count : n), 0);
      const seconds = ((lastAnswer || performance.now()) - started) / 1000;
      resolve({
        rps: responses / seconds,
        p50: at(0.5),
        p97_5: at(0.975),
        p99: at(0.99),
        max: latencies.at(-1) ?? NaN,
        responses,
        ok,
        non2xx: responses - ok,
        errors: errors + (sent - answered),
        timeouts: sent - answered,
        seconds,
        statusCodes,
      });
    };
    const done = () => {
      answered++;
      if (performance.now() >= stopAt && answered === sent) finish();
    };
    const send = () => {
      const path = o.paths[sent % o.paths.length]!;
      sent++;
      const t0 = performance.now();
      // Once per request: an aborted response can report its error on both the request and the response.
      let over = false;
      const failed = () => {
        if (over) return;
        over = true;
        errors++;
        done();
      };
      const req = request({ agent, host: target.hostname, port: target.port, path, method: 'GET' }, (res) => {
        res.on('end', () => {
          if (over) return;
          over = true;
          lastAnswer = performance.now();
          latencies.push(lastAnswer - t0);
          const code = String(res.statusCode);
          statusCodes[code] = (statusCodes[code] ?? 0) + 1;
          done();
        });
        res.on('error', failed);
        res.resume();
      });
      req.on('error', failed);
      req.end();
    };
    const tick = () => {
      const now = performance.now();
      if (now >= stopAt) {
        if (answered === sent) finish();
        else timedOut = setTimeout(finish, (o.timeout ?? 10) * 1000);
        return;
      }
      const due = Math.floor((now - started) / intervalMs) + 1;
      while (sent < due) send();
      setTimeout(tick, Math.max(0, started + due * intervalMs - now));
    };
    tick();
  });
}
