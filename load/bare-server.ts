// The yardstick of `npm run bench`: the least a node:http server around the same Astro App
// can do. Web Request in, app.render(), the whole body read, written with its length. No
// logging, metrics, compression, static files or error handling, and Astro's App as built (ours
// imports each page's module once: src/astro/astro-internals.ts). Usage (HOST, PORT from env):
//   node load/bare-server.ts <buildDir>
import { createServer } from 'node:http';
import { loadBuild } from '../src/astro/load-build.ts';

const { app } = await loadBuild(process.argv[2] ?? 'dist');
const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 4321);
createServer(async (req, res) => {
  const request = new Request(`http://${host}:${port}${req.url}`, { headers: req.headers as Record<string, string> });
  const response = await app.render(request);
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, { ...Object.fromEntries(response.headers), 'content-length': body.byteLength });
  res.end(body);
}).listen(port, host);
