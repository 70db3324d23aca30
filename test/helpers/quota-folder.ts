import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cli.js';
import { hubSnapshot } from './monthly-folder.js';

/**
 * A hand-computed folder for quota checks (UTC), with now = 2024-10-02T00:00:00Z and 1d
 * windows, i.e. [10-01 00:00, 10-02 00:00):
 * - alice, a1: 2 cores, 4 GiB, 2024-09-30 12:00 → 10-01 06:00. 18 h, of which 6 h lie in
 *   the window: 24 GiB-hours, 12 CPU-hours.
 * - bob, b1: 1 core, 1 GPU, 8 GiB, from 10-01 05:00, still running at the latest snapshot,
 *   10-01 23:00: 18 h counted, 18 GPU-hours, 144 GiB-hours, 18 CPU-hours.
 * - userdb: carol, in no group (the file's default applies), and alice in "ignored" (the
 *   file's groups: take precedence).
 */
export const QUOTA_NOW = '2024-10-02T00:00:00Z';

export const QUOTA_FILE = `# quotas for the test hub
stale_after: 2h
failure: closed
contact: "Ask for more in #hub-help."
groups:
  regular: [alice]
  gpu: [bob]
policies:
  - name: regular-memory
    resource: memory
    limit: 30 GiB-hours
    window: 1d
    scope: groups
    groups: [regular]
  - name: gpu-hours
    resource: gpu
    limit: 20 GPU-hours
    window: 1d
    scope: groups
    groups: [gpu]
default:
  - { resource: cpu, limit: 1 CPU-hours, window: 1d }
`;

const GIB = 1024;
const alloc = (id: string, user: string, status: string, start: string, end: string | null, cores: number, gpu: number, memGiB: number) => ({
  id, namespace: 'hub', job_id: `job-${id}`, job_name: `nb-${id}`, user, group: null, component: 'jupyter',
  node: 'n1', status, created: null, start, end, modified: null,
  resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: memGiB * GIB, disk_mib: 0, gpu },
});

export function quotaFolder(): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(dir);
  const a1 = (status: string, end: string | null) => alloc('a1', 'alice', status, '2024-09-30T12:00:00Z', end, 2, 0, 4);
  const b1 = alloc('b1', 'bob', 'running', '2024-10-01T05:00:00Z', null, 1, 1, 8);
  const files: [string, unknown[]][] = [
    ['2024-10-01T00:00:00Z', [a1('running', null)]],
    ['2024-10-01T06:00:00Z', [a1('complete', '2024-10-01T06:00:00Z'), b1]],
    ['2024-10-01T23:00:00Z', [b1]],
  ];
  for (const [at, allocations] of files) writeFileSync(join(dir, `${at}.json`), JSON.stringify(hubSnapshot(at, allocations)));
  writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE);
  mkdirSync(join(cwd, 'userdb'));
  const user = (groups: string[]) => ({ name: null, email: null, first_seen: null, last_seen: null, groups });
  writeFileSync(join(cwd, 'userdb', 'users.json'), JSON.stringify({ alice: user(['ignored']), carol: user([]) }));
  return cwd;
}
