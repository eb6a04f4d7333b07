import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (load/lib/../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where scenarios write reports, server logs and CPU profiles (gitignored). */
export const REPORTS_DIR = path.join(ROOT, 'reports');

/** A directory under reports/, created if missing. */
export function reportsDir(...parts: string[]): string {
  const dir = path.join(REPORTS_DIR, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** 2026-11-26T23-40-05: a timestamp usable in file names. */
export function stamp(date = new Date()): string {
  return date.toISOString().slice(0, 19).replace(/:/g, '-');
}
