// How many CPUs a container may use, from its cgroup's CPU quota: what WORKERS=auto forks.
// os.availableParallelism() counts the cores the process may be scheduled on (its affinity),
// which under a Kubernetes or Docker CPU limit are the node's cores: 2 CPUs of quota on a
// 64-core node would fork 64 workers, each throttled to a sliver. Node 22's libuv caps it by
// the quota in some cases only (cgroup v2 quotas of one CPU or more, rounded down; v1 only
// where cpu and cpuacct are mounted together), so the quota is read here.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';

/** Where a container sees its own cgroup (cgroup namespace on v2; the controllers' mounts on v1). */
export const CGROUP_ROOT = '/sys/fs/cgroup';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function ratio(quota: number, period: number): number | undefined {
  return Number.isFinite(quota) && Number.isFinite(period) && quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * The CPU limit of the cgroup mounted at `root`, in CPUs (150000 µs per 100000 µs = 1.5), or
 * undefined when there is none (`max`, -1) or it cannot be read.
 * cgroup v2: `cpu.max` ("<quota|max> <period>"); v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us`
 * under the cpu controller's mount (`cpu/` or `cpu,cpuacct/`).
 */
export function cgroupCpuLimit(root: string = CGROUP_ROOT): number | undefined {
  const v2 = read(path.join(root, 'cpu.max'));
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    return quota === 'max' ? undefined : ratio(Number(quota), Number(period));
  }
  for (const controller of ['cpu', 'cpu,cpuacct']) {
    const quota = read(path.join(root, controller, 'cpu.cfs_quota_us'));
    const period = read(path.join(root, controller, 'cpu.cfs_period_us'));
    if (quota !== undefined && period !== undefined) return ratio(Number(quota), Number(period));
  }
  return undefined;
}

/**
 * CPUs this process can keep busy: the cgroup CPU limit rounded up (with 1.5 CPUs, one process
 * would leave half a CPU unused), never more than `cores` (os.availableParallelism(): the cores it
 * may run on), never less than 1. Where libuv has already rounded the limit down into `cores`
 * (cgroup v2, limits of one CPU or more), that smaller count wins.
 */
export function availableCpus(root: string = CGROUP_ROOT, cores: number = availableParallelism()): number {
  const limit = cgroupCpuLimit(root);
  const cpus = limit === undefined ? cores : Math.min(Math.ceil(limit), cores);
  return Math.max(1, Math.floor(cpus));
}
