import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { QUOTA_FILE, QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/** `hourmeter quota` as a process, on the hand-computed folder of test/helpers/quota-folder.ts. */

const quota = (cwd: string, args: string[], now = QUOTA_NOW) => run(['quota', ...args, '--now', now], { cwd });
const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown> & { policies: Record<string, unknown>[] };

describe('hourmeter quota check', () => {
  it('denies a request that would exceed the limit: exit 1, the decision on stdout, the message for the user', () => {
    const cwd = quotaFolder();
    // alice: 24 GiB-hours used in the window, + 4 GiB x 2 h = 32 > 30; frees up at 00:30.
    const r = quota(cwd, ['check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('hourmeter: quota check: alice denied: quota exceeded: memory over 1d\n');
    expect(r.stdout).toBe(
      [
        'alice: DENIED: quota exceeded: memory over 1d',
        'groups: regular (from file); latest snapshot 2024-10-01T23:00:00Z (1h 0m old, stale after 2h); now 2024-10-02T00:00:00Z',
        'request: memory 4 GiB for 2 h',
        '┌──────────┬────────┬───────┬───────┬───────────┬───────────┬───────────┬────────┬─────────┬──────────────────────┬────────────────┐',
        '│ Resource │ Window │  Used │ Limit │ Unit      │ Requested │ Remaining │ % used │ Allowed │ Frees up at          │ Policies       │',
        '├──────────┼────────┼───────┼───────┼───────────┼───────────┼───────────┼────────┼─────────┼──────────────────────┼────────────────┤',
        '│ memory   │ 1d     │ 24.00 │ 30.00 │ GiB-hours │      8.00 │      6.00 │  80.0% │ no      │ 2024-10-02T00:30:00Z │ regular-memory │',
        '└──────────┴────────┴───────┴───────┴───────────┴───────────┴───────────┴────────┴─────────┴──────────────────────┴────────────────┘',
        'Quota exceeded for alice: memory over the last 1d: used 24.00 of 30.00 GiB-hours, this request needs 8.00 more: 2.00 GiB-hours over; it frees up at 2024-10-02T00:30:00Z (in 30m). Ask for more in #hub-help.',
        '',
      ].join('\n'),
    );
  });

  it('allows a request that fits, and one that reaches the limit exactly: exit 0', () => {
    const cwd = quotaFolder();
    const fits = quota(cwd, ['check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '1', '-o', 'json']);
    expect(fits.code).toBe(0);
    expect(json(fits.stdout)).toMatchObject({ decision: 'allowed', exit_code: 0, message: null, policies: [{ used: 24, requested: 4, limit: 30, allowed: true }] });
    // bob: 18 GPU-hours (open since 05:00, counted to the 23:00 snapshot) + 1 GPU x 2 h = 20 = the limit.
    const exact = quota(cwd, ['check', '--user', 'bob', '--request', 'gpu=1', '--hours', '2', '-o', 'json']);
    expect(exact.code).toBe(0);
    expect(json(exact.stdout).policies).toEqual([
      expect.objectContaining({ resource: 'gpu', window: '1d', unit: 'GPU-hours', used: 18, requested: 2, limit: 20, remaining: 2, percent: 90, allowed: true, retry_at: null }),
    ]);
  });

  it('an open allocation keeps running: no retry time while it holds the GPU', () => {
    const r = quota(quotaFolder(), ['check', '--user', 'bob', '--request', 'gpu=1', '--hours', '3', '-o', 'json']);
    expect(r.code).toBe(1);
    const d = json(r.stdout);
    expect(d).toMatchObject({ decision: 'denied', retry_at: null, policies: [{ allowed: false, retry_at: null }] });
    expect(d.message).toBe(
      'Quota exceeded for bob: gpu over the last 1d: used 18.00 of 20.00 GPU-hours, this request needs 3.00 more: 1.00 GPU-hours over; it frees up only once your running servers stop. Ask for more in #hub-help.',
    );
  });

  it("the caller's --groups beat the file's groups", () => {
    // As a member of "gpu" only, alice has no memory limit but the GPU policy (0 GPU-hours used).
    const r = quota(quotaFolder(), ['check', '--user', 'alice', '--groups', 'gpu', '--request', 'memory=100GiB', '--hours', '10', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ groups: ['gpu'], groups_from: 'caller', policies: [{ resource: 'gpu', used: 0, limit: 20 }] });
  });

  it('stale data: failure closed denies (exit 1), open allows (exit 0), none is unable to decide (exit 3)', () => {
    const cwd = quotaFolder();
    const later = '2024-10-02T01:00:01Z'; // the 23:00 snapshot is just over 2h old
    const closed = quota(cwd, ['check', '--user', 'carol', '-o', 'json'], later);
    expect(closed.code).toBe(1);
    expect(json(closed.stdout)).toMatchObject({ decision: 'denied', data: { stale: true, failure: 'closed', failure_applied: 'closed' } });
    expect(closed.stderr).toContain('the quota file says failure: closed');
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('failure: closed', 'failure: open'));
    const open = quota(cwd, ['check', '--user', 'alice', '--request', 'memory=64GiB', '--hours', '10'], later);
    expect(open.code).toBe(0);
    expect(open.stdout).toContain('alice: ALLOWED: allowed because the accounting data is stale');
    expect(open.stdout).toContain('stale: failure: open applied');
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('failure: closed\n', ''));
    const unable = quota(cwd, ['check', '--user', 'alice', '-o', 'json'], later);
    expect(unable.code).toBe(3);
    expect(json(unable.stdout)).toMatchObject({ decision: 'unable', exit_code: 3, data: { failure: null, failure_applied: null } });
    expect(unable.stderr).toBe(
      'hourmeter: unable to decide: the accounting data is stale: the latest snapshot, 2024-10-01T23:00:00Z, is 2h 0m old (stale_after 2h), and the quota file sets no "failure: open|closed"\n',
    );
  });

  it('bad input is a usage error (exit 2) that says where and how to fix it', () => {
    const cwd = quotaFolder();
    writeFileSync(join(cwd, 'bad.yaml'), QUOTA_FILE.replace('limit: 20 GPU-hours', 'limit: 20 GPUs'));
    const bad = quota(cwd, ['check', '--user', 'alice', '--quota', 'bad.yaml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('hourmeter: bad.yaml:17:12: policy 2: limit "20 GPUs" is not an amount of resource-hours: write e.g. 40 GPU-hours\n');
    expect(bad.stdout).toBe('');
    const req = quota(cwd, ['check', '--user', 'alice', '--request', 'memory=4GB']);
    expect(req.code).toBe(2);
    expect(req.stderr).toBe('hourmeter: --request: memory=4GB: give a size with its unit, e.g. memory=4GiB (MiB, GiB, TiB)\n');
    const missing = quota(cwd, ['check', '--user', 'alice', '--quota', 'nope.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml: no such file');
    expect(quota(cwd, ['check']).code).toBe(2);
  });
});

describe('hourmeter quota show and report', () => {
  it('show: one user, no request, exit 0 even when over a limit', () => {
    const cwd = quotaFolder();
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('limit: 30 GiB-hours', 'limit: 20 GiB-hours'));
    const r = quota(cwd, ['show', '--user', 'alice', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ user: 'alice', decision: 'denied', policies: [{ used: 24, limit: 20, remaining: 0, percent: 120, allowed: false, retry_at: '2024-10-02T01:00:00.000000Z' }] });
  });

  it('report: every user and limit by % used, as a table, CSV and JSON', () => {
    const cwd = quotaFolder();
    const csv = quota(cwd, ['report', '-o', 'csv']);
    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'bob,gpu,gpu,1d,GPU-hours,18.00,20.00,2.00,90.00,policies,gpu-hours\n' +
        'alice,regular,memory,1d,GiB-hours,24.00,30.00,6.00,80.00,policies,regular-memory\n' +
        'carol,,cpu,1d,CPU-hours,0.00,1.00,1.00,0.00,default,default cpu/1d\n',
    );
    const j = JSON.parse(quota(cwd, ['report', '-o', 'json']).stdout) as { latest_snapshot: string; stale: boolean; rows: { user: string; percent: number }[] };
    expect(j.latest_snapshot).toBe('2024-10-01T23:00:00.000000Z');
    expect(j.stale).toBe(false);
    expect(j.rows.map((r) => [r.user, r.percent])).toEqual([
      ['bob', 90],
      ['alice', 80],
      ['carol', 0],
    ]);
    const table = quota(cwd, ['report']);
    expect(table.stdout.split('\n')[0]).toBe('Quota usage at 2024-10-02T00:00:00Z; latest snapshot 2024-10-01T23:00:00Z; 3 rows');
    expect(table.stdout).toContain('│ bob   │ gpu     │ gpu      │ 1d     │ 18.00 │ 20.00 │ GPU-hours │  90.0% │');
  });
});

describe('hourmeter quota token', () => {
  it('prints a token once and keeps only its hash, owner-readable only', () => {
    const cwd = quotaFolder();
    const r = quota(cwd, ['token', '--user', 'alice']);
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^hmq_[A-Za-z0-9_-]{43}$/);
    const path = join(cwd, 'userdb', 'quota-tokens.json');
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(token.slice(4));
    expect(JSON.parse(text)).toEqual({ alice: { sha256: createHash('sha256').update(token).digest('hex'), issued_at: QUOTA_NOW.replace('Z', '.000000Z') } });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // A second token replaces the first.
    const again = quota(cwd, ['token', '--user', 'alice']).stdout.trim();
    expect(again).not.toBe(token);
    expect((JSON.parse(readFileSync(path, 'utf8')) as Record<string, { sha256: string }>).alice!.sha256).toBe(createHash('sha256').update(again).digest('hex'));
  });
});
