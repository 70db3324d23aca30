import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/** Quota decisions that no reading path, instant, stale history or user name can bend. */

const quota = (cwd: string, args: string[], now = QUOTA_NOW) => run(['quota', ...args, '--now', now], { cwd });

describe('quota --no-index', () => {
  it('check, show and report read the same usage from the files as from the index', () => {
    const cwd = quotaFolder();
    const cases = [
      ['check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2', '-o', 'json'],
      ['check', '--user', 'bob', '--request', 'gpu=1', '--hours', '3', '-o', 'json'],
      ['show', '--user', 'bob', '-o', 'json'],
      ['report', '-o', 'csv'],
    ];
    for (const args of cases) {
      const files = quota(cwd, [...args, '--no-index']);
      const index = quota(cwd, args);
      expect(files.stdout).toBe(index.stdout);
      expect(files.code).toBe(index.code);
    }
    // The hand-computed numbers, read from the files.
    const alice = JSON.parse(quota(cwd, [...cases[0]!, '--no-index']).stdout) as { decision: string; policies: unknown[] };
    expect(alice).toMatchObject({ decision: 'denied', policies: [{ used: 24, requested: 8, limit: 30, allowed: false }] });
    const bob = JSON.parse(quota(cwd, ['show', '--user', 'bob', '-o', 'json', '--no-index']).stdout) as { policies: unknown[] };
    expect(bob.policies).toEqual([expect.objectContaining({ resource: 'gpu', used: 18, limit: 20, remaining: 2, percent: 90 })]);
    expect(quota(cwd, ['report', '-o', 'csv', '--no-index']).stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'bob,gpu,gpu,1d,GPU-hours,18.00,20.00,2.00,90.00,policies,gpu-hours\n' +
        'alice,regular,memory,1d,GiB-hours,24.00,30.00,6.00,80.00,policies,regular-memory\n' +
        'carol,,cpu,1d,CPU-hours,0.00,1.00,1.00,0.00,default,default cpu/1d\n',
    );
  });
});
