// Raw HTTP/1.1 over node:net: sends bytes exactly as written (fetch() and node:http normalise
// or refuse malformed requests before they leave the client).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  /** Status code of the first response, 0 when the server answered nothing. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Everything the server sent. */
  raw: string;
  /** The server closed the connection (FIN or RST) before our timeout. */
  closedByServer: boolean;
}

export function hostPort(url: string): { host: string; port: number } {
  const { hostname, port } = new URL(url);
  return { host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) };
}

/**
 * Opens a connection, writes `data` (or lets `drive` write), reads until the server closes or
 * `timeoutMs` passes, and parses the first response.
 */
export function rawRequest(
  url: string,
  data: string | Buffer | ((socket: Socket) => void),
  { timeoutMs = 3000 }: { timeoutMs?: number } = {},
): Promise<RawResponse> {
  const { host, port } = hostPort(url);
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => (closedByServer = true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closedByServer = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parse(Buffer.concat(chunks).toString('latin1'), closedByServer));
    });
    socket.on('connect', () => {
      if (typeof data === 'function') data(socket);
      else socket.write(data);
    });
  });
}

export function parse(raw: string, closedByServer = false): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = headEnd === -1 ? raw : raw.slice(0, headEnd);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = headEnd === -1 ? '' : raw.slice(headEnd + 4);
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status, headers, body, raw, closedByServer };
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd === -1) return out + rest;
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!size) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** A GET request head with Host and Connection: close; `extra` is raw header lines ending in \r\n. */
export function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`;
}

/** The server answers a normal request normally: it survived whatever came before. */
export async function assertServing(url: string, { alive }: { alive?: () => boolean } = {}): Promise<void> {
  if (alive) assert.ok(alive(), 'the origin process is still running');
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200, '/healthz answers 200');
  const page = await fetch(`${url}/docs/`);
  assert.equal(page.status, 200, 'a normal page still renders');
  assert.match(await page.text(), /<html/);
}
