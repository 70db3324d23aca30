import { describe, expect, it } from 'vitest';
import { aggregate, divide, type GroupKey } from '../../src/accounting/aggregate.js';
import { LifetimeColumns, MemoryNames } from '../../src/accounting/columns.js';
import { Aggregator } from '../../src/accounting/kernel/aggregator.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { estimateLifetimes, Reconstructor, type EstimateOptions } from '../../src/accounting/reconstruct.js';
import type { GapPolicy, SnapshotObservations } from '../../src/accounting/types.js';
import { obs, snap } from '../helpers/builders.js';

const HOUR = 3_600_000_000;

function stats(
  snaps: SnapshotObservations[],
  from: string,
  to = from,
  opts: Partial<EstimateOptions> & { tz?: string; by?: GroupKey[] } = {},
) {
  const rec = new Reconstructor();
  snaps.forEach((s) => rec.add(s));
  const lifetimes = estimateLifetimes(rec.tracksWithLifetime(), { gapPolicy: opts.gapPolicy ?? 'midpoint', gcWindowUs: opts.gcWindowUs ?? null });
  return aggregate(lifetimes, resolvePeriod(from, to, opts.tz ?? 'UTC'), opts.by ?? ['namespace']);
}

describe('clipping to the period', () => {
  it('counts only the part of each lifetime inside [from 00:00, to+1 00:00)', () => {
    const r = stats(
      [
        snap('2024-08-31T23:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-08-31T22:00:00Z', res: { cpu: 2 } })]),
        snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'complete', start: '2024-08-31T22:00:00Z', end: '2024-09-01T02:00:00Z', res: { cpu: 2 } })]),
        snap('2024-09-02T06:00:00Z', [obs({ id: 'b', status: 'complete', start: '2024-09-01T23:00:00Z', end: '2024-09-02T03:00:00Z', res: { gpu: 1 } })]),
      ],
      '2024-09-01',
    );
    // a: 2 cores x 2 h inside the day; b: 1 GPU x 1 h inside the day.
    expect(r.total.cpu_hours).toBe(4);
    expect(r.total.gpu_hours).toBe(1);
    expect(r.total.allocations).toBe(2);
    expect(r.total.jobs).toBe(2);
    expect(r.total.users).toBe(1);
  });

  it('leaves out allocations that end exactly at the period start (half-open)', () => {
    const r = stats([snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'complete', start: '2024-08-31T20:00:00Z', end: '2024-09-01T00:00:00Z' })])], '2024-09-01');
    expect(r.total).toMatchObject({ cpu_hours: 0, allocations: 0, jobs: 0, users: 0 });
    expect(r.rows).toEqual([]);
  });

  it('sums memory and disk exactly in GiB-hours', () => {
    const r = stats([snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'complete', start: '2024-09-01T01:00:00Z', end: '2024-09-01T02:00:00Z', res: { memMiB: 4000, diskMiB: 30000, mhz: 11200 } })])], '2024-09-01');
    expect(r.total.memory_gib_hours).toBe(3.90625);
    expect(r.total.disk_gib_hours).toBe(29.296875);
    expect(r.total.cpu_mhz_hours).toBe(11200);
  });
});

describe('by component, and wall-clock allocation hours', () => {
  it('sums each component apart, with the unattributed row last, and counts allocation hours', () => {
    const r = stats(
      [
        snap('2024-09-01T12:00:00Z', [
          // jupyter: 2 cores x 3 h and 1 core x 5 h: 11 core-hours, 8 allocation hours.
          obs({ id: 'a', status: 'complete', start: '2024-09-01T01:00:00Z', end: '2024-09-01T04:00:00Z', component: 'jupyter', res: { cpu: 2 } }),
          obs({ id: 'b', status: 'complete', start: '2024-09-01T02:00:00Z', end: '2024-09-01T07:00:00Z', component: 'jupyter', user: 'bob', res: { cpu: 1 } }),
          // deployment: 1 GPU for 90 minutes from 23:00 the day before: 30 minutes inside the day.
          obs({ id: 'c', status: 'complete', start: '2024-08-31T23:00:00Z', end: '2024-09-01T00:30:00Z', component: 'deployment', res: { gpu: 1 } }),
          // no component: 4 cores x 2 h.
          obs({ id: 'd', status: 'complete', start: '2024-09-01T10:00:00Z', end: '2024-09-01T12:00:00Z', res: { cpu: 4 } }),
        ]),
      ],
      '2024-09-01',
      undefined,
      { by: ['component'] },
    );
    expect(r.rows.map((x) => [x.component, x.cpu_hours, x.gpu_hours, x.allocation_hours, x.users])).toEqual([
      ['deployment', 0, 0.5, 0.5, 1],
      ['jupyter', 11, 0, 8, 2],
      ['(unattributed)', 8, 0, 2, 1],
    ]);
    expect(r.total.allocation_hours).toBe(10.5);
  });
});

describe('distinct jobs', () => {
  it('counts a job id used in two namespaces as two jobs, and repeats of one job once', () => {
    const r = stats(
      [
        snap(
          '2024-09-01T12:00:00Z',
          [
            obs({ id: 'a', ns: 'ns1', job: 'train', status: 'complete', start: '2024-09-01T01:00:00Z', end: '2024-09-01T02:00:00Z' }),
            obs({ id: 'b', ns: 'ns2', job: 'train', status: 'complete', start: '2024-09-01T01:00:00Z', end: '2024-09-01T02:00:00Z' }),
            // A second allocation of ns1's job, and of ns2's, then a third job.
            obs({ id: 'c', ns: 'ns1', job: 'train', status: 'complete', start: '2024-09-01T03:00:00Z', end: '2024-09-01T04:00:00Z' }),
            obs({ id: 'd', ns: 'ns2', job: 'train', status: 'complete', start: '2024-09-01T03:00:00Z', end: '2024-09-01T04:00:00Z' }),
            obs({ id: 'e', ns: 'ns2', job: 'eval', status: 'complete', start: '2024-09-01T03:00:00Z', end: '2024-09-01T04:00:00Z' }),
          ],
          { covered: ['ns1', 'ns2'] },
        ),
      ],
      '2024-09-01',
      undefined,
      { by: ['user'] },
    );
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({ user: 'alice', jobs: 3, allocations: 5, cpu_hours: 5 });
    expect(r.total).toMatchObject({ jobs: 3, users: 1 });
  });
});

describe('an allocation still open at the last snapshot', () => {
  it('counts up to that snapshot, not to now, and is reported open', () => {
    const r = stats(
      [
        snap('2024-09-01T06:00:00Z', []),
        snap('2024-09-01T12:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T10:00:00Z', res: { cpu: 4 } })]),
      ],
      '2024-09-01',
    );
    expect(r.total.cpu_hours).toBe(8);
    expect(r.open).toBe(1);
    expect(r.vanished).toBe(0);
    expect(r.low.total.cpu_hours).toBe(8);
    expect(r.high.total.cpu_hours).toBe(8);
  });
});

describe('an allocation that vanished between snapshots', () => {
  // Seen holding at 06:00 (S), absent from the covering snapshot at 12:00 (S'); started 01:00.
  const absent = (kind: 'native' | 'legacy') => [
    snap('2024-09-01T00:00:00Z', [], { kind }),
    snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })], { kind }),
    snap('2024-09-01T12:00:00Z', [], { kind }),
  ];
  const cases: [string, GapPolicy, number | null, 'native' | 'legacy', number][] = [
    ['last-seen ends at S', 'last-seen', null, 'native', 5],
    ['next ends at S\'', 'next', null, 'native', 11],
    ['midpoint of (S, S\'-1h] for native Nomad', 'midpoint', null, 'native', 7.5],
    ['midpoint of (S, S\'-4h] for AI4OS files', 'midpoint', null, 'legacy', 6],
    ['midpoint of (S, S\'] with --gc-window 0', 'midpoint', 0, 'native', 8],
    ['S when the GC window covers the whole gap', 'midpoint', 8 * HOUR, 'native', 5],
  ];
  for (const [name, gapPolicy, gcWindowUs, kind, hours] of cases) {
    it(name, () => {
      const r = stats(absent(kind), '2024-09-01', '2024-09-01', { gapPolicy, gcWindowUs });
      expect(r.total.cpu_hours).toBe(hours);
      expect(r.low.total.cpu_hours).toBe(5);
      expect(r.high.total.cpu_hours).toBe(11);
      expect(r.vanished).toBe(1);
    });
  }

  it('listed terminal without an end: it ended after S\' - G, midpoint of (S\'-G, S\']', () => {
    const snaps = [
      snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })]),
      snap('2024-09-01T12:00:00Z', [obs({ id: 'a', status: 'failed', start: '2024-09-01T01:00:00Z', end: null })]),
    ];
    expect(stats(snaps, '2024-09-01').total.cpu_hours).toBe(10.5);
    expect(stats(snaps, '2024-09-01', '2024-09-01', { gcWindowUs: 0 }).total.cpu_hours).toBe(11);
    expect(stats(snaps, '2024-09-01', '2024-09-01', { gcWindowUs: 2 * HOUR }).total.cpu_hours).toBe(10);
  });

  it('is not taken as ended by a snapshot that failed to cover its namespace', () => {
    const r = stats(
      [
        snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })]),
        snap('2024-09-01T12:00:00Z', [], { covered: ['other'] }),
        snap('2024-09-01T18:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })]),
      ],
      '2024-09-01',
    );
    expect(r.total.cpu_hours).toBe(17);
    expect(r.vanished).toBe(0);
    expect(r.open).toBe(1);
  });
});

describe('an in-place restart', () => {
  it('keeps the earliest start: the allocation held its resources all along', () => {
    const r = stats(
      [
        snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })]),
        snap('2024-09-01T12:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T10:00:00Z' })]),
        snap('2024-09-01T18:00:00Z', [obs({ id: 'a', status: 'complete', start: '2024-09-01T10:00:00Z', end: '2024-09-01T17:00:00Z' })]),
      ],
      '2024-09-01',
    );
    expect(r.total.cpu_hours).toBe(16);
  });
});

describe('a disconnected node', () => {
  it('holds resources while unknown, until the allocation is declared lost', () => {
    const r = stats(
      [
        snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })]),
        snap('2024-09-01T12:00:00Z', [obs({ id: 'a', status: 'unknown', start: '2024-09-01T01:00:00Z' })]),
        // lost: the mapping bounds the end by ModifyTime (14:00)
        snap('2024-09-01T18:00:00Z', [obs({ id: 'a', status: 'lost', start: '2024-09-01T01:00:00Z', end: '2024-09-01T14:00:00Z' })]),
      ],
      '2024-09-01',
    );
    expect(r.total.cpu_hours).toBe(13);
  });

  it('is open while still unknown at the last snapshot (legacy status down)', () => {
    const r = stats(
      [
        snap('2024-09-01T06:00:00Z', [obs({ id: 'a', status: 'running', start: '2024-09-01T01:00:00Z' })], { kind: 'legacy' }),
        snap('2024-09-01T12:00:00Z', [obs({ id: 'a', status: 'down', start: '2024-09-01T01:00:00Z' })], { kind: 'legacy' }),
      ],
      '2024-09-01',
    );
    expect(r.total.cpu_hours).toBe(11);
    expect(r.open).toBe(1);
  });
});

describe('days in a time zone', () => {
  const allMonth = (from: string, to: string) => [
    snap(from, [obs({ id: 'a', status: 'running', start: from })]),
    snap(to, [obs({ id: 'a', status: 'running', start: from })]),
  ];
  it('a 23-hour day when Europe/Madrid springs forward (2024-03-31)', () => {
    const r = stats(allMonth('2024-03-25T00:00:00Z', '2024-04-05T00:00:00Z'), '2024-03-31', '2024-03-31', { tz: 'Europe/Madrid' });
    expect(r.total.cpu_hours).toBe(23);
    const p = resolvePeriod('2024-03-31', '2024-03-31', 'Europe/Madrid');
    expect(new Date(p.startUs / 1000).toISOString()).toBe('2024-03-30T23:00:00.000Z');
    expect(new Date(p.endUs / 1000).toISOString()).toBe('2024-03-31T22:00:00.000Z');
  });
  it('a 25-hour day when Europe/Madrid falls back (2024-10-27)', () => {
    const r = stats(allMonth('2024-10-20T00:00:00Z', '2024-11-05T00:00:00Z'), '2024-10-27', '2024-10-27', { tz: 'Europe/Madrid' });
    expect(r.total.cpu_hours).toBe(25);
  });
  it('29 February exists in 2024 and the three days around it are 72 h', () => {
    const r = stats(allMonth('2024-02-20T00:00:00Z', '2024-03-10T00:00:00Z'), '2024-02-28', '2024-03-01');
    expect(r.total.cpu_hours).toBe(72);
    expect(stats(allMonth('2024-02-20T00:00:00Z', '2024-03-10T00:00:00Z'), '2024-02-29').total.cpu_hours).toBe(24);
  });
});

describe('grouping and counting', () => {
  const snaps = [
    snap('2024-09-01T12:00:00Z', [
      obs({ id: 'a1', job: 'j1', user: 'alice', status: 'complete', start: '2024-09-01T00:00:00Z', end: '2024-09-01T01:00:00Z' }),
      obs({ id: 'a2', job: 'j1', user: 'alice', status: 'complete', start: '2024-09-01T02:00:00Z', end: '2024-09-01T03:00:00Z' }),
      obs({ id: 'b1', job: 'j2', user: 'bob', status: 'complete', start: '2024-09-01T00:00:00Z', end: '2024-09-01T02:00:00Z' }),
      obs({ id: 'c1', job: 'j3', user: null, status: 'complete', start: '2024-09-01T00:00:00Z', end: '2024-09-01T04:00:00Z', ns: 'ns2' }),
    ], { covered: ['ns1', 'ns2'] }),
  ];
  it('counts distinct jobs and users; unattributed is a row but not a user', () => {
    const r = stats(snaps, '2024-09-01', '2024-09-01', { by: ['user'] });
    expect(r.rows.map((x) => [x.user, x.cpu_hours, x.jobs, x.users, x.allocations])).toEqual([
      ['alice', 2, 1, 1, 2],
      ['bob', 2, 1, 1, 1],
      ['(unattributed)', 4, 1, 0, 1],
    ]);
    expect(r.total).toMatchObject({ cpu_hours: 8, jobs: 3, users: 2, allocations: 4 });
  });
  it('nests groups and carries each key', () => {
    const r = stats(snaps, '2024-09-01', '2024-09-01', { by: ['namespace', 'user'] });
    expect(r.rows.map((x) => [x.namespace, x.user, x.cpu_hours])).toEqual([
      ['ns1', 'alice', 2],
      ['ns1', 'bob', 2],
      ['ns2', '(unattributed)', 4],
    ]);
  });
});

describe('grouping edge cases', () => {
  const day = resolvePeriod('2024-09-01', '2024-09-01', 'UTC');
  const cpu = { cpuMilli: 1000, cpuMhz: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 };
  const life = (id: string, job: string, user: string | null, hours: number, ns = 'ns1') => ({
    key: `nomad:${id}`, namespace: ns, jobId: job, jobName: null, user, group: null, component: null, node: null, amounts: cpu,
    startUs: day.startUs, endUs: day.startUs + hours * HOUR, lowEndUs: day.startUs + hours * HOUR, highEndUs: day.startUs + hours * HOUR, endKind: 'ended' as const,
  });
  // Job j1 ran for two users; j1 also exists in ns2, a different job there.
  const lifetimes = [life('a', 'j1', 'alice', 1), life('b', 'j1', 'bob', 2), life('c', 'j2', 'bob', 3), life('d', 'j1', null, 4, 'ns2')];

  it('a job under two users counts in both rows and once in the total', () => {
    const r = aggregate(lifetimes, day, ['user']);
    expect(r.rows.map((x) => [x.user, x.cpu_hours, x.jobs, x.users])).toEqual([
      ['alice', 1, 1, 1],
      ['bob', 5, 2, 1],
      ['(unattributed)', 4, 1, 0],
    ]);
    // (ns1, j1), (ns1, j2), (ns2, j1): three jobs, two users.
    expect(r.total).toMatchObject({ cpu_hours: 10, jobs: 3, users: 2, allocations: 4 });
    expect(aggregate(lifetimes, day, ['job']).rows.map((x) => [x.job, x.cpu_hours, x.jobs])).toEqual([
      ['j1', 7, 2],
      ['j2', 3, 1],
    ]);
  });

  it('a job under two users counts in both rows by namespace and user, and once in the total', () => {
    const r = aggregate(lifetimes, day, ['namespace', 'user']);
    expect(r.rows.map((x) => [x.namespace, x.user, x.jobs, x.users])).toEqual([
      ['ns1', 'alice', 1, 1],
      ['ns1', 'bob', 2, 1],
      ['ns2', '(unattributed)', 1, 0],
    ]);
    // (ns1, j1), (ns1, j2), (ns2, j1): three jobs, not the rows' four.
    expect(r.total).toMatchObject({ jobs: 3, users: 2, allocations: 4 });
  });

  it('counts jobs and users once across settled and vanished allocations, in each bound', () => {
    // ns1: alice's j1 ended (1 h); alice's j1 vanished (2 to 4 h: midpoint 3 h); bob's j5
    // vanished (from 6 h, 6 to 8 h); ns2: carol's j1, ended (4 h), a job of its own.
    const vanished = (id: string, job: string, user: string, low: number, high: number) => ({
      ...life(id, job, user, (low + high) / 2), lowEndUs: day.startUs + low * HOUR, highEndUs: day.startUs + high * HOUR, endKind: 'vanished' as const,
    });
    const late = { ...vanished('f', 'j5', 'bob', 8, 8), startUs: day.startUs + 6 * HOUR, endUs: day.startUs + 7 * HOUR, lowEndUs: day.startUs + 6 * HOUR };
    const mixed = [life('a', 'j1', 'alice', 1), vanished('e', 'j1', 'alice', 2, 4), late, life('g', 'j1', 'carol', 4, 'ns2')];
    const r = aggregate(mixed, day, ['namespace']);
    expect(r.rows.map((x) => [x.namespace, x.cpu_hours, x.jobs, x.users, x.allocations])).toEqual([
      ['ns1', 5, 2, 2, 3],
      ['ns2', 4, 1, 1, 1],
    ]);
    expect(r.total).toMatchObject({ cpu_hours: 9, jobs: 3, users: 3, allocations: 4 });
    // The low bound: bob's allocation may have ended as it started, and is left out.
    expect(r.low.rows.map((x) => [x.namespace, x.cpu_hours, x.jobs, x.users, x.allocations])).toEqual([
      ['ns1', 3, 1, 1, 2],
      ['ns2', 4, 1, 1, 1],
    ]);
    expect(r.low.total).toMatchObject({ cpu_hours: 7, jobs: 2, users: 2, allocations: 3 });
    expect(r.high.total).toMatchObject({ cpu_hours: 11, jobs: 3, users: 3, allocations: 4 });
    // By user: alice's job once, carol's j1 in ns2 a job of its own in the total.
    const byUser = aggregate(mixed, day, ['user']);
    expect(byUser.rows.map((x) => [x.user, x.jobs, x.allocations])).toEqual([
      ['alice', 1, 2],
      ['bob', 1, 1],
      ['carol', 1, 1],
    ]);
    expect(byUser.total).toMatchObject({ jobs: 3, users: 3 });
    expect(byUser.low.total).toMatchObject({ jobs: 2, users: 2 });
  });

  it('a group held only by an allocation that may have ended as it started has no row in the low bound', () => {
    // ns1: alice's j1 ended (1 h). ns3: dave's j7 from 6 h, seen only then, gone by 8 h (midpoint 7 h).
    const gone = { ...life('h', 'j7', 'dave', 7, 'ns3'), startUs: day.startUs + 6 * HOUR, lowEndUs: day.startUs + 6 * HOUR, highEndUs: day.startUs + 8 * HOUR, endKind: 'vanished' as const };
    const r = aggregate([life('a', 'j1', 'alice', 1), gone], day, ['namespace']);
    const row = (x: { namespace?: string; cpu_hours: number; jobs: number; users: number; allocations: number }) => [x.namespace, x.cpu_hours, x.jobs, x.users, x.allocations];
    expect(r.rows.map(row)).toEqual([
      ['ns1', 1, 1, 1, 1],
      ['ns3', 1, 1, 1, 1],
    ]);
    expect(r.low.rows.map(row)).toEqual([['ns1', 1, 1, 1, 1]]);
    expect(r.high.rows.map(row)).toEqual([
      ['ns1', 1, 1, 1, 1],
      ['ns3', 2, 1, 1, 1],
    ]);
    expect([r.total, r.low.total, r.high.total].map((t) => [t.cpu_hours, t.jobs, t.users, t.allocations])).toEqual([
      [2, 2, 2, 2],
      [1, 1, 1, 1],
      [3, 2, 2, 2],
    ]);
    expect(r.vanished).toBe(1);
  });

  it('two keys group the same through slot tables and through the map that takes over past their room', () => {
    const rows = (by: GroupKey[]) => {
      const r = aggregate(lifetimes, day, by);
      return r.rows.map((x) => [x.user, x.namespace, x.cpu_hours, x.jobs, x.allocations]);
    };
    const expected = [
      ['alice', 'ns1', 1, 1, 1],
      ['bob', 'ns1', 5, 2, 2],
      ['(unattributed)', 'ns2', 4, 1, 1],
    ];
    expect(rows(['user', 'namespace'])).toEqual(expected);
    const room = Aggregator.pairTableCells;
    try {
      Aggregator.pairTableCells = 0;
      expect(rows(['user', 'namespace'])).toEqual(expected);
    } finally {
      Aggregator.pairTableCells = room;
    }
  });

  it('a user literally named "(unattributed)" shares the row of allocations without one', () => {
    const r = aggregate([...lifetimes, life('e', 'j9', '(unattributed)', 5)], day, ['user']);
    expect(r.rows.map((x) => [x.user, x.cpu_hours, x.users])).toEqual([
      ['alice', 1, 1],
      ['bob', 5, 1],
      ['(unattributed)', 9, 1],
    ]);
  });

  it('filters select by name, "(unattributed)" included; an unknown name selects nothing', () => {
    expect(aggregate(lifetimes, day, ['namespace'], { users: ['(unattributed)'] }).total).toMatchObject({ cpu_hours: 4, allocations: 1 });
    expect(aggregate(lifetimes, day, ['namespace'], { users: ['bob'], namespaces: ['ns1'] }).total).toMatchObject({ cpu_hours: 5, jobs: 2 });
    expect(aggregate(lifetimes, day, ['namespace'], { users: ['carol'] })).toMatchObject({ rows: [], total: { cpu_hours: 0, jobs: 0, allocations: 0 } });
  });
});

describe('exact sums at scale', () => {
  it('microseconds summed past 2^53 lose nothing', () => {
    // 400 allocations of 10^14 µs (about 3.2 years) each, 7 cores and 3 GiB + 1 byte: 4 x 10^16 µs
    // in all, beyond 2^53, so the per-flavour sum must spill into a BigInt.
    const period = resolvePeriod('2020-01-01', '2029-12-31', 'UTC');
    const start = period.startUs;
    const amounts = { cpuMilli: 7000, cpuMhz: 0, memoryBytes: 3 * 2 ** 30 + 1, diskBytes: 0, gpu: 0 };
    const lifetimes = Array.from({ length: 400 }, (_, i) => ({
      key: `nomad:a${i}`, namespace: 'ns', jobId: `j${i % 3}`, jobName: null, user: `u${i % 5}`, group: null, component: null, node: null,
      amounts, startUs: start + i, endUs: start + i + 1e14, lowEndUs: start + i + 1e14, highEndUs: start + i + 1e14, endKind: 'ended' as const,
    }));
    const r = aggregate(lifetimes, period, ['namespace']);
    const us = 400n * 10n ** 14n;
    // 7 cores x 4e16 µs / 3.6e9 µs per hour = 77,777,777.77... core-hours.
    expect(r.total.cpu_hours).toBe(Number(7000n * us / 3_600_000_000_000n) + Number((7000n * us) % 3_600_000_000_000n) / 3.6e12);
    expect(r.total.cpu_hours).toBeCloseTo(77_777_777.7778, 3);
    const memExact = BigInt(amounts.memoryBytes) * us;
    const div = 2n ** 30n * 3_600_000_000n;
    expect(r.total.memory_gib_hours).toBe(Number(memExact / div) + Number(memExact % div) / Number(div));
    expect(r.total).toMatchObject({ jobs: 3, users: 5, allocations: 400 });
  });

  it('an amount shared by flavours that each stay below 2^53 µs still sums exactly past it', () => {
    // Two flavours with 7 cores (memory 1 and 2 GiB), 50 allocations of 10^14 µs each:
    // 5 x 10^15 µs per flavour (< 2^53), 10^16 µs for the 7-core amount (> 2^53).
    const period = resolvePeriod('2020-01-01', '2029-12-31', 'UTC');
    const lifetimes = Array.from({ length: 100 }, (_, i) => ({
      key: `nomad:b${i}`, namespace: 'ns', jobId: `j${i}`, jobName: null, user: null, group: null, component: null, node: null,
      amounts: { cpuMilli: 7000, cpuMhz: 0, memoryBytes: (1 + (i % 2)) * 2 ** 30, diskBytes: 0, gpu: 0 },
      startUs: period.startUs + i, endUs: period.startUs + i + 1e14, lowEndUs: period.startUs + i + 1e14, highEndUs: period.startUs + i + 1e14, endKind: 'ended' as const,
    }));
    const r = aggregate(lifetimes, period, ['namespace']);
    const cpu = 7000n * 10n ** 16n;
    expect(r.total.cpu_hours).toBe(Number(cpu / 3_600_000_000_000n) + Number(cpu % 3_600_000_000_000n) / 3.6e12);
    // 1 GiB x 5e15 + 2 GiB x 5e15 µs = 1.5e16 GiB-µs: 15e15 / 3.6e9 GiB-hours.
    expect(r.total.memory_gib_hours).toBe(Number(15n * 10n ** 15n / 3_600_000_000n) + Number((15n * 10n ** 15n) % 3_600_000_000n) / 3.6e9);
    expect(r.total.allocation_hours).toBe(Number(10n ** 16n / 3_600_000_000n) + Number(10n ** 16n % 3_600_000_000n) / 3.6e9);
  });

  it('every group and bound equals a BigInt sum per allocation, for amounts of every size', () => {
    // A fixed pseudo-random draw: amounts from 1 to 2^45 (odd, powers of two, MiB multiples),
    // durations from 1 µs to 30 years, a third vanished; summed here one allocation at a time.
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T,>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
    const amount = () => pick([0, 1, 3, 1000, 2 ** 20 * 7, 2 ** 30, 2 ** 45, 2 ** 45 - 1, 123_456_789, 2 ** 33 * 3]);
    const period = resolvePeriod('2000-01-01', '2039-12-31', 'UTC');
    const lifetimes = Array.from({ length: 600 }, (_, i) => {
      const startUs = period.startUs + Math.floor(next() * 1e15);
      const us = pick([1, 999, 3_600_000_000, 1e12, 9.5e14]);
      const vanished = i % 3 === 0;
      return {
        key: `nomad:r${i}`, namespace: pick(['a', 'b']), jobId: `j${i % 40}`, jobName: null, user: `u${i % 7}`, group: null, component: null, node: null,
        amounts: { cpuMilli: amount(), cpuMhz: amount(), memoryBytes: amount(), diskBytes: amount(), gpu: pick([0, 1, 8]) },
        startUs, endUs: startUs + us, lowEndUs: startUs + (vanished ? Math.floor(us / 3) : us), highEndUs: startUs + (vanished ? us * 2 : us),
        endKind: vanished ? ('vanished' as const) : ('ended' as const),
      };
    });
    const r = aggregate(lifetimes, period, ['namespace', 'user']);
    const fields = [['cpuMilli', 'cpu_hours', 3_600_000_000_000n], ['cpuMhz', 'cpu_mhz_hours', 3_600_000_000n], ['gpu', 'gpu_hours', 3_600_000_000n], ['memoryBytes', 'memory_gib_hours', 2n ** 30n * 3_600_000_000n], ['diskBytes', 'disk_gib_hours', 2n ** 30n * 3_600_000_000n]] as const;
    const exact = (n: bigint, d: bigint) => Number(n / d) + Number(n % d) / Number(d);
    const end = { est: 'endUs', low: 'lowEndUs', high: 'highEndUs' } as const;
    for (const [bound, rows] of [['est', r.rows], ['low', r.low.rows], ['high', r.high.rows]] as const) {
      expect(rows.length).toBe(14);
      for (const row of rows) {
        const mine = lifetimes.filter((l) => l.namespace === row.namespace && l.user === row.user);
        for (const [amountField, hoursField, divisor] of fields) {
          const held = (l: (typeof mine)[number]) => Math.max(0, Math.min(l[end[bound]], period.endUs) - l.startUs);
          const sum = mine.reduce((n, l) => n + BigInt(l.amounts[amountField]) * BigInt(held(l)), 0n);
          expect(row[hoursField]).toBe(exact(sum, divisor));
        }
      }
    }
  });
});

describe('bounds in total only', () => {
  it('give the same totals and rows as bounds per group, with the bounds\' rows left out', () => {
    // Vanished allocations with empty low bounds (one seen only when it started), a job under
    // two users, a user in two namespaces, unattributed ones: every way counts can differ.
    const day = resolvePeriod('2024-09-01', '2024-09-01', 'UTC');
    const cpu = { cpuMilli: 1000, cpuMhz: 0, memoryBytes: 2 ** 31, diskBytes: 0, gpu: 0 };
    const at = (h: number) => day.startUs + h * HOUR;
    const life = (id: string, ns: string, job: string, user: string | null, start: number, low: number, high: number) => ({
      key: `nomad:${id}`, namespace: ns, jobId: job, jobName: null, user, group: null, component: null, node: null, amounts: cpu,
      startUs: at(start), endUs: at((low + high) / 2), lowEndUs: at(low), highEndUs: at(high), endKind: low === high ? ('ended' as const) : ('vanished' as const),
    });
    const lifetimes = [
      life('a', 'ns1', 'j1', 'alice', 0, 2, 2), life('b', 'ns1', 'j1', 'bob', 1, 3, 5), life('c', 'ns2', 'j2', 'alice', 6, 6, 9),
      life('d', 'ns2', 'j3', null, 2, 4, 4), life('e', 'ns1', 'j4', 'carol', 20, 20, 30), life('f', 'ns2', 'j1', 'bob', 3, 3, 3.5),
    ];
    const names = new MemoryNames();
    const batch = new LifetimeColumns(lifetimes.length);
    for (const l of lifetimes) batch.push(l, names);
    // Few groups sum their bounds per group even when only the totals are wanted: here every
    // count of groups is "many", so that the totals over all entries are what is tested.
    const run = (by: GroupKey[], groupBounds: boolean) => {
      const few = Aggregator.fewGroups;
      try {
        Aggregator.fewGroups = 0;
        const agg = new Aggregator(day, by, {}, names, { groupBounds });
        agg.add(batch);
        return agg.result();
      } finally {
        Aggregator.fewGroups = few;
      }
    };
    for (const by of [['namespace'], ['user'], ['namespace', 'user'], ['job']] as GroupKey[][]) {
      const each = run(by, true);
      const total = run(by, false);
      expect(total.rows).toEqual(each.rows);
      expect(total.total).toEqual(each.total);
      for (const bound of ['low', 'high'] as const) {
        expect(total[bound].total).toEqual(each[bound].total);
        expect(total[bound].rows).toEqual([]);
        expect(each[bound].rows.length).toBeGreaterThan(0);
      }
    }
    // By hand: the low bound leaves out c and carol's e (seen only as they started) and f
    // (gone as it came): a, b and d, 2 h each; jobs (ns1, j1) and (ns2, j3); alice and bob.
    // The high bound has all six: 2 + 4 + 3 + 2 + 4 (the day ends at 24 h) + 0.5 h, five
    // jobs ((ns2, j1) is not (ns1, j1)), three users.
    for (const by of [['namespace'], ['namespace', 'user']] as GroupKey[][]) {
      const r = run(by, false);
      // And with few groups (the default threshold), through the sums per group.
      const perGroup = new Aggregator(day, by, {}, names, { groupBounds: false });
      perGroup.add(batch);
      const viaGroups = perGroup.result();
      expect([viaGroups.low.total, viaGroups.high.total, viaGroups.low.rows]).toEqual([r.low.total, r.high.total, []]);
      expect([r.low.total.cpu_hours, r.low.total.jobs, r.low.total.users, r.low.total.allocations]).toEqual([6, 2, 2, 3]);
      expect([r.high.total.cpu_hours, r.high.total.jobs, r.high.total.users, r.high.total.allocations]).toEqual([15.5, 5, 3, 6]);
    }
  });
});

describe('exact products', () => {
  it('amounts whose products each stay below 2^53 while their sum passes it', () => {
    // 3, 5 and 7 millicores for 10^15 µs each: 3e15 + 5e15 + 7e15 = 1.5e16 millicore-µs > 2^53.
    const period = resolvePeriod('2000-01-01', '2039-12-31', 'UTC');
    const lifetimes = [3, 5, 7].map((cpuMilli, i) => ({
      key: `nomad:p${i}`, namespace: 'ns', jobId: `j${i}`, jobName: null, user: 'u', group: null, component: null, node: null,
      amounts: { cpuMilli, cpuMhz: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 },
      startUs: period.startUs, endUs: period.startUs + 1e15, lowEndUs: period.startUs + 1e15, highEndUs: period.startUs + 1e15, endKind: 'ended' as const,
    }));
    const n = 15n * 10n ** 15n;
    const d = 3_600_000_000_000n;
    expect(aggregate(lifetimes, period, ['user']).rows[0]!.cpu_hours).toBe(Number(n / d) + Number(n % d) / Number(d));
    expect(Number(n) > Number.MAX_SAFE_INTEGER).toBe(true);
  });
});

describe('divide', () => {
  it('gives the BigInt quotient and remainder, also below 2^52 where it works in plain numbers', () => {
    const exact = (n: bigint, d: bigint) => Number(n / d) + Number(n % d) / Number(d);
    const ns = [0n, 1n, 3_599_999_999n, 3_600_000_000n, 2n ** 52n - 1n, 2n ** 52n, 2n ** 52n + 1n, 2n ** 53n + 7n, 10n ** 22n + 3n, 4503599627370495n];
    const ds = [1n, 3n, 3_600_000_000n, 3_600_000_000_000n, 2n ** 52n - 3n, 2n ** 52n, 2n ** 30n * 3_600_000_000n];
    for (const n of ns) for (const d of ds) expect(divide(n, d)).toBe(exact(n, d));
    // Quotients whose double rounds up to the next integer: (k·d − 1) / d for large k.
    for (const d of [3n, 7n, 3_600_000_000n]) {
      const n = (2n ** 52n / d) * d - 1n;
      expect(divide(n, d)).toBe(exact(n, d));
    }
  });
});
