import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { expectGolden, run, tempDir } from '../helpers/cli.js';

/**
 * A folder that moves from AI4OS files to native ones, with a gzip file, a sub-folder and a
 * failed scope. Hand-computed: allocation A (2 cores, 1 GPU) runs 2024-09-01 01:00 → 10:00,
 * seen first in an AI4OS file and then in native files; B (4 cores) runs in namespace
 * "beta" from 02:00 and is still running when the capture of "beta" fails at 12:00.
 */

const legacy = {
  alpha: [
    {
      job_ID: 'job-a', name: 'module-job-a', status: 'running', owner: 'alice', alloc_ID: 'alloc-a',
      alloc_start: '2024-09-01T01:00:00.000000000Z', alloc_end: null,
      resources: { cpu_num: 2, cpu_MHz: 5000, gpu_num: 1, memory_MB: 4096, disk_MB: 1024 },
    },
  ],
  beta: [],
};

const res = (cores: number, gpu: number) => ({ cpu_cores: cores, cpu_mhz: cores * 2500, memory_mib: 4096, disk_mib: 1024, gpu });
const alloc = (id: string, ns: string, user: string, status: string, start: string, end: string | null, cores: number, gpu: number) => ({
  id, namespace: ns, job_id: `job-${id.slice(-1)}`, job_name: null, user, group: ns === 'alpha' ? 'physics' : 'chemistry', component: null,
  node: 'n1', status, created: null, start, end, modified: null, resources: res(cores, gpu),
});
const native = (at: string, namespaces: string[], failed: { namespace: string; reason: string }[], allocations: unknown[]) => ({
  format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
  source: { kind: 'nomad', address: 'https://nomad.example:4646', region: 'global' },
  scope: { requested: ['*'], namespaces, failed }, allocations, queued: [],
});

function folder(): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(join(dir, '2024'), { recursive: true });
  writeFileSync(join(dir, '2024-09-01T00:00:00.json'), JSON.stringify({ alpha: [], beta: [] }));
  writeFileSync(join(dir, '2024-09-01T03:00:00.json'), JSON.stringify(legacy));
  writeFileSync(
    join(dir, '2024', '2024-09-01T06:00:00Z.json.gz'),
    gzipSync(JSON.stringify(native('2024-09-01T06:00:00Z', ['alpha', 'beta'], [], [
      alloc('alloc-a', 'alpha', 'alice', 'running', '2024-09-01T01:00:00Z', null, 2, 1),
      alloc('alloc-b', 'beta', 'bob', 'running', '2024-09-01T02:00:00Z', null, 4, 0),
    ]))),
  );
  writeFileSync(
    join(dir, '2024-09-01T12:00:00Z.json'),
    JSON.stringify(native('2024-09-01T12:00:00Z', ['alpha'], [{ namespace: 'beta', reason: 'HTTP 403: permission denied' }], [
      alloc('alloc-a', 'alpha', 'alice', 'complete', '2024-09-01T01:00:00Z', '2024-09-01T10:00:00Z', 2, 1),
    ])),
  );
  return cwd;
}

describe('a folder mixing AI4OS and native files', () => {
  it('continues the same allocation across formats, reads .json.gz and sub-folders, and reports the failed scope', () => {
    const cwd = folder();
    const r = run(['stats', '--by', 'namespace,user', '-o', 'json'], { cwd });
    // Snapshots at 00:00, 03:00, 06:00 and 12:00 (max gap 3 x 3 h): the 12 h after are unknown.
    expect(r.stderr).toBe('hourmeter: warning: no snapshot after 2024-09-01T12:00:00Z: 12 of 24 h are unknown, not zero\n');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    // A: 9 h once (not twice). B: from 02:00, last seen holding at 06:00; the 12:00 snapshot
    // does not cover "beta", so B is open at 06:00: 4 h.
    expect(j.rows.map((x: Record<string, unknown>) => [x.namespace, x.user, x.cpu_hours, x.gpu_hours, x.allocations])).toEqual([
      ['alpha', 'alice', 18, 9, 1],
      ['beta', 'bob', 16, 0, 1],
    ]);
    expect(j.total).toMatchObject({ cpu_hours: 34, gpu_hours: 9, memory_gib_hours: 52, disk_gib_hours: 13, jobs: 2, users: 2, allocations: 2 });
    expect(j.diagnostics).toMatchObject({ snapshots: 4, largest_gap_hours: 6, open: 1, vanished: 0 });
    expect(j.diagnostics.failed_scopes).toEqual([{ namespace: 'beta', reason: 'HTTP 403: permission denied', snapshots: 1 }]);
  });

  it('groups by group, and prints the failed scope under the table', () => {
    const cwd = folder();
    const byGroup = JSON.parse(run(['stats', '--by', 'group', '-o', 'json'], { cwd }).stdout);
    // The AI4OS file has no groups, but the allocation's later native records do.
    expect(byGroup.rows.map((x: Record<string, unknown>) => [x.group, x.cpu_hours])).toEqual([
      ['chemistry', 16],
      ['physics', 18],
    ]);
    const r = run(['stats', '--by', 'group'], { cwd });
    expect(r.code).toBe(0);
    expectGolden('stats --by group (mixed folder)', r.stdout);
    expect(r.stdout).toContain('Failed scopes: beta in 1 snapshot (HTTP 403: permission denied)');
  });
});
