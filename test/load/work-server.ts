// A node:http server whose requests cost a chosen amount of work, for the callgrind test:
// GET /?n=N runs a loop of N steps. PORT and HOST from the environment.
import { createServer } from 'node:http';

let sink = 0;
createServer((req, res) => {
  const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? 0);
  let x = 0;
  for (let i = 0; i < n; i++) x = (x * 31 + i) | 0;
  sink ^= x;
  res.end(String(sink));
}).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
