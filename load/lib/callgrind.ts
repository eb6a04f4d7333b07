// Instructions a server executes per request, counted by valgrind's callgrind. CPU time on this
// shared 2-core VM moves ±20–40 % between two closed-loop rounds of the same server; the count of
// instructions for the same work does not depend on what else the machine does. A server runs
// under callgrind for its whole life (JIT code included: valgrind re-translates code V8 writes);
// a window is: zero the counters, send a fixed number of requests, dump. Every thread is counted
// (V8's GC and compiler threads too), each in its own dump file, so the main thread is read
// apart. Instructions are not time (cache misses, the kernel's share are not in them), so this
// is a second yardstick beside CPU time, for how much work our wrapping adds, not a replacement.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
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
  /** By kind of code (`kinds: true`): the main thread's, and every thread's. */
  kinds?: { main: KindCounts; all: KindCounts };
  /** The main thread's own instructions by function (`functions: true`), JavaScript named from V8's perf map. */
  functions?: Map<string, number>;
}

/**
 * Node flags for `functions`: V8 writes /tmp/perf-<pid>.map, and interpreted functions get code
 * of their own to be named by. `--perf-basic-prof` also turns on V8's log, which would land as
 * isolate-*.log in the server's working directory (the checkout): it goes to /tmp instead.
 */
export const PERF_MAP_NODE_ARGS = [
  '--perf-basic-prof',
  '--interpreted-frames-native-stack',
  '--logfile=/tmp/v8-%p.log',
  '--no-logfile-per-isolate',
];

/**
 * What executed the instructions, told from the function names in the dump (node ships its
 * symbols). `JIT code` is what V8 compiled from JavaScript (no symbol); `builtins` are V8's
 * precompiled builtins (the interpreter's bytecode handlers, inline caches, Promise, string
 * and array operations: JavaScript's work too); `GC` is V8's heap (allocation slow paths,
 * scavenges, marking, sweeping, write barriers); `compiler` parses and compiles JavaScript;
 * `V8 runtime` is the rest of V8; `Node C++` is Node, libuv, llhttp and their libraries inside
 * the node binary; `libraries` is libc, the kernel's vDSO and the rest outside it.
 */
export const KINDS = ['JIT code', 'builtins', 'GC', 'compiler', 'V8 runtime', 'Node C++', 'libraries'] as const;
export type Kind = (typeof KINDS)[number];
export type KindCounts = Record<Kind, number>;

// Classes and namespaces of v8::internal that belong to the heap and its collectors.
const GC_CLASS =
  /^(?:heap|Heap$|HeapAllocator|HeapLayout|HeapVerifier|Scaveng|Mark|Minor|Major|Incremental|Concurrent|Sweep|Evacuat|Compact|RecordMigrated|LiveObject|PointersUpdat|Updat.*Slot|.*Space$|.*Page|MemoryAllocator|MemoryChunk|MemoryReducer|MemoryBalancer|.*Slot|RememberedSet|Ephemeron|Weak|GC|Gc|Safepoint|LocalHeap|LocalAllocat|MainAllocator|LinearAllocation|.*Allocat.*Observer|ObjectStats|Pretenuring|ArrayBufferSweeper|ArrayBufferList|ExternalPointer|.*Barrier|.*Visitor|BodyDescriptor|FreeList|Free[A-Z]|StressScavenge|ScavengeJob|Collection|HeapObjectIterator|EmbedderStack|ManualGCScope|CodeFlush|MarkBit|Unified|CppHeap|TracedHandles|GlobalHandles)/;
const COMPILER_CLASS =
  /^(?:compiler|maglev|baseline|interpreter|wasm|turboshaft|Compiler|Parser|PreParser|Scanner|Ast|BytecodeGenerator|Optimiz|Zone|Assembler|MacroAssembler|CodeGenerator|Deoptimiz|Lazy.*Compile|BackgroundCompile|Script.*Compile|Func.*Literal|Scope|DeclarationScope|Variable)/;

/** The qualified name of a C++ function as callgrind prints it, without return type, templates or arguments. */
function qualifiedName(fn: string): string {
  let name = fn.replaceAll('(anonymous namespace)', 'anon');
  // Template arguments, innermost first.
  for (let before = ''; before !== name; ) {
    before = name;
    name = name.replace(/<[^<>]*>/g, '');
  }
  const paren = name.indexOf('(');
  if (paren >= 0) name = name.slice(0, paren);
  return name.trim().split(' ').pop() ?? '';
}

export function kindOf(fn: string, object: string): Kind {
  if (object === '???' || (object === '' && /^0x[0-9a-f]+/.test(fn))) return 'JIT code';
  if (!/\/bin\/node$/.test(object)) return 'libraries';
  if (/^Builtins_(?:RecordWrite|EphemeronKeyBarrier|IndirectPointerBarrier)/.test(fn)) return 'GC';
  if (fn.startsWith('Builtins_')) return 'builtins';
  const name = qualifiedName(fn);
  if (name.startsWith('heap::') || name.startsWith('cppgc::')) return 'GC';
  // Sizes and root caches walked by the collectors (and little else).
  if (/::(?:HeapObject::SizeFromMap|anon::IterateObjectCache)$/.test(name)) return 'GC';
  const v8 = /^v8::internal::(?:anon::)?([^:]+)(?:::|$)/.exec(name);
  if (v8) {
    const cls = v8[1]!;
    // The compiler's first: its AST visitors are not the collector's.
    if (COMPILER_CLASS.test(cls)) return 'compiler';
    if (GC_CLASS.test(cls)) return 'GC';
    return 'V8 runtime';
  }
  if (name.startsWith('v8::') || name.startsWith('v8_inspector::')) return 'V8 runtime';
  return 'Node C++';
}

export function noKinds(): KindCounts {
  return Object.fromEntries(KINDS.map((k) => [k, 0])) as KindCounts;
}

/** Code V8 compiled, by start address, from its perf map (`--perf-basic-prof`): [start, size, name]. */
export type PerfMap = ReadonlyArray<readonly [number, number, string]>;

/** The perf map V8 writes for process `pid` (/tmp/perf-<pid>.map), sorted by address; empty if none. */
export function readPerfMap(pid: number): PerfMap {
  let text: string;
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, 'utf8');
  } catch {
    return [];
  }
  const rows: Array<[number, number, string]> = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(' ');
    const second = line.indexOf(' ', first + 1);
    if (second < 0) continue;
    rows.push([
      Number.parseInt(line.slice(0, first), 16),
      Number.parseInt(line.slice(first + 1, second), 16),
      line.slice(second + 1),
    ]);
  }
  return rows.sort((a, b) => a[0] - b[0]);
}

/**
 * The JavaScript function whose compiled code holds `address`: "JS name file:line", with V8's
 * tier mark (*, ~, ^, +) and the checkout's path dropped so that tiers and processes add up.
 * Code can be freed and its address reused: the entries just before the address are searched
 * for one that covers it.
 */
export function jsFunctionAt(map: PerfMap, address: number): string | undefined {
  let lo = 0;
  let hi = map.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid]![0] <= address) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = at; i >= 0 && i > at - 64; i--) {
    const [start, size, name] = map[i]!;
    if (address < start + size) return `JS ${tidyJsName(name)}`;
  }
  return undefined;
}

const CHECKOUT = `${path.resolve(import.meta.dirname, '..', '..')}/`;
function tidyJsName(name: string): string {
  return name
    .replace(/^(?:JS:|LazyCompile:|Function:)?[*~^+]?/, '')
    .replaceAll(`file://${CHECKOUT}`, '')
    .replaceAll(CHECKOUT, '')
    .replace(/(?:^|\s)\S*node_modules\//g, (m) => `${m.startsWith(' ') ? ' ' : ''}`);
}

export interface DumpContents {
  kinds: KindCounts;
  /** Own instructions by function, when asked for. */
  functions?: Map<string, number>;
}

/**
 * Self instructions of one callgrind dump file by kind and, with `functions`, by function (JIT
 * code named through `perfMap`). The format compresses names (`fn=(12) name` once, `fn=(12)`
 * after; `cfn=`/`cob=` define them too) and follows each `calls=` line with the callee's
 * inclusive cost, which is not the caller's own and is skipped.
 */
export function readDump(file: string, { functions = false, perfMap = [] as PerfMap } = {}): DumpContents {
  const counts = noKinds();
  const byFunction = functions ? new Map<string, number>() : undefined;
  const names = { ob: new Map<string, string>(), fn: new Map<string, string>() };
  const memo = new Map<string, { kind: Kind; label: string }>();
  let ob = '';
  let fn = '';
  let current = { kind: 'Node C++' as Kind, label: '' };
  let afterCalls = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const c = line.charCodeAt(0);
    // A cost line: position (a number, or +n, -n, *) then the Ir count.
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      if (afterCalls) afterCalls = false;
      else {
        const cost = Number(line.slice(line.lastIndexOf(' ') + 1));
        counts[current.kind] += cost;
        if (byFunction) byFunction.set(current.label, (byFunction.get(current.label) ?? 0) + cost);
      }
      continue;
    }
    const m = /^(c?ob|c?fn|calls)=(?:\((\d+)\))?\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, id, given] = m;
    if (key === 'calls') {
      afterCalls = true;
      continue;
    }
    const table = key!.endsWith('ob') ? names.ob : names.fn;
    let value = given ?? '';
    if (id !== undefined) {
      if (value) table.set(id, value);
      else value = table.get(id) ?? '';
    }
    if (key === 'ob') ob = value;
    else if (key === 'fn') fn = value;
    else continue;
    const memoKey = `${ob}\t${fn}`;
    let known = memo.get(memoKey);
    if (known === undefined) {
      const kind = kindOf(fn, ob);
      let label = fn.replace(/'\d+$/, '');
      if (byFunction && kind === 'JIT code')
        label = jsFunctionAt(perfMap, Number.parseInt(label, 16)) ?? 'JIT code (not in the perf map)';
      known = { kind, label };
      memo.set(memoKey, known);
    }
    current = known;
  }
  return byFunction ? { kinds: counts, functions: byFunction } : { kinds: counts };
}

/** Self instructions of one callgrind dump file by kind (readDump). */
export function kindsOf(file: string): KindCounts {
  return readDump(file).kinds;
}

/**
 * One process under callgrind: `wrapper` goes before node (spawnServer's `wrapper`), then
 * zero()/dump() around each measured window. Counting starts at process start; the first
 * windows include the JIT's warm-up, so warm the server before measuring.
 */
export class CallgrindCounter {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #kinds: boolean;
  readonly #functions: boolean;
  #pid = 0;

  /**
   * `kinds`: also read each dump by kind of code (Counted.kinds; a few seconds a dump).
   * `functions`: and the main thread by function (Counted.functions), JavaScript named from V8's
   * perf map: run node with PERF_MAP_NODE_ARGS.
   */
  constructor(dir: string, name: string, { kinds = false, functions = false } = {}) {
    this.#dir = dir;
    this.#prefix = name.replace(/[^\w.-]+/g, '_');
    this.#kinds = kinds || functions;
    this.#functions = functions;
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
    const kinds = this.#kinds ? { main: noKinds(), all: noKinds() } : undefined;
    let functions: Map<string, number> | undefined;
    // Read now: V8 appends to it as it compiles.
    const perfMap = this.#functions ? readPerfMap(this.#pid) : [];
    for (const file of files) {
      const full = path.join(this.#dir, file);
      const count = totalOf(full);
      total += count;
      // Thread 1 is the main thread: <prefix>.<pid>.<dump>-01
      const isMain = /-0*1$/.test(file);
      if (isMain) main = count;
      if (kinds) {
        const contents = readDump(full, { functions: isMain && this.#functions, perfMap });
        for (const k of KINDS) {
          kinds.all[k] += contents.kinds[k];
          if (isMain) kinds.main[k] += contents.kinds[k];
        }
        if (contents.functions) functions = contents.functions;
      }
    }
    return { total, main, ...(kinds ? { kinds } : {}), ...(functions ? { functions } : {}) };
  }

  /** Removes the perf map and the log V8 wrote for the process (`functions`), once it has exited. */
  removePerfMap(): void {
    if (!this.#pid) return;
    rmSync(`/tmp/perf-${this.#pid}.map`, { force: true });
    rmSync(`/tmp/v8-${this.#pid}.log`, { force: true });
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

/**
 * The instruction total of one callgrind dump file: its `totals:` line, the sum of the costs in
 * the file, which kindsOf() splits (a dump made while the process runs has a `summary:` line
 * that can differ by ~0.1 %), else its `summary:` line.
 */
export function totalOf(file: string): number {
  const text = readFileSync(file, 'utf8');
  const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
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
  const together = (ws: readonly CountedWindow[], key: 'main' | 'total') =>
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

export const KIND_COLUMNS = [
  'page',
  'server',
  ...KINDS.map((k) => `main: ${k}`),
  'all threads: GC',
  'all threads: compiler',
];

/**
 * One row a page and server: instructions per request by kind of code over all windows
 * together (sum ÷ sum of requests), the main thread's for every kind, then every thread's GC
 * and compiler (V8 runs both partly on threads of their own).
 */
export function kindRows(
  windows: readonly CountedWindow[],
  pages: ReadonlyArray<{ name: string; label: string }>,
  servers: readonly string[],
): string[][] {
  return pages.flatMap(({ name, label }) =>
    servers.flatMap((server) => {
      const ws = windows.filter((w) => w.page === name && w.server === server && w.counted.kinds);
      if (ws.length === 0) return [];
      const requests = sum(ws.map((w) => w.requests));
      const per = (pick: (w: CountedWindow) => number) => int(sum(ws.map(pick)) / requests);
      return [
        [
          label,
          server,
          ...KINDS.map((k) => per((w) => w.counted.kinds!.main[k])),
          per((w) => w.counted.kinds!.all.GC),
          per((w) => w.counted.kinds!.all.compiler),
        ],
      ];
    }),
  );
}

/**
 * The functions whose main-thread instructions per request differ most between the last
 * server and the first (ours and bare), over all windows together: name, kind, each server's
 * per request, and the difference.
 */
export function functionRows(
  windows: readonly CountedWindow[],
  page: string,
  servers: readonly string[],
  top: number,
): { columns: string[]; rows: string[][] } {
  const per = new Map<string, Map<string, number>>();
  for (const server of servers) {
    const ws = windows.filter((w) => w.page === page && w.server === server && w.counted.functions);
    const requests = sum(ws.map((w) => w.requests));
    const totals = new Map<string, number>();
    for (const w of ws)
      for (const [name, count] of w.counted.functions!) totals.set(name, (totals.get(name) ?? 0) + count / requests);
    per.set(server, totals);
  }
  const first = per.get(servers[0]!) ?? new Map<string, number>();
  const last = per.get(servers.at(-1)!) ?? new Map<string, number>();
  const names = new Set([...first.keys(), ...last.keys()]);
  const difference = (name: string) => (last.get(name) ?? 0) - (first.get(name) ?? 0);
  const chosen = [...names].sort((a, b) => Math.abs(difference(b)) - Math.abs(difference(a))).slice(0, top);
  const kind = (name: string) =>
    name.startsWith('JS ') || name.startsWith('JIT ') ? 'JIT code' : kindOf(name, '/bin/node');
  return {
    columns: ['function', 'kind', ...servers, `${servers.at(-1)} − ${servers[0]}`],
    rows: chosen.map((name) => [
      `\`${(name.length > 110 ? `${name.slice(0, 107)}…` : name).replaceAll('|', '\\|')}\``,
      kind(name),
      ...servers.map((s) => int(per.get(s)?.get(name) ?? 0)),
      (difference(name) > 0 ? '+' : '') + int(difference(name)),
    ]),
  };
}
