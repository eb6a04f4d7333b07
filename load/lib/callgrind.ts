// Instructions a server executes per request, counted by valgrind's callgrind. CPU time on this
// shared 2-core VM moves ±20–40 % between two closed-loop rounds of the same server; the count of
// instructions for the same work does not depend on what else the machine does. A server runs
// under callgrind for its whole life (JIT code included: valgrind re-translates code V8 writes);
// a window is: zero the counters, send a fixed number of requests, dump. Every thread is counted
// (V8's GC and compiler threads too), each in its own dump file, so the main thread is read
// apart. Instructions are not time (cache misses, the kernel's share are not in them), so this
// is a second yardstick beside CPU time, for how much work our wrapping adds, not a replacement.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { int, spread, sum, times, withRange } from './stats.ts';

const run = promisify(execFile);

/** valgrind's version line, or undefined when valgrind is not installed. */
export function valgrindVersion(): string | undefined {
  try {
    return execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** Instructions counted in one window. */
export interface Counted {
  /** Every thread. */
  total: number;
  /** The main thread (the event loop: JavaScript, the HTTP parser, syscalls' user side). */
  main: number;
}

/**
 * One process under callgrind: `wrapper` goes before node (spawnServer's `wrapper`), then
 * zero()/dump() around each measured window. Counting starts at process start; the first
 * windows include the JIT's warm-up, so warm the server before measuring.
 */
export class CallgrindCounter {
  readonly #dir: string;
  readonly #prefix: string;
  #pid = 0;

  constructor(dir: string, name: string) {
    this.#dir = dir;
    this.#prefix = name.replace(/[^\w.-]+/g, '_');
  }

  get wrapper(): string[] {
    return [
      'valgrind',
      '--tool=callgrind',
      // One dump file per thread: the main thread's count is read apart from GC and compiler threads.
      '--separate-threads=yes',
      '--dump-line=no',
      `--callgrind-out-file=${path.join(this.#dir, `${this.#prefix}.%p`)}`,
    ];
  }

  /** The process to count (the spawned child's pid: valgrind runs node in its own process). */
  attach(pid: number): void {
    this.#pid = pid;
  }

  async zero(): Promise<void> {
    await this.#control('-z');
  }

  /** Dumps the counts since the last zero() and reads them. */
  async dump(): Promise<Counted> {
    const before = new Set(this.#files());
    await this.#control('-d');
    let files = this.#files().filter((f) => !before.has(f));
    for (let waited = 0; files.length === 0 && waited < 30_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      files = this.#files().filter((f) => !before.has(f));
    }
    if (files.length === 0)
      throw new Error(
        `callgrind wrote no dump for process ${this.#pid} in ${this.#dir}: is it running under this counter's wrapper, with HOST=127.0.0.1 in its environment?`,
      );
    let total = 0;
    let main = 0;
    for (const file of files) {
      const count = totalOf(path.join(this.#dir, file));
      total += count;
      // Thread 1 is the main thread: <prefix>.<pid>.<dump>-01
      if (/-0*1$/.test(file)) main = count;
    }
    return { total, main };
  }

  #files(): string[] {
    const start = `${this.#prefix}.${this.#pid}.`;
    return readdirSync(this.#dir).filter((f) => f.startsWith(start));
  }

  async #control(flag: string): Promise<void> {
    if (!this.#pid) throw new Error('CallgrindCounter: attach(pid) first');
    // callgrind_control reaches the process through vgdb's FIFOs, named after $USER and $HOST as
    // the process saw them: the servers' environment sets HOST=127.0.0.1.
    const { stdout, stderr } = await run('callgrind_control', [flag, String(this.#pid)], {
      env: { ...process.env, HOST: '127.0.0.1' },
    });
    // It prints "OK" even when vgdb could not reach the process; vgdb's own complaint is on stderr.
    if (!/OK/.test(stdout) || /error|cannot|failed/i.test(stderr))
      throw new Error(
        `callgrind_control ${flag} ${this.#pid} did not reach the process (is HOST=127.0.0.1 in its environment?): ${stderr.trim() || stdout.trim()}`,
      );
  }
}

/** The instruction total of one callgrind dump file (its `summary:` or `totals:` line). */
export function totalOf(file: string): number {
  const m = /^(?:summary|totals):\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

/** One measured window of one server on one page. */
export interface CountedWindow {
  page: string;
  server: string;
  window: number;
  requests: number;
  counted: Counted;
}

export const INSTRUCTION_COLUMNS = [
  'page',
  'server',
  'main thread',
  '÷ bare, per window',
  'all windows: main thread ÷ bare',
  '÷ the one before',
  'all threads ÷ bare',
];

/**
 * One row a page and server: instructions per request on the main thread (median with min–max
 * over the windows) and its per-window ratio to the first server's; then, over all windows
 * together (sum of instructions ÷ sum of requests), the main thread's ratio to the first server
 * and to the server before, and every thread's ratio to the first.
 */
export function instructionRows(
  windows: readonly CountedWindow[],
  pages: ReadonlyArray<{ name: string; label: string }>,
  servers: readonly string[],
): string[][] {
  const of = (page: string, server: string) =>
    windows.filter((w) => w.page === page && w.server === server).sort((x, y) => x.window - y.window);
  const main = (w: CountedWindow) => w.counted.main / w.requests;
  const together = (ws: readonly CountedWindow[], key: keyof Counted) =>
    sum(ws.map((w) => w.counted[key])) / sum(ws.map((w) => w.requests));
  return pages.flatMap(({ name, label }) => {
    const base = of(name, servers[0]!);
    return servers.map((server, i) => {
      const ws = of(name, server);
      if (i === 0) return [label, server, withRange(spread(ws.map(main)), int), '—', '—', '—', '—'];
      const before = of(name, servers[i - 1]!);
      const pairs = ws.flatMap((w, k) => (base[k] ? [main(w) / main(base[k])] : []));
      return [
        label,
        server,
        withRange(spread(ws.map(main)), int),
        withRange(spread(pairs), times),
        times(together(ws, 'main') / together(base, 'main')),
        times(together(ws, 'main') / together(before, 'main')),
        times(together(ws, 'total') / together(base, 'total')),
      ];
    });
  });
}
