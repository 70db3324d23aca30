import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregate, aggregateTracks, GROUP_KEYS, UNATTRIBUTED, type Filters, type GroupKey, type StatsResult } from '../../src/accounting/aggregate.js';
import { MemoryNames, trackColumnsOf } from '../../src/accounting/columns.js';
import { Aggregator } from '../../src/accounting/kernel/aggregator.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { lifetimesOf, type Track } from '../../src/accounting/reconstruct.js';
import { referenceAggregate } from '../../src/accounting/reference.js';
import type { Lifetime, Period } from '../../src/accounting/types.js';
import { amounts, us } from '../helpers/builders.js';
import { amountsArbitrary, estimateArbitrary, trackArbitrary } from '../helpers/track-arbitraries.js';

/**
 * The fast kernel against the plain reference: for any lifetimes, period, grouping and
 * filters, the same result, number for number and row for row.
 */

const HOUR = 3_600_000_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

const ZONES = ['UTC', 'Europe/Madrid', 'America/New_York', 'Australia/Lord_Howe'];

/** A period of 1 to 400 days from a day between 2019 and 2029, in a zone with DST, as the CLI resolves --from/--to/--tz. */
const periodArb: fc.Arbitrary<Period> = fc
  .record({ first: fc.integer({ min: 0, max: 3650 }), days: fc.integer({ min: 1, max: 400 }), tz: fc.constantFrom(...ZONES) })
  .map(({ first, days, tz }) => {
    const day = (n: number) => new Date(Date.UTC(2019, 0, 1 + n)).toISOString().slice(0, 10);
    return resolvePeriod(day(first), day(first + days - 1), tz);
  });

/** A shift in µs: none, a few µs or seconds (near an edge), or up to years. */
const shiftArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -5, max: 5 }),
  fc.integer({ min: -HOUR, max: HOUR }),
  fc.integer({ min: -4 * YEAR, max: 4 * YEAR }),
);
const lengthArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 40 * DAY }), fc.integer({ min: 0, max: 3 * YEAR }));

const amountsArb = amountsArbitrary;

/**
 * Small pools of names, so that groups and counts collide; job ids reuse namespace names (a
 * job is namespace and id). Namespaces of the unnamed cluster and of clusters A and B share
 * names, as kept: qualified by their cluster (docs/accounting.md#clusters).
 */
const NAMESPACES = ['ns1', 'ns2', 'a', 'A/ns1', 'B/ns1', 'B/a'];
const BARE_NAMESPACES = ['ns1', 'ns2', 'a'];
const CLUSTERS = ['(unnamed)', 'A', 'B'];
const JOBS = ['j1', 'j2', 'a', 'ns1'];
const PEOPLE = ['alice', 'bob', 'carol'];
const GROUPS = ['g1', 'g2'];
const COMPONENTS = ['jupyter', 'deployment'];
const nullable = (names: string[]) => fc.oneof(fc.constant(null), fc.constantFrom(...names));

const attributionArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  jobId: fc.constantFrom(...JOBS),
  user: nullable(PEOPLE),
  group: nullable(GROUPS),
  component: nullable(COMPONENTS),
  amounts: amountsArb,
});

/** Where a lifetime starts: near the period's start or end, shifted (before, inside or after the period). */
const startArb = (p: Period) => fc.tuple(fc.constantFrom(p.startUs, p.endUs), shiftArb).map(([at, shift]) => at + shift);

const lifetimeArb = (p: Period): fc.Arbitrary<Lifetime> =>
  fc
    .record({
      a: attributionArb,
      startUs: startArb(p),
      endKind: fc.constantFrom('ended' as const, 'open' as const, 'vanished' as const),
      toLow: lengthArb,
      // Sometimes the (low) end falls on an edge of the period, or just beside it.
      atEdge: fc.option(startArb(p), { freq: 3 }),
      toEstimate: lengthArb,
      toHigh: lengthArb,
    })
    .map(({ a, startUs, endKind, toLow, atEdge, toEstimate, toHigh }) => {
      // Only a vanished allocation's end is uncertain: low ≤ estimate ≤ high; the others end once.
      const lowEndUs = atEdge === null ? startUs + toLow : Math.max(startUs, atEdge);
      const endUs = endKind === 'vanished' ? lowEndUs + toEstimate : lowEndUs;
      const highEndUs = endKind === 'vanished' ? endUs + toHigh : lowEndUs;
      return { key: 'nomad:x', jobName: null, node: null, ...a, startUs, endUs, lowEndUs, highEndUs, endKind };
    });

/** Filters by names that occur, the unattributed row, and names that never occur. */
const filterArb = (names: string[]) =>
  fc.oneof(fc.constant(undefined), fc.constant([]), fc.subarray([...names, UNATTRIBUTED, 'nobody'], { minLength: 1 }));
const filtersArb: fc.Arbitrary<Filters> = fc.record(
  { clusters: filterArb(CLUSTERS), namespaces: filterArb(BARE_NAMESPACES), users: filterArb(PEOPLE), groups: filterArb(GROUPS) },
  { requiredKeys: [] },
);

/** Any subset of the group keys, in any order, none included. */
const groupingArb: fc.Arbitrary<GroupKey[]> = fc.shuffledSubarray([...GROUP_KEYS]);

/** Runs `f` with the kernel's two-key slot tables on or off (off: every pair goes through its Map). */
function withPairTables<T>(on: boolean, f: () => T): T {
  const cells = Aggregator.pairTableCells;
  Aggregator.pairTableCells = on ? cells : 0;
  try {
    return f();
  } finally {
    Aggregator.pairTableCells = cells;
  }
}

describe('the kernel against the reference', () => {
  it('aggregate() equals the reference for any lifetimes, period, grouping and filters', () => {
    const caseArb = periodArb.chain((period) =>
      fc.record({
        period: fc.constant(period),
        lifetimes: fc.array(lifetimeArb(period), { maxLength: 12 }),
        by: groupingArb,
        filters: filtersArb,
        pairTables: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(caseArb, ({ period, lifetimes, by, filters, pairTables }) => {
        const kernel = withPairTables(pairTables, () => aggregate(lifetimes, period, by, filters));
        expect(kernel).toEqual(referenceAggregate(lifetimes, period, by, filters));
      }),
      { numRuns: 1500 },
    );
  });

  it('aggregateTracks() equals the reference on the lifetimes of the same tracks, under any estimate', () => {
    const trackArb = (p: Period): fc.Arbitrary<Track> => trackArbitrary(attributionArb, startArb(p), lengthArb, p.startUs);
    const estimateArb = estimateArbitrary;
    const caseArb = periodArb.chain((period) =>
      fc.record({
        period: fc.constant(period),
        tracks: fc.array(trackArb(period), { maxLength: 12 }),
        by: groupingArb,
        filters: filtersArb,
        estimate: estimateArb,
        // Tracks come in batches (index segments); bounds per group or in total only (tables and CSV).
        batch: fc.integer({ min: 1, max: 5 }),
        groupBounds: fc.boolean(),
        pairTables: fc.boolean(),
        fewGroups: fc.constantFrom(0, 64),
      }),
    );
    fc.assert(
      fc.property(caseArb, ({ period, tracks, by, filters, estimate, batch, groupBounds, pairTables, fewGroups }) => {
        const few = Aggregator.fewGroups;
        Aggregator.fewGroups = fewGroups;
        try {
          // The columns are packed first, as history views do: the kernel looks filters up in a full dictionary.
          const names = new MemoryNames();
          const columns = [...trackColumnsOf(tracks, names, batch)];
          const { tracks: count, ...kernel } = withPairTables(pairTables, () => aggregateTracks(columns, names, period, by, filters, estimate, { groupBounds }));
          const lifetimes = [...lifetimesOf(tracks, estimate)];
          const expected: StatsResult = referenceAggregate(lifetimes, period, by, filters);
          if (!groupBounds) {
            // Bounds in total only: their rows are left empty.
            expect([kernel.low.rows, kernel.high.rows]).toEqual([[], []]);
            kernel.low.rows = expected.low.rows;
            kernel.high.rows = expected.high.rows;
          }
          expect(kernel).toEqual(expected);
          expect(count).toBe(lifetimes.length);
        } finally {
          Aggregator.fewGroups = few;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('the reference, worked by hand', () => {
  const period = resolvePeriod('2024-09-01', '2024-09-01', 'UTC');
  const lifetime = (p: Partial<Lifetime> & Pick<Lifetime, 'startUs' | 'endUs'>): Lifetime => ({
    key: 'nomad:x', namespace: 'ns1', jobId: 'j1', jobName: null, user: 'alice', group: null, component: null, node: null,
    amounts: amounts({ cpu: 1 }), lowEndUs: p.endUs, highEndUs: p.endUs, endKind: 'ended', ...p,
  });

  it('sums 1 TiB of memory over a day exactly, past 2^53 byte-microseconds', () => {
    // 2^40 bytes × 86 400 000 000 µs = 9.5e22 > 2^53; 1024 GiB × 24 h = 24 576 GiB-hours.
    const r = referenceAggregate([lifetime({ startUs: us('2024-08-01T00:00:00Z'), endUs: us('2024-10-01T00:00:00Z'), amounts: { ...amounts(), memoryBytes: 2 ** 40 } })], period, []);
    expect(r.total).toMatchObject({ memory_gib_hours: 24_576, allocation_hours: 24, allocations: 1, jobs: 1, users: 1 });
  });

  it('ends a vanished allocation at its estimate, and at each end of its band under low and high', () => {
    // 2 cores from 20:00; last seen holding at 21:00, gone at 23:00; estimate 22:00.
    const r = referenceAggregate(
      [lifetime({ startUs: us('2024-09-01T20:00:00Z'), endUs: us('2024-09-01T22:00:00Z'), lowEndUs: us('2024-09-01T21:00:00Z'), highEndUs: us('2024-09-01T23:00:00Z'), endKind: 'vanished', amounts: amounts({ cpu: 2 }) })],
      period,
      ['user'],
    );
    expect([r.total.cpu_hours, r.low.total.cpu_hours, r.high.total.cpu_hours, r.vanished, r.open]).toEqual([4, 2, 6, 1, 0]);
    expect(r.rows).toEqual([{ user: 'alice', cpu_hours: 4, cpu_mhz_hours: 0, gpu_hours: 0, memory_gib_hours: 0, disk_gib_hours: 0, allocation_hours: 2, jobs: 1, users: 1, allocations: 1 }]);
  });
});
