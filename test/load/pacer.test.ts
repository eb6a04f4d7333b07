// The paced side-by-side runs' load (load/lib/pacer.ts) against a real node:http server: the
// requests arrive evenly over the second, not in one burst at its start (autocannon's rate
// limit), and every answer is counted.
import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runPacedLoad } from '../../load/lib/pacer.ts';

/** A node:http server on a free loopback port, and its base URL. */
async function listen(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('200 req/s over 16 connections: evenly spread, each answered and counted', async () => {
  const arrivals: number[] = [];
  const paths: string[] = [];
  const { server, url } = await listen((req, res) => {
    arrivals.push(performance.now());
    paths.push(req.url ?? '');
    res.end('ok');
  });
  try {
    const result = await runPacedLoad({
      url,
      rate: 200,
      duration: 1.5,
      connections: 16,
      paths: ['/a', '/b'],
    });
    assert.equal(result.responses, arrivals.length);
    assert.ok(Math.abs(result.responses - 300) <= 2, `${result.responses} responses for 1.5 s at 200 req/s`);
    assert.equal(result.ok, result.responses);
    assert.equal(result.errors, 0);
    assert.deepEqual(result.statusCodes, { 200: result.responses });
    const toA = paths.filter((p) => p === '/a').length;
    assert.ok(Math.abs(toA - paths.length / 2) <= 1, `the paths in turn: ${toA} of ${paths.length} to /a`);
    // Evenly: 20 requests per 100 ms window. A burst at the top of each second (autocannon's
    // rate limit) puts the second's 200 into its first few ms.
    const start = arrivals[0]!;
    const perWindow = new Map<number, number>();
    for (const t of arrivals) {
      const w = Math.floor((t - start) / 100);
      perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    }
    const busiest = Math.max(...perWindow.values());
    assert.ok(busiest <= 30, `at most 30 requests in any 100 ms window, saw ${busiest}`);
    assert.ok(perWindow.size >= 14, `requests in ${perWindow.size} of the 15 windows`);
  } finally {
    server.close();
  }
});

test('a server that does not answer: the run ends after its timeout, the requests counted as timeouts', async () => {
  const { server, url } = await listen(() => {});
  try {
    const result = await runPacedLoad({
      url,
      rate: 20,
      duration: 0.5,
      connections: 4,
      paths: ['/'],
      timeout: 0.5,
    });
    assert.equal(result.responses, 0);
    assert.ok(result.timeouts >= 8, `${result.timeouts} timeouts`);
    assert.equal(result.errors, result.timeouts);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
