// Reports: markdown (printed and written) plus the raw JSON, in reports/.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, reportsDir, stamp } from './paths.ts';

/** Writes reports/<name>-<stamp>.md and .json; returns the markdown path (relative). */
export function writeReport(name: string, markdown: string, raw: unknown): string {
  const base = path.join(reportsDir(), `${name}-${stamp()}`);
  writeFileSync(`${base}.md`, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  writeFileSync(`${base}.json`, JSON.stringify(raw, null, 2));
  const relative = path.relative(ROOT, `${base}.md`);
  console.log(`report written to ${relative} (raw data: ${path.relative(ROOT, `${base}.json`)})`);
  return relative;
}

/** The caveat every absolute figure needs. */
export function machineNote(): string {
  const cpus = os.cpus();
  return (
    `Machine: ${os.availableParallelism()} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
    `Node ${process.version}. autocannon and the server(s) share these cores, so absolute figures hold for this machine ` +
    `only; compare the variants of one run side by side. Load average (1/5/15 min) at the end: ` +
    `${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}.`
  );
}
