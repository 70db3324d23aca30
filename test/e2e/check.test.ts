import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

/**
 * `hourmeter check` on hand-built snapshots: the newest one is captured 2024-09-01T12:00:00Z
 * and covers namespaces ai and web, with two allocations holding resources (one running,
 * one on a disconnected node) and one complete.
 */

const alloc = (id: string, status: string, start: string | null, end: string | null = null) => ({
  id, namespace: 'ai', job_id: `job-${id}`, job_name: null, user: 'alice', group: null, component: null, node: 'n1', status,
  created: null, start, end, modified: null, resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
});
const HOLDING = [alloc('a', 'running', '2024-09-01T10:00:00Z'), alloc('b', 'unknown', '2024-09-01T09:00:00Z'), alloc('c', 'complete', '2024-09-01T08:00:00Z', '2024-09-01T09:00:00Z')];
const native = (at: string, failed: { namespace: string; reason: string }[] = []): [string, string] => [
  `${at}.json`,
  JSON.stringify({
    format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
    source: { kind: 'nomad', address: null, region: null },
    scope: { requested: ['*'], namespaces: ['ai', 'web'], failed }, allocations: HOLDING, queued: [],
  }),
];

function folder(files: [name: string, content: string][]): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  for (const [name, content] of files) writeFileSync(join(cwd, 'snapshots', name), content);
  return cwd;
}
const check = (cwd: string, now: string, ...args: string[]) => run(['check', '--now', now, ...args], { cwd });

describe('hourmeter check', () => {
  it('exits 0 with one ok line on stdout when the latest snapshot is recent and complete', () => {
    // An older corrupt file and an older failed scope do not matter: only the newest file counts.
    const cwd = folder([['2024-09-01T00:00:00Z.json', '{'], native('2024-09-01T06:00:00Z', [{ namespace: 'ml', reason: 'timeout' }]), native('2024-09-01T12:00:00Z')]);
    const r = check(cwd, '2024-09-01T14:00:00Z');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ok: latest snapshot 2024-09-01T12:00:00Z is 2h 0m old (max 12h), 2 namespaces, 2 allocations holding resources\n');
  });

  it('exits 1 with one line on stderr when the latest snapshot is older than --max-age (default 12h)', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    // Exactly 12 h old is still fine; a minute more is not.
    expect(check(cwd, '2024-09-02T00:00:00Z').code).toBe(0);
    const r = check(cwd, '2024-09-02T00:01:00Z');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hourmeter: check failed: latest snapshot 2024-09-01T12:00:00Z is 12h 1m old (max 12h)\n');
    const short = check(cwd, '2024-09-01T14:00:00Z', '--max-age', '90m');
    expect(short.code).toBe(1);
    expect(short.stderr).toBe('hourmeter: check failed: latest snapshot 2024-09-01T12:00:00Z is 2h 0m old (max 90m)\n');
    const long = check(cwd, '2024-09-04T15:00:00Z', '--max-age', '4d');
    expect(long.code).toBe(0);
    expect(long.stdout).toBe('ok: latest snapshot 2024-09-01T12:00:00Z is 3d 3h old (max 4d), 2 namespaces, 2 allocations holding resources\n');
  });

  it('exits 1 when the latest snapshot recorded failed scopes, naming each with its reason', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z', [{ namespace: 'ml', reason: '403 Forbidden' }, { namespace: '*', reason: 'connection refused' }])]);
    const r = check(cwd, '2024-09-01T12:30:00Z');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hourmeter: check failed: latest snapshot 2024-09-01T12:00:00Z failed to capture ml (403 Forbidden), the namespace list (connection refused)\n');
  });

  it('exits 1 when the latest file cannot be read, taking its age from its name, with every reason on one line', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z'), ['2024-09-01T13:00:00Z.json', '{"format": "hourmeter.snapshot", "version": 2}']]);
    const r = check(cwd, '2024-09-02T03:00:00Z');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'hourmeter: check failed: latest snapshot 2024-09-01T13:00:00Z is 14h 0m old (max 12h); ' +
        'latest snapshot file 2024-09-01T13:00:00Z.json cannot be read: unsupported snapshot version\n',
    );
    // A legacy file's capture time is its name, too.
    const legacy = folder([['2024-09-01T06:00:00.json', JSON.stringify({ ai4eosc: [], imagine: [] })]]);
    const l = check(legacy, '2024-09-01T07:00:00Z');
    expect(l.stderr).toBe('');
    expect(l.stdout).toBe('ok: latest snapshot 2024-09-01T06:00:00Z is 1h 0m old (max 12h), 2 namespaces, 0 allocations holding resources\n');
  });

  it('exits 1 on a folder without snapshot files: a monitoring check must not pass on nothing', () => {
    const cwd = folder([['notes.json', '{}']]);
    const r = check(cwd, '2024-09-01T12:00:00Z');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hourmeter: check failed: no snapshot files in snapshots; is `hourmeter snapshot` running?\n');
  });

  it('exits 2 on a bad --max-age, a bad --now or a missing folder', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    const bad = check(cwd, '2024-09-01T12:00:00Z', '--max-age', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('hourmeter: --max-age "soon" is not a duration: use e.g. 12h, 90m or 1d\n');
    expect(check(cwd, 'yesterday').code).toBe(2);
    const missing = check(cwd, '2024-09-01T12:00:00Z', '--snapshots', 'nowhere');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^hourmeter: --snapshots nowhere: no such folder/);
  });
  it("fails when a watcher's journal has been silent past --max-silence (default 5m), and names it when it is not", () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    const dir = join(cwd, 'snapshots', 'journal', 'nomad-10.0.0.1-4646');
    mkdirSync(dir, { recursive: true });
    const header = { type: 'journal', at: '2024-09-01T12:00:00.000000Z', format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://10.0.0.1:4646', region: null } };
    const lines = [header, { type: 'connected', at: '2024-09-01T12:00:00.000000Z' }, { type: 'alive', at: '2024-09-01T12:20:00.000000Z', index: 7 }];
    writeFileSync(join(dir, '2024-09-01T12Z.jsonl'), lines.map((l) => JSON.stringify(l) + '\n').join(''));
    // Heard 4 minutes ago: fine.
    const ok = check(cwd, '2024-09-01T12:24:00Z');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('ok: latest snapshot 2024-09-01T12:00:00Z is 24m old (max 12h), 2 namespaces, 2 allocations holding resources; watcher nomad-10.0.0.1-4646 heard 4m ago\n');
    // Silent for 6 minutes: not.
    const silent = check(cwd, '2024-09-01T12:26:00Z');
    expect(silent.code).toBe(1);
    expect(silent.stderr).toBe('hourmeter: check failed: watcher nomad-10.0.0.1-4646 silent for 6m since 2024-09-01T12:20:00Z (max 5m)\n');
    expect(check(cwd, '2024-09-01T12:26:00Z', '--max-silence', '10m').code).toBe(0);
  });
});
