// WORKERS=auto under a container CPU limit: the quota is read from fake cgroup trees (v2
// cpu.max, v1 cfs files), so every case runs on any machine, limited or not.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, workerCount } from '../src/config.ts';
import { availableCpus, cgroupCpuLimit } from '../src/cpu-quota.ts';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A fake /sys/fs/cgroup holding `files` (path relative to it → content). */
function cgroup(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'astro-origin-cgroup-'));
  roots.push(root);
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), `${content}\n`);
  }
  return root;
}

const v1 = (quota: string, period = '100000', controller = 'cpu') =>
  cgroup({ [`${controller}/cpu.cfs_quota_us`]: quota, [`${controller}/cpu.cfs_period_us`]: period });

describe('cgroup v2 (cpu.max)', () => {
  test('"max 100000": no limit, every core counts', () => {
    const root = cgroup({ 'cpu.max': 'max 100000' });
    assert.equal(cgroupCpuLimit(root), undefined);
    assert.equal(availableCpus(root, 8), 8);
  });

  test('"150000 100000": 1.5 CPUs, rounded up to 2', () => {
    const root = cgroup({ 'cpu.max': '150000 100000' });
    assert.equal(cgroupCpuLimit(root), 1.5);
    assert.equal(availableCpus(root, 64), 2);
  });

  test('"200000 100000": 2 CPUs out of 64 cores', () => {
    assert.equal(availableCpus(cgroup({ 'cpu.max': '200000 100000' }), 64), 2);
  });

  test('less than one CPU still runs one process', () => {
    assert.equal(availableCpus(cgroup({ 'cpu.max': '50000 100000' }), 8), 1);
  });

  test('a quota above the cores the process may run on is capped by them', () => {
    assert.equal(availableCpus(cgroup({ 'cpu.max': '800000 100000' }), 2), 2);
  });
});

describe('cgroup v1 (cpu.cfs_quota_us / cpu.cfs_period_us)', () => {
  test('a quota of 3 CPUs', () => {
    const root = v1('300000');
    assert.equal(cgroupCpuLimit(root), 3);
    assert.equal(availableCpus(root, 16), 3);
  });

  test('a 50 ms period', () => {
    assert.equal(availableCpus(v1('125000', '50000'), 16), 3);
  });

  test('cpu and cpuacct mounted together (cpu,cpuacct/)', () => {
    assert.equal(availableCpus(v1('100000', '100000', 'cpu,cpuacct'), 16), 1);
  });

  test('-1: no limit', () => {
    const root = v1('-1');
    assert.equal(cgroupCpuLimit(root), undefined);
    assert.equal(availableCpus(root, 6), 6);
  });
});

describe('no readable limit: the cores count', () => {
  test('no cgroup files at all', () => {
    assert.equal(availableCpus(cgroup({}), 4), 4);
    assert.equal(availableCpus(path.join(tmpdir(), 'astro-origin-no-such-cgroup'), 4), 4);
  });

  test('a quota without its period, or content that is not numbers', () => {
    assert.equal(availableCpus(cgroup({ 'cpu/cpu.cfs_quota_us': '200000' }), 4), 4);
    assert.equal(availableCpus(cgroup({ 'cpu.max': 'garbage' }), 4), 4);
    assert.equal(availableCpus(cgroup({ 'cpu.max': '200000 0' }), 4), 4);
  });

  test('never fewer than one', () => {
    assert.equal(availableCpus(cgroup({}), 0), 1);
  });
});

describe('WORKERS', () => {
  const limited = () => cgroup({ 'cpu.max': '200000 100000' });

  test('auto: one worker per CPU of the container limit, not per core of the node', () => {
    assert.equal(workerCount(loadConfig({ WORKERS: 'auto' }), 32, limited()), 2);
    assert.equal(workerCount(loadConfig({ WORKERS: 'auto' }), 32, cgroup({ 'cpu.max': 'max 100000' })), 32);
  });

  test('a number is taken as given, limit or not', () => {
    assert.equal(workerCount(loadConfig({ WORKERS: '3' }), 32, limited()), 3);
    assert.equal(workerCount(loadConfig({}), 32, limited()), 1);
  });
});
