import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServe, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore } from '../helpers/store.js';

/**
 * Two clusters in one history (docs/accounting.md#clusters), both with a `default` namespace
 * and an allocation `x` of a job `job-x`:
 *
 * - cluster A (snapshots at 00:00, 01:00, 02:00): x runs from 00:00 and is listed complete,
 *   ended 02:00, at 02:00. 1 core × 2 h = 2 core-hours.
 * - cluster B (snapshots at 00:30, 01:30): x runs from 00:15 with 2 cores, listed at 00:30,
 *   gone at 01:30. It vanished in (00:30, 01:30]; with the native Nomad GC window of 1 h the
 *   estimate is the midpoint of (00:30, max(00:30, 01:30 − 1 h)] = 00:30: 2 × 0.25 h = 0.5
 *   core-hours; low 0.5 (ends at 00:30), high 2 × 1.25 h = 2.5 (ends at 01:30).
 *
 * Were the clusters one, B's 01:30 snapshot (covering `default`, not listing x) would close
 * A's x at 01:30, and A's 01:00 listing would keep B's x alive.
 */

const DAY = '2026-12-01';

function snapshot(cluster: string, at: string, allocations: { start: string; status: string; end: string | null; cores: number }[]): string {
  return JSON.stringify({
    format: 'hourmeter.snapshot',
    version: 1,
    captured_at: `${DAY}T${at}:00Z`,
    finished_at: `${DAY}T${at}:01Z`,
    source: { kind: 'nomad', address: `http://${cluster.toLowerCase()}.example.org:4646`, region: 'global', cluster },
    scope: { requested: ['*'], namespaces: ['default'], failed: [] },
    allocations: allocations.map((a) => ({
      id: 'x',
      namespace: 'default',
      job_id: 'job-x',
      job_name: 'job-x',
      user: 'alice',
      group: null,
      component: null,
      node: 'n1',
      status: a.status,
      created: `${DAY}T${a.start}:00Z`,
      start: `${DAY}T${a.start}:00Z`,
      end: a.end === null ? null : `${DAY}T${a.end}:00Z`,
      modified: `${DAY}T${at}:00Z`,
      resources: { cpu_cores: a.cores, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
    })),
    queued: [],
  });
}

/** Both clusters' files in one folder, each in its cluster's sub-folder as `snapshot --cluster` writes them. */
function twoClusters(): string {
  const cwd = tempDir();
  const write = (cluster: string, at: string, body: string) => {
    mkdirSync(join(cwd, 'snapshots', cluster), { recursive: true });
    writeFileSync(join(cwd, 'snapshots', cluster, `${DAY}T${at}:00Z.json`), body);
  };
  write('A', '00:00', snapshot('A', '00:00', [{ start: '00:00', status: 'running', end: null, cores: 1 }]));
  write('B', '00:30', snapshot('B', '00:30', [{ start: '00:15', status: 'running', end: null, cores: 2 }]));
  write('A', '01:00', snapshot('A', '01:00', [{ start: '00:00', status: 'running', end: null, cores: 1 }]));
  write('B', '01:30', snapshot('B', '01:30', []));
  write('A', '02:00', snapshot('A', '02:00', [{ start: '00:00', status: 'complete', end: '02:00', cores: 1 }]));
  return cwd;
}

type Row = Record<string, string | number>;
interface StatsJson {
  rows: Row[];
  total: Row;
  bounds: { low: { total: Row }; high: { total: Row } };
  coverage: { covered_fraction: number; warning: string | null; clusters?: { cluster: string; covered_fraction: number; warning: string | null }[] };
}

function stats(cwd: string, args: string[], extra: string[] = []): StatsJson {
  const r = run(['stats', '--from', DAY, '--to', DAY, '-o', 'json', ...args, ...extra], { cwd });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatsJson;
}

const pick = (rows: Row[], keys: string[]) => rows.map((r) => Object.fromEntries([...keys, 'cpu_hours', 'jobs', 'allocations'].map((k) => [k, r[k]])));

/** The claims, for any way of reading the history. */
function expectTwoClusters(read: (args: string[]) => StatsJson): void {
  const byBoth = read(['--by', 'cluster,namespace']);
  expect(pick(byBoth.rows, ['cluster', 'namespace'])).toEqual([
    { cluster: 'A', namespace: 'default', cpu_hours: 2, jobs: 1, allocations: 1 },
    { cluster: 'B', namespace: 'default', cpu_hours: 0.5, jobs: 1, allocations: 1 },
  ]);
  expect(byBoth.bounds.low.total.cpu_hours).toBe(2.5);
  expect(byBoth.bounds.high.total.cpu_hours).toBe(4.5);

  // One row per namespace name; its jobs are both clusters' job-x.
  const byNamespace = read(['--by', 'namespace']);
  expect(pick(byNamespace.rows, ['namespace'])).toEqual([{ namespace: 'default', cpu_hours: 2.5, jobs: 2, allocations: 2 }]);
  expect(pick(read(['--by', 'cluster']).rows, ['cluster'])).toEqual([
    { cluster: 'A', cpu_hours: 2, jobs: 1, allocations: 1 },
    { cluster: 'B', cpu_hours: 0.5, jobs: 1, allocations: 1 },
  ]);
  expect(read(['--cluster', 'B']).total.cpu_hours).toBe(0.5);
  expect(read(['--cluster', 'A', '--namespace', 'default']).total.cpu_hours).toBe(2);

  // Coverage per cluster: A is sampled to 02:00, B to 01:30 (each has a 1 h cadence, so a 3 h
  // max gap); the day is covered where both are, 1.5 of 24 h.
  const c = byBoth.coverage;
  expect(c.clusters?.map((k) => [k.cluster, k.covered_fraction, k.warning])).toEqual([
    ['A', 2 / 24, 'no snapshot after 2026-12-01T02:00:00Z: 22 of 24 h are unknown, not zero'],
    ['B', 1.5 / 24, 'no snapshot after 2026-12-01T01:30:00Z: 22.5 of 24 h are unknown, not zero'],
  ]);
  expect(c.covered_fraction).toBe(1.5 / 24);
  expect(c.warning).toBe(`cluster A: ${c.clusters![0]!.warning}; cluster B: ${c.clusters![1]!.warning}`);
  // A report of one cluster is judged by that cluster alone.
  const onlyA = read(['--cluster', 'A']).coverage;
  expect(onlyA.covered_fraction).toBe(2 / 24);
  expect(onlyA.clusters?.map((k) => k.cluster)).toEqual(['A']);
}

describe('two clusters sharing namespace names and allocation ids', () => {
  it('are kept apart by the index and by a direct read of the files', () => {
    const cwd = twoClusters();
    expectTwoClusters((args) => stats(cwd, args));
    expectTwoClusters((args) => stats(cwd, args, ['--no-index']));
  });

  it('monthly details name each allocation by its cluster', () => {
    const cwd = twoClusters();
    const r = run(['report', 'monthly', '--month', '2026-12', '--details'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const details = readFileSync(join(cwd, 'reports/monthly/202612-details.csv'), 'utf8').trim().split('\n');
    expect(details.slice(1).map((line) => line.split(',').slice(0, 11).join(','))).toEqual([
      'A,default,job-x,job-x,x,,,alice,2026-12-01T00:00:00.000000Z,2026-12-01T02:00:00.000000Z,false',
      'B,default,job-x,job-x,x,,,alice,2026-12-01T00:15:00.000000Z,2026-12-01T00:30:00.000000Z,false',
    ]);
    // --cluster B: B's allocation alone, 2 cores and 1 GiB for 0.25 h.
    const onlyB = run(['report', 'monthly', '--month', '2026-12', '--details', '--cluster', 'B', '--out', 'b'], { cwd });
    expect(onlyB.code, onlyB.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'b/monthly/202612.csv'), 'utf8').trim().split('\n').slice(1)).toEqual([',,alice,0.00,0.50,0.25,0.25,202612']);
    expect(readFileSync(join(cwd, 'b/monthly/202612-details.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0])).toEqual(['B']);
  });

  it('check judges each cluster by its own newest snapshot', () => {
    const cwd = twoClusters();
    // At 04:00 the newest file (A, 02:00) is 2 h old; B's newest (01:30) is 2.5 h old.
    const stale = run(['check', '--now', '2026-12-01T04:00:00Z', '--max-age', '135m'], { cwd });
    expect(stale.stderr).toBe('hourmeter: check failed: cluster B: latest snapshot 2026-12-01T01:30:00Z is 2h 30m old (max 135m)\n');
    expect(stale.code).toBe(1);
    const fine = run(['check', '--now', '2026-12-01T04:00:00Z', '--max-age', '3h'], { cwd });
    expect(fine.stderr).toBe('');
    expect(fine.stdout).toBe(
      'ok: latest snapshot 2026-12-01T02:00:00Z is 2h 0m old (max 3h), 1 namespace, 0 allocations holding resources; ' +
        'cluster A latest snapshot 2026-12-01T02:00:00Z is 2h 0m old (max 3h), 1 namespace, 0 allocations holding resources; ' +
        'cluster B latest snapshot 2026-12-01T01:30:00Z is 2h 30m old (max 3h), 1 namespace, 0 allocations holding resources\n',
    );
    expect(fine.code).toBe(0);
  });

  it('summarize sums a namespace over its clusters, each averaged over its own snapshots, and takes --cluster', () => {
    const cwd = twoClusters();
    const all = run(['summarize', '--from', DAY, '--to', DAY, '--quiet'], { cwd });
    expect(all.code, all.stderr).toBe(0);
    const only = run(['summarize', '--from', DAY, '--to', DAY, '--quiet', '--cluster', 'B', '--summaries', 'b'], { cwd });
    expect(only.code, only.stderr).toBe(0);
    // One day row: date;hours;snapshots;cpu_hours;gpu_hours;memory_gib_hours;…;running_jobs_avg;queued_jobs_avg;jobs;users.
    const day = (dir: string) => {
      const [header, row] = readFileSync(join(cwd, dir, 'default-timeseries.csv'), 'utf8').trim().split('\n');
      const cells = row!.split(';');
      return Object.fromEntries(header!.split(';').map((k, i) => [k, i === 0 ? cells[i] : Number(cells[i])]));
    };
    // A: 1 core, 1 GiB for 2 h; B: 2 cores, 1 GiB for 0.25 h. Running jobs: A's x ran in 2 of
    // A's 3 snapshots (2/3), B's in 1 of B's 2 (1/2): 7/6 summed. Two jobs: each cluster's job-x.
    expect(readdirSync(join(cwd, 'summaries')).sort()).toEqual(['coverage.json', 'default-full-agg.csv', 'default-timeseries.csv', 'default-users-agg.csv']);
    const both = day('summaries');
    expect([both.snapshots, both.cpu_hours, both.memory_gib_hours, both.jobs, both.users]).toEqual([5, 2.5, 2.25, 2, 1]);
    expect(both.running_jobs_avg).toBeCloseTo(7 / 6, 12);
    const b = day('b');
    expect([b.snapshots, b.cpu_hours, b.memory_gib_hours, b.running_jobs_avg, b.jobs, b.users]).toEqual([2, 0.5, 0.25, 0.5, 1, 1]);
  });

  it('top shows the newest snapshot and its cluster, or with --cluster the newest of that cluster', () => {
    const cwd = twoClusters();
    const top = (args: string[]) => run(['top', '-o', 'json', '--now', '2026-12-01T03:00:00Z', ...args], { cwd });
    const newest = JSON.parse(top([]).stdout) as { snapshot: { file: string; cluster?: string; namespaces: string[] } };
    expect([newest.snapshot.file, newest.snapshot.cluster, newest.snapshot.namespaces]).toEqual(['A/2026-12-01T02:00:00Z.json', 'A', ['default']]);
    const b = JSON.parse(top(['--cluster', 'B']).stdout) as { snapshot: { file: string; cluster?: string } };
    expect([b.snapshot.file, b.snapshot.cluster]).toEqual(['B/2026-12-01T01:30:00Z.json', 'B']);
    const none = top(['--cluster', 'C']);
    expect(none.stderr).toBe('hourmeter: --cluster C: no snapshot of that cluster (the history holds A, B)\n');
    expect(none.code).toBe(2);
    const table = run(['top', '--cluster', 'A', '--now', '2026-12-01T03:00:00Z', '--namespace', 'default'], { cwd });
    expect(table.stderr).toBe('');
    expect(table.stdout.split('\n')[0]).toBe('Snapshot of cluster A 2026-12-01T02:00:00Z (A/2026-12-01T02:00:00Z.json), 1h 0m old: 0 allocations holding resources in default');
  });

  it("serve's /metrics labels each series with its cluster; /stats takes cluster", async () => {
    const cwd = twoClusters();
    const { url } = await startServe(cwd, ['--workers', '1', '--now', '2026-12-02T00:00:00Z']);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    // A: 1 core × 2 h; B: 2 cores × 0.25 h (the estimate), in core-seconds.
    expect(metrics.split('\n').filter((l) => l.startsWith('hourmeter_allocated_cpu_core_seconds_total{'))).toEqual([
      'hourmeter_allocated_cpu_core_seconds_total{cluster="A",namespace="default"} 7200',
      'hourmeter_allocated_cpu_core_seconds_total{cluster="B",namespace="default"} 1800',
    ]);
    const stats = (await (await fetch(`${url}/stats?from=${DAY}&to=${DAY}&by=cluster&cluster=B`)).json()) as StatsJson;
    expect(pick(stats.rows, ['cluster'])).toEqual([{ cluster: 'B', cpu_hours: 0.5, jobs: 1, allocations: 1 }]);
  });

  describe('in the PostgreSQL store', () => {
    let db: Postgres;
    beforeAll(async () => {
      db = await startPostgres();
    }, 60_000);
    afterAll(() => db?.stop());

    it('the store prints what the folder prints', () => {
      const cwd = twoClusters();
      const store = migratedStore(db, 'clusters');
      const imported = run(['store', 'import', 'snapshots', '--store', store.url, '--quiet'], { cwd });
      expect(imported.code, imported.stderr).toBe(0);
      expect(store.psql("SELECT string_agg(name, ',' ORDER BY name) FROM snapshot_documents").trim()).toBe(
        ['A/2026-12-01T00:00:00Z.json', 'A/2026-12-01T01:00:00Z.json', 'A/2026-12-01T02:00:00Z.json', 'B/2026-12-01T00:30:00Z.json', 'B/2026-12-01T01:30:00Z.json'].join(','),
      );
      const elsewhere = tempDir();
      expectTwoClusters((args) => stats(elsewhere, args, ['--store', store.url]));
    });
  });
});
