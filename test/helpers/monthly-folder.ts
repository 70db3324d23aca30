import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cli.js';

/**
 * A folder of hand-computed native snapshots (UTC), for monthly reports and the API:
 * - A: jupyter / phusers / foo, 2 cores, 1 GPU, 4 GiB, 2024-08-31 12:00 → 09-01 12:00
 *   (12 h in August, 12 h in September);
 * - C: jupyter / phusers / foo, 4 cores, 1 GiB, 09-10 00:00 → 06:00 (6 h in September);
 * - B: deployment / phusers / no user, 1 core, 2 GiB, from 09-30 00:00, still running at
 *   the last snapshot, 10-01 12:00 (24 h in September, 12 h in October, counted up to it).
 */
const GIB = 1024;
const alloc = (id: string, component: string, user: string | null, status: string, start: string, end: string | null, cores: number, gpu: number, memGiB: number) => ({
  id, namespace: 'hub', job_id: `job-${id}`, job_name: `${component}-${id}`, user, group: 'phusers', component,
  node: 'n1', status, created: null, start, end, modified: null,
  resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: memGiB * GIB, disk_mib: 0, gpu },
});
/** A native snapshot of the namespace `hub`, captured at `at`. */
export const hubSnapshot = (at: string, allocations: unknown[]) => ({
  format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
  source: { kind: 'nomad', address: null, region: null },
  scope: { requested: ['*'], namespaces: ['hub'], failed: [] }, allocations, queued: [],
});

export function monthlyFolder(): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(dir);
  const a = (status: string, end: string | null) => alloc('a', 'jupyter', 'foo', status, '2024-08-31T12:00:00Z', end, 2, 1, 4);
  const files: [string, unknown[]][] = [
    ['2024-08-31T18:00:00Z', [a('running', null)]],
    ['2024-09-01T06:00:00Z', [a('running', null)]],
    ['2024-09-15T00:00:00Z', [a('complete', '2024-09-01T12:00:00Z'), alloc('c', 'jupyter', 'foo', 'complete', '2024-09-10T00:00:00Z', '2024-09-10T06:00:00Z', 4, 0, 1)]],
    ['2024-10-01T12:00:00Z', [alloc('b', 'deployment', null, 'running', '2024-09-30T00:00:00Z', null, 1, 0, 2)]],
  ];
  for (const [at, allocations] of files) writeFileSync(join(dir, `${at}.json`), JSON.stringify(hubSnapshot(at, allocations)));
  return cwd;
}

