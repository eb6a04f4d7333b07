// Serves one conformance build with each adapter, side by side, and sends both the same
// request, exactly as written (no URL normalisation, no automatic headers).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { freePort } from '../../load/lib/spawn-origin.ts';
import type { RunningOrigin } from '../../src/standalone.ts';
import { startTestOrigin } from '../helpers/origin.ts';
import { type AdapterName, buildDir, type VariantName } from './builds.ts';

/**
 * Every request carries this Host. Astro.url differs otherwise: we build the Request with
 * Astro's createRequest, which trusts Host only when security.allowedDomains lists it (else
 * "localhost"); @astrojs/node 10.1.4 takes Host as sent (cases.ts, "Astro.url").
 */
export const HOST = 'localhost';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** Sends `req` to `baseUrl` over a fresh connection; non-ASCII path bytes go out as UTF-8, unencoded. */
export function send(baseUrl: string, req: Req): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  // node:http writes the request line as latin1: a UTF-8 byte string puts the raw bytes on the wire.
  const rawPath = Buffer.from(req.path, 'utf8').toString('latin1');
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        hostname,
        port,
        method: req.method ?? 'GET',
        path: rawPath,
        agent: false,
        setHost: false,
        headers: { host: HOST, connection: 'close', ...req.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

export interface Pair {
  ours: string;
  theirs: string;
  /** The build directories (for tests that read the client dir). */
  oursDir: string;
  theirsDir: string;
  close(): Promise<void>;
}

/** Our origin in this process (the server's own code path) and @astrojs/node's entry.mjs as a child. */
export async function startPair(variant: VariantName): Promise<Pair> {
  const oursDir = buildDir(variant, 'ours');
  const theirsDir = buildDir(variant, 'node');
  const origin: RunningOrigin = await startTestOrigin({ BUILD_DIR: oursDir, METRICS_ENABLED: 'false' });
  const node = await startNode(theirsDir);
  return {
    ours: origin.url,
    theirs: node.url,
    oursDir,
    theirsDir,
    async close() {
      await origin.close();
      node.child.kill('SIGTERM');
      if (node.child.exitCode === null) await once(node.child, 'exit');
    },
  };
}

/** `node <build>/server/entry.mjs`: @astrojs/node standalone reads HOST and PORT from the environment. */
async function startNode(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(dir, 'server/entry.mjs')], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ASTRO_NODE_LOGGING: 'disabled' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c) => (output += c));
  child.stderr?.on('data', (c) => (output += c));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`@astrojs/node exited with ${child.exitCode}:\n${output}`);
    const up = await send(url, { path: '/robots.txt' }).then(
      () => true,
      () => false,
    );
    if (up) return { child, url };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`@astrojs/node did not listen on ${url} within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type AdapterAnswers = Record<AdapterName, Answer>;
