import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/accounting/aggregate.js';
import { LifetimeColumns, MemoryNames } from '../../src/accounting/columns.js';
import { DailySplitter, dayGrid, dayIndexOf } from '../../src/accounting/daily.js';
import { countsPerDay, JobCounter } from '../../src/accounting/job-counts.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import type { Lifetime, QueuedObservation, SnapshotDelta } from '../../src/accounting/types.js';
import { amounts, obs, us } from '../helpers/builders.js';

function life(p: { id: string; start: string; end: string; ns?: string; user?: string | null; job?: string; res?: Parameters<typeof amounts>[0]; high?: string }): Lifetime {
  return {
    key: `nomad:${p.id}`,
    namespace: p.ns ?? 'ns1',
    jobId: p.job ?? `job-${p.id}`,
    jobName: null,
    user: p.user === undefined ? 'alice' : p.user,
    group: null,
    component: null,
    node: null,
    amounts: amounts(p.res ?? { cpu: 1 }),
    startUs: us(p.start),
    endUs: us(p.end),
    lowEndUs: us(p.end),
    highEndUs: us(p.high ?? p.end),
    endKind: p.high ? 'vanished' : 'ended',
  };
}

function split(lifetimes: Lifetime[], from: string, to: string, tz = 'UTC', namespaces: string[] = []) {
  const names = new MemoryNames();
  const cols = new LifetimeColumns(lifetimes.length);
  for (const l of lifetimes) cols.push(l, names);
  const period = resolvePeriod(from, to, tz);
  const s = new DailySplitter(dayGrid(period), names, namespaces);
  s.add(cols);
  return s.result();
}

describe('day grid', () => {
  it('has 24-hour days in UTC', () => {
    const g = dayGrid(resolvePeriod('2024-02-28', '2024-03-01', 'UTC'));
    expect(g.days).toEqual(['2024-02-28', '2024-02-29', '2024-03-01']);
    expect(g.boundsUs).toEqual(['2024-02-28', '2024-02-29', '2024-03-01', '2024-03-02'].map((d) => us(`${d}T00:00:00Z`)));
  });
  it('has 23- and 25-hour days across DST in Europe/Madrid', () => {
    // Madrid is UTC+1 in winter, UTC+2 in summer; clocks jump 02:00 -> 03:00 on 2024-03-31
    // and 03:00 -> 02:00 on 2024-10-27.
    const spring = dayGrid(resolvePeriod('2024-03-31', '2024-03-31', 'Europe/Madrid'));
    expect(spring.boundsUs).toEqual([us('2024-03-30T23:00:00Z'), us('2024-03-31T22:00:00Z')]);
    const fall = dayGrid(resolvePeriod('2024-10-27', '2024-10-27', 'Europe/Madrid'));
    expect(fall.boundsUs).toEqual([us('2024-10-26T22:00:00Z'), us('2024-10-27T23:00:00Z')]);
  });
  it('finds the day of an instant, half-open', () => {
    const g = dayGrid(resolvePeriod('2024-09-01', '2024-09-03', 'UTC'));
    expect(dayIndexOf(g, us('2024-08-31T23:59:59Z'))).toBe(-1);
    expect(dayIndexOf(g, us('2024-09-01T00:00:00Z'))).toBe(0);
    expect(dayIndexOf(g, us('2024-09-02T23:59:59.999999Z'))).toBe(1);
    expect(dayIndexOf(g, us('2024-09-03T00:00:00Z'))).toBe(2);
    expect(dayIndexOf(g, us('2024-09-04T00:00:00Z'))).toBe(-1);
  });
});

describe('daily split', () => {
  it('cuts an allocation that spans midnight at midnight', () => {
    // 2 cores, 1 GPU, 1024 MiB from 22:00 to 03:00 the next day: 2 h on the first day and
    // 3 h on the second. Day 1: 4 core-hours, 2 GPU-hours, 2 GiB-hours; on average over
    // its 24 h, 4/24 cores. Day 2: 6, 3, 3; 6/24 cores. Day 3: nothing.
    const [ns] = split([life({ id: 'a', start: '2024-03-01T22:00:00Z', end: '2024-03-02T03:00:00Z', res: { cpu: 2, gpu: 1, memMiB: 1024 } })], '2024-03-01', '2024-03-03');
    const d = ns!.days;
    expect(d.map((x) => [x.day, x.hours, x.cpu_hours, x.gpu_hours, x.memory_gib_hours, x.jobs, x.users])).toEqual([
      ['2024-03-01', 24, 4, 2, 2, 1, 1],
      ['2024-03-02', 24, 6, 3, 3, 1, 1],
      ['2024-03-03', 24, 0, 0, 0, 0, 0],
    ]);
    expect(d[0]!.average).toEqual({ cpu_cores: 4 / 24, gpus: 2 / 24, memory_gib: 2 / 24, disk_gib: 0, cpu_mhz: 0 });
    expect(d[1]!.average.cpu_cores).toBe(0.25);
    expect(ns!.total).toMatchObject({ cpu_hours: 10, gpu_hours: 5, memory_gib_hours: 5, jobs: 1, users: 1, allocations: 1, firstDay: '2024-03-01', lastDay: '2024-03-02' });
  });

  it('gives a DST day 23 or 25 hours under a non-UTC --tz', () => {
    // One core from 2024-03-30T20:00Z (21:00 in Madrid) to 2024-04-01T01:00Z (03:00 CEST).
    // 03-30 in Madrid ends at 23:00Z: 3 h. 03-31 is [03-30T23:00Z, 03-31T22:00Z): all 23 h.
    // 04-01 begins at 03-31T22:00Z: 3 h up to 01:00Z. Total 29 h = the whole lifetime.
    const spring = split([life({ id: 'a', start: '2024-03-30T20:00:00Z', end: '2024-04-01T01:00:00Z' })], '2024-03-30', '2024-04-01', 'Europe/Madrid')[0]!;
    expect(spring.days.map((x) => [x.day, x.hours, x.cpu_hours, x.average.cpu_cores])).toEqual([
      ['2024-03-30', 24, 3, 3 / 24],
      ['2024-03-31', 23, 23, 1],
      ['2024-04-01', 24, 3, 3 / 24],
    ]);
    expect(spring.total.cpu_hours).toBe(29);
    // Two GPUs all through 2024-10-27 in Madrid, [10-26T22:00Z, 10-27T23:00Z): 25 h x 2.
    const fall = split([life({ id: 'b', start: '2024-10-20T00:00:00Z', end: '2024-11-01T00:00:00Z', res: { gpu: 2 } })], '2024-10-27', '2024-10-27', 'Europe/Madrid')[0]!;
    expect(fall.days.map((x) => [x.hours, x.gpu_hours, x.average.gpus])).toEqual([[25, 50, 2]]);
  });

  it('gives a day the zone skipped no hours and nothing held', () => {
    // Samoa moved across the date line: 2011-12-30 did not exist in Pacific/Apia.
    const [ns] = split([life({ id: 'a', start: '2011-12-29T00:00:00Z', end: '2012-01-02T00:00:00Z', res: { cpu: 1 } })], '2011-12-29', '2011-12-31', 'Pacific/Apia');
    expect(ns!.days.map((d) => [d.day, d.hours, d.cpu_hours, d.average.cpu_cores])).toEqual([
      ['2011-12-29', 24, 24, 1],
      ['2011-12-30', 0, 0, 0],
      ['2011-12-31', 24, 24, 1],
    ]);
  });

  it('counts a day without any allocation as zero usage, and lists users with their first and last day', () => {
    const r = split(
      [
        life({ id: 'a', start: '2024-09-01T10:00:00Z', end: '2024-09-01T12:00:00Z', user: 'bob' }),
        life({ id: 'b', start: '2024-09-03T00:00:00Z', end: '2024-09-03T06:00:00Z', user: 'bob', job: 'j2' }),
        life({ id: 'c', start: '2024-09-03T00:00:00Z', end: '2024-09-03T01:30:00Z', user: null }),
        life({ id: 'd', start: '2024-09-02T00:00:00Z', end: '2024-09-02T01:00:00Z', user: 'ann', ns: 'other' }),
      ],
      '2024-09-01',
      '2024-09-03',
      'UTC',
      ['ns1'],
    );
    expect(r.map((n) => n.namespace)).toEqual(['ns1']);
    const ns = r[0]!;
    expect(ns.days.map((d) => [d.cpu_hours, d.jobs, d.users])).toEqual([
      [2, 1, 1],
      [0, 0, 0],
      [7.5, 2, 1],
    ]);
    expect(ns.users.map((u) => [u.user, u.cpu_hours, u.jobs, u.allocations, u.firstDay, u.lastDay])).toEqual([
      ['bob', 8, 2, 2, '2024-09-01', '2024-09-03'],
      ['(unattributed)', 1.5, 1, 1, '2024-09-03', '2024-09-03'],
    ]);
    // the unattributed allocation is no user
    expect(ns.total).toMatchObject({ cpu_hours: 9.5, jobs: 3, users: 1, allocations: 3 });
  });

  it('gives a namespace asked for but never seen zero rows', () => {
    const [ns] = split([], '2024-09-01', '2024-09-02', 'UTC', ['ghost']);
    expect(ns!.namespace).toBe('ghost');
    expect(ns!.days.map((d) => d.cpu_hours)).toEqual([0, 0]);
    expect(ns!.total.firstDay).toBeNull();
  });

  it('agrees exactly with aggregate() per namespace and per user, and its days add up to the total', () => {
    // Odd amounts and times (µs) so that floating-point shortcuts would show.
    const ls: Lifetime[] = [];
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 300; i++) {
      const start = us('2024-09-01T00:00:00Z') - 86_400_000_000 + rnd(10 * 86_400) * 1_000_000 + rnd(999_999);
      const end = start + rnd(4 * 86_400) * 1_000_000 + rnd(999_999) + 1;
      ls.push({
        ...life({ id: `a${i}`, start: '2024-09-01T00:00:00Z', end: '2024-09-01T00:00:00Z', ns: `ns${rnd(3)}`, user: rnd(7) === 0 ? null : `u${rnd(20)}`, job: `j${rnd(80)}` }),
        amounts: { cpuMilli: 250 * (1 + rnd(32)), cpuMhz: 1 + rnd(5000), gpu: rnd(3), memoryBytes: 1_048_576 * (1 + rnd(40_000)), diskBytes: 1_048_576 * (1 + rnd(90_000)) },
        startUs: start,
        endUs: end,
        lowEndUs: end,
        highEndUs: end,
      });
    }
    const period = resolvePeriod('2024-09-01', '2024-09-07', 'Europe/Madrid');
    const daily = split(ls, '2024-09-01', '2024-09-07', 'Europe/Madrid');
    const byNs = aggregate(ls, period, ['namespace']);
    const byUser = aggregate(ls, period, ['namespace', 'user']);
    const KEYS = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'] as const;
    expect(daily.map((n) => n.namespace)).toEqual(byNs.rows.map((r) => r.namespace));
    for (const ns of daily) {
      const row = byNs.rows.find((r) => r.namespace === ns.namespace)!;
      for (const k of KEYS) expect(ns.total[k]).toBe(row[k]);
      expect([ns.total.jobs, ns.total.users, ns.total.allocations]).toEqual([row.jobs, row.users, row.allocations]);
      const userRows = byUser.rows.filter((r) => r.namespace === ns.namespace);
      expect(ns.users.map((u) => u.user)).toEqual(userRows.map((r) => r.user));
      ns.users.forEach((u, i) => {
        for (const k of KEYS) expect(u[k]).toBe(userRows[i]![k]);
        expect([u.jobs, u.allocations]).toEqual([userRows[i]!.jobs, userRows[i]!.allocations]);
      });
      for (const k of KEYS) expect(ns.days.reduce((s, d) => s + d[k], 0)).toBeCloseTo(row[k], 6);
    }
  });
});

function delta(time: string, changed: ReturnType<typeof obs>[], gone: string[] = [], queued: QueuedObservation[] = [], covered = ['ns1']): SnapshotDelta {
  return { file: `${time}.json`, timeUs: us(time), covered: new Set(covered), failedScopes: [], changed, gone, queued, skips: [], kind: 'native' };
}

describe('job counts', () => {
  it('counts jobs with a holding allocation and queued jobs, per covered namespace', () => {
    const c = new JobCounter();
    const q = (job: string, ns = 'ns1'): QueuedObservation => ({ namespace: ns, jobId: job, user: null, group: null, queued: 2 });
    // Two allocations of job A and one of B run; C is queued (twice listed: one job).
    const s1 = c.apply(
      delta(
        '2024-09-01T06:00:00Z',
        [obs({ id: 'a1', job: 'A', status: 'running', start: '2024-09-01T05:00:00Z' }), obs({ id: 'a2', job: 'A', status: 'running', start: '2024-09-01T05:00:00Z' }), obs({ id: 'b1', job: 'B', status: 'running', start: '2024-09-01T05:00:00Z' })],
        [],
        [q('C'), q('C')],
        ['ns1', 'ns2'],
      ),
    );
    expect(s1.namespaces).toEqual({ ns1: [2, 1], ns2: [0, 0] });
    // a1 finishes (A still runs on a2), b1 goes away, ns2 is not covered this time.
    const s2 = c.apply(delta('2024-09-01T12:00:00Z', [obs({ id: 'a1', job: 'A', status: 'complete', start: '2024-09-01T05:00:00Z', end: '2024-09-01T11:00:00Z' })], ['nomad:b1']));
    expect(s2.namespaces).toEqual({ ns1: [1, 0] });
    const s3 = c.apply(delta('2024-09-01T18:00:00Z', [], ['nomad:a2']));
    expect(s3.namespaces).toEqual({ ns1: [0, 0] });
  });

  it('averages over the snapshots of each day, and leaves days without one empty', () => {
    const grid = dayGrid(resolvePeriod('2024-09-01', '2024-09-03', 'UTC'));
    const m = countsPerDay(grid, [
      { timeUs: us('2024-09-01T00:00:00Z'), namespaces: { ns1: [3, 1] } },
      { timeUs: us('2024-09-01T12:00:00Z'), namespaces: { ns1: [4, 0] } },
      { timeUs: us('2024-09-03T23:59:59Z'), namespaces: { ns1: [1, 1], ns2: [0, 0] } },
      { timeUs: us('2024-09-04T00:00:00Z'), namespaces: { ns1: [9, 9] } },
    ]);
    expect(m.get('ns1')).toEqual([
      { snapshots: 2, running: 3.5, queued: 0.5 },
      { snapshots: 0, running: null, queued: null },
      { snapshots: 1, running: 1, queued: 1 },
    ]);
    expect(m.get('ns2')!.map((d) => d.snapshots)).toEqual([0, 0, 1]);
  });
});
