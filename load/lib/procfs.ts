// Peak RSS straight from the kernel (Linux /proc), for any server process, ours or not.
import { readFileSync, writeFileSync } from 'node:fs';

/** VmHWM: the process's peak resident set size, in bytes (NaN when unreadable). */
export function peakRssBytes(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Resets VmHWM to the current RSS (clear_refs 5), so the next peak is per measurement. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
