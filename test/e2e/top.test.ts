import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

/**
 * `hourmeter top` on a hand-built snapshot captured 2024-09-01T12:00:00Z, read at 14:00:
 * - a1 alice / ai / train on gpu-01: 2 GPUs, 8 cores, 32 GiB, since 08-29 08:00 (3d 4h);
 * - a2 bob / ai / nb-bob on gpu-02: 1 GPU, 4 cores, 16 GiB, since 09:30 (2h 30m);
 * - a8 alice / web / infer on gpu-03: 1 GPU, 4 cores, 16 GiB, since 10:00 (2h 0m), a tie
 *   with a2 on every amount: the older one comes first;
 * - a4 carol / ai / big-cpu on cpu-02: 16 cores, 64 GiB, since 11:00 (1h 0m);
 * - a3 no user / web / api on cpu-01, status unknown (node disconnected, still holding):
 *   0.5 cores, 0.5 GiB, since 08-31 00:00 (1d 12h);
 * - not shown: a5 complete, a6 pending, a7 running without a start.
 */

const alloc = (id: string, ns: string, job: string, user: string | null, node: string | null, status: string, start: string | null, cores: number, gpu: number, memMib: number) => ({
  id, namespace: ns, job_id: job, job_name: `${job}-name`, user, group: null, component: null, node, status,
  created: null, start, end: status === 'complete' ? '2024-09-01T11:00:00Z' : null, modified: null,
  resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: memMib, disk_mib: 0, gpu },
});
const ALLOCS = [
  alloc('a3', 'web', 'api', null, 'cpu-01', 'unknown', '2024-08-31T00:00:00Z', 0.5, 0, 512),
  alloc('a4', 'ai', 'big-cpu', 'carol', 'cpu-02', 'running', '2024-09-01T11:00:00Z', 16, 0, 65536),
  alloc('a5', 'ai', 'done', 'dave', 'gpu-01', 'complete', '2024-09-01T10:00:00Z', 8, 4, 1024),
  alloc('a8', 'web', 'infer', 'alice', 'gpu-03', 'running', '2024-09-01T10:00:00Z', 4, 1, 16384),
  alloc('a1', 'ai', 'train', 'alice', 'gpu-01', 'running', '2024-08-29T08:00:00Z', 8, 2, 32768),
  alloc('a6', 'ai', 'wait', 'erin', null, 'pending', null, 2, 1, 1024),
  alloc('a7', 'web', 'fresh', 'frank', 'gpu-03', 'running', null, 2, 1, 1024),
  alloc('a2', 'ai', 'nb-bob', 'bob', 'gpu-02', 'running', '2024-09-01T09:30:00Z', 4, 1, 16384),
];
const snapshot = (at: string, allocations: unknown[], failed: { namespace: string; reason: string }[] = []) => ({
  format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
  source: { kind: 'nomad', address: null, region: null },
  scope: { requested: ['*'], namespaces: ['ai', 'web'], failed }, allocations, queued: [],
});

function folder(files: [name: string, content: string][]): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  for (const [name, content] of files) writeFileSync(join(cwd, 'snapshots', name), content);
  return cwd;
}
const native = (at: string, allocations: unknown[] = ALLOCS, failed: { namespace: string; reason: string }[] = []): [string, string] => [
  `${at}.json`,
  JSON.stringify(snapshot(at, allocations, failed)),
];
const NOW = ['--now', '2024-09-01T14:00:00Z'];
const top = (cwd: string, ...args: string[]) => run(['top', ...NOW, ...args], { cwd });

/** The user, job and since-columns of the table's rows, in order. */
const order = (table: string) =>
  table
    .split('\n')
    .filter((l) => /^│ /.test(l) && !/^│ (User|Total) /.test(l))
    .map((l) => l.split('│')[3]!.trim());

const TABLE = [
  'Snapshot 2024-09-01T12:00:00Z (2024-09-01T12:00:00Z.json), 2h 0m old: 5 allocations holding resources',
  '┌────────────────┬───────────┬─────────┬────────┬─────┬───────────┬────────────┬──────────────────────┬────────┐',
  '│ User           │ Namespace │ Job     │ Node   │ GPU │ CPU cores │ Memory GiB │ Since                │    For │',
  '├────────────────┼───────────┼─────────┼────────┼─────┼───────────┼────────────┼──────────────────────┼────────┤',
  '│ alice          │ ai        │ train   │ gpu-01 │   2 │      8.00 │      32.00 │ 2024-08-29T08:00:00Z │  3d 4h │',
  '│ bob            │ ai        │ nb-bob  │ gpu-02 │   1 │      4.00 │      16.00 │ 2024-09-01T09:30:00Z │ 2h 30m │',
  '│ alice          │ web       │ infer   │ gpu-03 │   1 │      4.00 │      16.00 │ 2024-09-01T10:00:00Z │  2h 0m │',
  '│ carol          │ ai        │ big-cpu │ cpu-02 │   0 │     16.00 │      64.00 │ 2024-09-01T11:00:00Z │  1h 0m │',
  '│ (unattributed) │ web       │ api     │ cpu-01 │   0 │      0.50 │       0.50 │ 2024-08-31T00:00:00Z │ 1d 12h │',
  '├────────────────┼───────────┼─────────┼────────┼─────┼───────────┼────────────┼──────────────────────┼────────┤',
  '│ Total          │           │         │        │   4 │     32.50 │     128.50 │                      │        │',
  '└────────────────┴───────────┴─────────┴────────┴─────┴───────────┴────────────┴──────────────────────┴────────┘',
  '',
].join('\n');

describe('hourmeter top', () => {
  it('lists the allocations holding resources in the latest snapshot, most GPUs first, with totals', () => {
    // An older snapshot with other holders must not matter.
    const cwd = folder([native('2024-09-01T06:00:00Z', [alloc('old', 'ai', 'gone', 'zoe', 'gpu-09', 'running', '2024-09-01T00:00:00Z', 1, 8, 1024)]), native('2024-09-01T12:00:00Z')]);
    const r = top(cwd);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(TABLE);
  });

  it('sorts by --sort: amounts largest first, since oldest first, users by name with the unattributed last', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    const jobs = (sort: string) => {
      const r = top(cwd, '--sort', sort);
      expect(r.code).toBe(0);
      return order(r.stdout);
    };
    expect(jobs('gpu')).toEqual(['train', 'nb-bob', 'infer', 'big-cpu', 'api']);
    expect(jobs('cpu')).toEqual(['big-cpu', 'train', 'nb-bob', 'infer', 'api']);
    expect(jobs('memory')).toEqual(['big-cpu', 'train', 'nb-bob', 'infer', 'api']);
    expect(jobs('since')).toEqual(['train', 'api', 'nb-bob', 'infer', 'big-cpu']);
    expect(jobs('user')).toEqual(['train', 'infer', 'nb-bob', 'big-cpu', 'api']);
  });

  it('--limit cuts the rows, not the totals, and says so; --namespace filters', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    const r = top(cwd, '--limit', '2');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Snapshot 2024-09-01T12:00:00Z (2024-09-01T12:00:00Z.json), 2h 0m old: 5 allocations holding resources, showing the first 2 by gpu');
    expect(order(r.stdout)).toEqual(['train', 'nb-bob']);
    expect(r.stdout).toContain('│ Total (all 5) │           │        │        │   4 │     32.50 │     128.50 │');
    const web = top(cwd, '--namespace', 'web', '--sort', 'cpu');
    expect(web.stdout.split('\n')[0]).toBe('Snapshot 2024-09-01T12:00:00Z (2024-09-01T12:00:00Z.json), 2h 0m old: 2 allocations holding resources in web');
    expect(order(web.stdout)).toEqual(['infer', 'api']);
    expect(web.stdout).toContain('│ Total          │           │       │        │   1 │      4.50 │      16.50 │');
  });

  it('-o json: the snapshot, the totals and every allocation, unrounded', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z', ALLOCS, [{ namespace: 'ml', reason: '403 Forbidden' }])]);
    const r = top(cwd, '-o', 'json', '--namespace', 'web');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      snapshot: {
        file: '2024-09-01T12:00:00Z.json', kind: 'native', captured_at: '2024-09-01T12:00:00.000000Z', age_seconds: 7200,
        namespaces: ['ai', 'web'], failed_scopes: [{ namespace: 'ml', reason: '403 Forbidden' }], unreadable_newer: [],
      },
      sort: 'gpu',
      limit: null,
      namespaces: ['web'],
      total: { allocations: 2, gpu: 1, cpu_cores: 4.5, memory_gib: 16.5 },
      allocations: [
        { user: 'alice', user_name: null, namespace: 'web', job_id: 'infer', job_name: 'infer-name', allocation: 'a8', node: 'gpu-03', status: 'running', gpu: 1, cpu_cores: 4, memory_gib: 16, since: '2024-09-01T10:00:00.000000Z', held_seconds: 7200 },
        { user: null, user_name: null, namespace: 'web', job_id: 'api', job_name: 'api-name', allocation: 'a3', node: 'cpu-01', status: 'unknown', gpu: 0, cpu_cores: 0.5, memory_gib: 0.5, since: '2024-08-31T00:00:00.000000Z', held_seconds: 129600 },
      ],
    });
  });

  it('keeps the JSON shape when nothing holds resources, and the table says so', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z', [ALLOCS[2]])]);
    const r = top(cwd, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.total).toEqual({ allocations: 0, gpu: 0, cpu_cores: 0, memory_gib: 0 });
    expect(j.allocations).toEqual([]);
    expect(j.limit).toBeNull();
    const t = top(cwd);
    expect(t.stdout).toBe(
      [
        'Snapshot 2024-09-01T12:00:00Z (2024-09-01T12:00:00Z.json), 2h 0m old: 0 allocations holding resources',
        '┌───────┬───────────┬─────┬──────┬─────┬───────────┬────────────┬───────┬─────┐',
        '│ User  │ Namespace │ Job │ Node │ GPU │ CPU cores │ Memory GiB │ Since │ For │',
        '├───────┼───────────┼─────┼──────┼─────┼───────────┼────────────┼───────┼─────┤',
        '├───────┼───────────┼─────┼──────┼─────┼───────────┼────────────┼───────┼─────┤',
        '│ Total │           │     │      │   0 │      0.00 │       0.00 │       │     │',
        '└───────┴───────────┴─────┴──────┴─────┴───────────┴────────────┴───────┴─────┘',
        '',
      ].join('\n'),
    );
  });

  it('-o csv: one row per allocation, the unattributed named, no node as an empty cell', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z', [ALLOCS[0], alloc('a9', 'ai', '=cmd', 'mallory', null, 'running', '2024-09-01T11:59:30Z', 0.25, 0, 100)])]);
    const r = top(cwd, '-o', 'csv', '--sort', 'since');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'user,user_name,namespace,job_id,job_name,allocation,node,status,gpu,cpu_cores,memory_gib,since,held_seconds\n' +
        '(unattributed),,web,api,api-name,a3,cpu-01,unknown,0,0.5,0.5,2024-08-31T00:00:00.000000Z,129600\n' +
        `mallory,,ai,"'=cmd","'=cmd-name",a9,,running,0,0.25,0.09765625,2024-09-01T11:59:30.000000Z,30\n`,
    );
  });

  it('reads an AI4OS legacy file: no node, no failed scopes', () => {
    const legacy = {
      ai4eosc: [
        { job_ID: 'j1', name: 'module-j1', status: 'running', owner: 'u1@egi.eu', alloc_ID: 'al1', alloc_start: '2024-09-01T03:00:00.123456789Z', alloc_end: null, resources: { cpu_num: 4, cpu_MHz: 11200, gpu_num: 1, memory_MB: 8192, disk_MB: 1000 } },
        { job_ID: 'j2', name: 'module-j2', status: 'dead', owner: 'u2@egi.eu', alloc_ID: 'al2', alloc_start: '2024-09-01T01:00:00Z', alloc_end: '2024-09-01T02:00:00Z', resources: { cpu_num: 1, cpu_MHz: 2000, gpu_num: 0, memory_MB: 1024, disk_MB: 0 } },
      ],
      imagine: [],
    };
    const cwd = folder([['2024-09-01T06:00:00.json', JSON.stringify(legacy)]]);
    const r = run(['top', '--now', '2024-09-01T06:30:00Z'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'Snapshot 2024-09-01T06:00:00Z (2024-09-01T06:00:00.json), 30m old: 1 allocation holding resources',
        '┌───────────┬───────────┬─────┬──────┬─────┬───────────┬────────────┬─────────────────────────────┬────────┐',
        '│ User      │ Namespace │ Job │ Node │ GPU │ CPU cores │ Memory GiB │ Since                       │    For │',
        '├───────────┼───────────┼─────┼──────┼─────┼───────────┼────────────┼─────────────────────────────┼────────┤',
        '│ u1@egi.eu │ ai4eosc   │ j1  │ -    │   1 │      4.00 │       8.00 │ 2024-09-01T03:00:00.123456Z │ 2h 59m │',
        '├───────────┼───────────┼─────┼──────┼─────┼───────────┼────────────┼─────────────────────────────┼────────┤',
        '│ Total     │           │     │      │   1 │      4.00 │       8.00 │                             │        │',
        '└───────────┴───────────┴─────┴──────┴─────┴───────────┴────────────┴─────────────────────────────┴────────┘',
        '',
      ].join('\n'),
    );
    const j = JSON.parse(run(['top', '--now', '2024-09-01T06:30:00Z', '-o', 'json'], { cwd }).stdout);
    expect(j.snapshot).toMatchObject({ kind: 'legacy', namespaces: ['ai4eosc', 'imagine'], failed_scopes: [] });
    expect(j.allocations[0]).toMatchObject({ allocation: 'al1', node: null, job_name: 'module-j1' });
  });

  it('names a failed scope under the table: its allocations are missing from it', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z', [ALLOCS[0]], [{ namespace: 'ml', reason: '403 Forbidden' }])]);
    const r = top(cwd);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').slice(-2)).toEqual(['Not captured in this snapshot: ml (403 Forbidden)', '']);
  });

  it('falls back to the newest readable snapshot when the latest is corrupt, with a warning; --strict fails', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z'), ['2024-09-01T13:00:00Z.json', '{"format": "hourmeter.snapshot", "vers']]);
    const r = top(cwd);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(TABLE);
    expect(r.stderr).toMatch(/^hourmeter: warning: skipped 2024-09-01T13:00:00Z\.json: corrupt or truncated JSON \(.*\); use --strict to fail instead\n/);
    expect(r.stderr).toMatch(/\nhourmeter: warning: showing 2024-09-01T12:00:00Z\.json, the newest snapshot that could be read\n$/);
    const j = JSON.parse(top(cwd, '-o', 'json').stdout);
    expect(j.snapshot.unreadable_newer).toEqual([{ file: '2024-09-01T13:00:00Z.json', reason: 'corrupt or truncated JSON' }]);
    const strict = top(cwd, '--strict');
    expect(strict.code).toBe(3);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toMatch(/^hourmeter: 2024-09-01T13:00:00Z\.json: corrupt or truncated JSON/);
  });

  it('fails with exit 3 when no snapshot can be read, and exit 2 on an empty or missing folder', () => {
    const bad = top(folder([['2024-09-01T13:00:00Z.json', '']]));
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/hourmeter: none of the 1 snapshot files could be read \(the newest, 2024-09-01T13:00:00Z\.json: empty file\)\n$/);
    const empty = top(folder([]));
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^hourmeter: --snapshots snapshots holds no snapshot files/);
    expect(run(['top', '--snapshots', 'nowhere'], { cwd: tempDir() }).code).toBe(2);
  });

  it('bad --sort, --limit or -o are usage errors (exit 2)', () => {
    const cwd = folder([native('2024-09-01T12:00:00Z')]);
    const sort = top(cwd, '--sort', 'disk');
    expect(sort.code).toBe(2);
    expect(sort.stderr).toBe('hourmeter: --sort "disk" is not one of gpu, cpu, memory, since, user\n');
    const limit = top(cwd, '--limit', '-3');
    expect(limit.code).toBe(2);
    expect(limit.stderr).toBe('hourmeter: --limit "-3" is not a number of rows: use e.g. 20, or 0 for all\n');
    expect(top(cwd, '-o', 'yaml').code).toBe(2);
  });
});
