// A node:http server whose requests cost a chosen amount of work, for the callgrind test:
// GET /?n=N runs a loop of N steps; GET /?alloc=N makes N small objects that die young (work
// for the garbage collector). PORT and HOST from the environment.
import { createServer } from 'node:http';

let sink = 0;
createServer((req, res) => {
  const query = new URL(req.url ?? '/', 'http://x').searchParams;
  const n = Number(query.get('n') ?? 0);
  let x = 0;
  for (let i = 0; i < n; i++) x = (x * 31 + i) | 0;
  let garbage: Array<{ i: number; next: unknown }> = [];
  for (let i = 0, alloc = Number(query.get('alloc') ?? 0); i < alloc; i++) {
    garbage.push({ i, next: garbage[i - 1] });
    if (garbage.length === 1000) garbage = [];
  }
  x ^= garbage.length;
  sink ^= x;
  res.end(String(sink));
}).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
