import { describe, expect, it } from 'vitest';
import { expectGolden, run } from '../helpers/cli.js';
import { mixedFolder as folder } from '../helpers/mixed-folder.js';

/** The folder and its hand-computed allocations: test/helpers/mixed-folder.ts. */

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
