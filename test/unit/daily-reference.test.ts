import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { divide } from '../../src/accounting/aggregate.js';
import { LifetimeColumns, MemoryNames, trackColumnsOf } from '../../src/accounting/columns.js';
import { DailySplitter, dayGrid, splitTracks, type DayGrid, type NamespaceUsage } from '../../src/accounting/daily.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { lifetimesOf, type Track } from '../../src/accounting/reconstruct.js';
import { heldUs, referenceAggregate, resourceUs } from '../../src/accounting/reference.js';
import { hourDivisor, REPORT_ORDER, type ResourceHours } from '../../src/accounting/resources.js';
import type { Lifetime, Period } from '../../src/accounting/types.js';
import { amounts, us } from '../helpers/builders.js';
import { amountsArbitrary, estimateArbitrary, trackArbitrary } from '../helpers/track-arbitraries.js';

/**
 * The daily split against the plain reference: each day of each namespace equals the
 * reference over that day alone, and each namespace's and user's total equals it over the
 * whole period, number for number. Hours are divided once from exact integer sums, so
 * "exactly" means bit for bit; the days' own hours are each rounded, so that they add up
 * exactly is checked on the integer sums (base units × µs) before the division.
 */

const HOUR = 3_600_000_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

const ZONES = ['UTC', 'Europe/Madrid', 'America/New_York', 'Australia/Lord_Howe'];

/**
 * 1 to 60 days from a day between 2019 and 2029, often weeks before a DST change (March to
 * April, September to November), in a zone with DST, resolved as the CLI resolves --from/--to/--tz.
 */
const firstDayArb = fc.oneof(
  fc.integer({ min: 0, max: 3650 }),
  fc.tuple(fc.integer({ min: 0, max: 9 }), fc.oneof(fc.integer({ min: 40, max: 100 }), fc.integer({ min: 230, max: 310 }))).map(([year, day]) => Math.round(year * 365.25) + day),
);
const periodArb: fc.Arbitrary<Period> = fc
  .record({ first: firstDayArb, days: fc.integer({ min: 1, max: 60 }), tz: fc.constantFrom(...ZONES) })
  .map(({ first, days, tz }) => {
    const day = (n: number) => new Date(Date.UTC(2019, 0, 1 + n)).toISOString().slice(0, 10);
    return resolvePeriod(day(first), day(first + days - 1), tz);
  });

const shiftArb = fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.integer({ min: -HOUR, max: HOUR }), fc.integer({ min: -YEAR, max: YEAR }));
const lengthArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 3 * DAY }), fc.integer({ min: 0, max: 90 * DAY }));

const amountsArb = amountsArbitrary;

/** Few names, so that days, users and jobs collide; job ids reuse namespace names. */
const NAMESPACES = ['ns1', 'ns2', 'a'];
const attributionArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  jobId: fc.constantFrom('j1', 'j2', 'a', 'ns1'),
  user: fc.oneof(fc.constant(null), fc.constantFrom('alice', 'bob', 'carol')),
  group: fc.constant(null),
  component: fc.constant(null),
  amounts: amountsArb,
});

/** An instant near an edge of the period or of one of its days (often a DST day's), shifted; or anywhere inside. */
const instantArb = (p: Period, grid: DayGrid) => {
  const b = grid.boundsUs;
  const dstEdges = b.filter((at, i) => (i > 0 && at - b[i - 1]! !== DAY) || (i + 1 < b.length && b[i + 1]! - at !== DAY));
  return fc.oneof(
    fc.tuple(fc.constantFrom(...(dstEdges.length > 0 ? dstEdges : b)), shiftArb).map(([at, shift]) => at + shift),
    fc.tuple(fc.constantFrom(...b), shiftArb).map(([at, shift]) => at + shift),
    fc.integer({ min: p.startUs, max: p.endUs }),
  );
};

/** Tracks as the history layer hands them over, starting near the period's and its days' edges. */
const trackArb = (p: Period, grid: DayGrid): fc.Arbitrary<Track> => trackArbitrary(attributionArb, instantArb(p, grid), lengthArb, p.startUs);
const estimateArb = estimateArbitrary;

/** The namespace filter (the only one a daily split takes): none, or names that occur, and one that never does. */
const namespacesArb = fc.oneof(fc.constant([]), fc.subarray([...NAMESPACES, 'nobody'], { minLength: 1 }));

/** The fields a daily split reports of a reference row. */
const resourceHours = (h: ResourceHours) => Object.fromEntries(REPORT_ORDER.map((r) => [r.hours, h[r.hours]]));

/** Σ amount × |lifetime ∩ span| per resource of the report order, exactly, by the reference's own helpers. */
function productsOver(lifetimes: readonly Lifetime[], span: { startUs: number; endUs: number }): bigint[] {
  return REPORT_ORDER.map((r) => lifetimes.reduce((sum, l) => sum + resourceUs(l.amounts[r.amount], heldUs(l.startUs, l.endUs, span)), 0n));
}

/** Checks one namespace's daily split against the reference over each day and over the period. */
function expectNamespaceEqualsReference(u: NamespaceUsage, lifetimes: readonly Lifetime[], period: Period, grid: DayGrid): void {
  const mine = lifetimes.filter((l) => l.namespace === u.namespace);
  const filters = { namespaces: [u.namespace] };
  const activeDays = new Map<string, string[]>();
  const activeDaysOfNamespace: string[] = [];
  const dayProducts: bigint[][] = [];
  grid.days.forEach((day, d) => {
    const span = { startUs: grid.boundsUs[d]!, endUs: grid.boundsUs[d + 1]! };
    const ref = referenceAggregate(lifetimes, span, ['user'], filters);
    const got = u.days[d]!;
    expect(got.day).toBe(day);
    expect(got.hours).toBe((span.endUs - span.startUs) / HOUR);
    expect({ ...resourceHours(got), jobs: got.jobs, users: got.users, allocations: got.allocations }).toEqual({ ...resourceHours(ref.total), jobs: ref.total.jobs, users: ref.total.users, allocations: ref.total.allocations });
    // The average held is the day's exact sum over its length: hours / the day's hours, divided once.
    const products = productsOver(mine, span);
    dayProducts.push(products);
    REPORT_ORDER.forEach((r, i) => {
      expect(divide(products[i]!, hourDivisor(r))).toBe(ref.total[r.hours]);
      expect(got.average[r.average]).toBe(divide(products[i]!, r.perUnit * BigInt(span.endUs - span.startUs)));
    });
    if (ref.total.allocations > 0) activeDaysOfNamespace.push(day);
    for (const row of ref.rows) activeDays.set(row.user!, [...(activeDays.get(row.user!) ?? []), day]);
  });

  const ref = referenceAggregate(lifetimes, period, ['user'], filters);
  expect({ ...resourceHours(u.total), jobs: u.total.jobs, users: u.total.users, allocations: u.total.allocations }).toEqual({
    ...resourceHours(ref.total), jobs: ref.total.jobs, users: ref.total.users, allocations: ref.total.allocations,
  });
  expect([u.total.firstDay, u.total.lastDay]).toEqual([activeDaysOfNamespace[0] ?? null, activeDaysOfNamespace.at(-1) ?? null]);
  expect(u.users).toEqual(
    ref.rows.map((row) => ({
      user: row.user, ...resourceHours(row), jobs: row.jobs, allocations: row.allocations,
      firstDay: activeDays.get(row.user!)![0], lastDay: activeDays.get(row.user!)!.at(-1),
    })),
  );

  // The days add up to the period exactly before the division, so its total is theirs divided once.
  const periodProducts = productsOver(mine, period);
  REPORT_ORDER.forEach((r, i) => {
    expect(dayProducts.reduce((sum, p) => sum + p[i]!, 0n)).toBe(periodProducts[i]!);
    expect(divide(periodProducts[i]!, hourDivisor(r))).toBe(u.total[r.hours]);
  });
}

describe('the daily split against the reference', () => {
  it('each day equals the reference over that day, and the totals the reference over the period, for any tracks, zone and filter', () => {
    const caseArb = periodArb.chain((period) => {
      const grid = dayGrid(period);
      return fc.record({
        period: fc.constant(period),
        tracks: fc.array(trackArb(period, grid), { maxLength: 10 }),
        estimate: estimateArb,
        namespaces: namespacesArb,
        // Namespaces seen by snapshots but holding nothing get zero rows, unless a filter is given.
        also: fc.subarray(['ns1', 'idle']),
        // Tracks come in batches (index segments), or as lifetime columns, as the unit tests feed them.
        batch: fc.integer({ min: 1, max: 5 }),
        asLifetimes: fc.boolean(),
      });
    });
    fc.assert(
      fc.property(caseArb, ({ period, tracks, estimate, namespaces, also, batch, asLifetimes }) => {
        const grid = dayGrid(period);
        const lifetimes = [...lifetimesOf(tracks, estimate)];
        const names = new MemoryNames();
        let split: DailySplitter;
        if (asLifetimes) {
          const columns = new LifetimeColumns(Math.max(lifetimes.length, 1));
          for (const l of lifetimes) columns.push(l, names);
          split = new DailySplitter(grid, names, namespaces);
          split.add(columns);
        } else {
          // Packed first, as history views do: the splitter looks the filter up in a full dictionary.
          const columns = [...trackColumnsOf(tracks, names, batch)];
          split = splitTracks(columns, names, grid, namespaces, estimate);
        }
        const result = split.result(also);

        const held = new Set(referenceAggregate(lifetimes, period, ['namespace']).rows.map((row) => row.namespace!));
        const expected = namespaces.length > 0 ? new Set(namespaces) : new Set([...held, ...also]);
        expect(result.map((u) => u.namespace)).toEqual([...expected].sort());
        for (const u of result) expectNamespaceEqualsReference(u, lifetimes, period, grid);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('the daily split, worked by hand', () => {
  const lifetime = (p: Partial<Lifetime> & Pick<Lifetime, 'startUs' | 'endUs'>): Lifetime => ({
    key: 'nomad:x', namespace: 'ns1', jobId: 'j1', jobName: null, user: 'alice', group: null, component: null, node: null,
    amounts: amounts({ cpu: 1 }), lowEndUs: p.endUs, highEndUs: p.endUs, endKind: 'ended', ...p,
  });
  const split = (lifetimes: Lifetime[], period: Period) => {
    const names = new MemoryNames();
    const columns = new LifetimeColumns(lifetimes.length);
    for (const l of lifetimes) columns.push(l, names);
    const s = new DailySplitter(dayGrid(period), names);
    s.add(columns);
    return s.result();
  };

  it('splits 1 TiB held across the spring change in Lord Howe (23.5-hour day) exactly, past 2^53 byte-microseconds', () => {
    // Lord Howe goes from UTC+10:30 to UTC+11 at 02:00 on 2024-10-06: that day has 23.5 hours.
    // 2^40 bytes from 2024-10-05 12:00 to 2024-10-07 06:00 local: 12 h, 23.5 h and 6 h, i.e.
    // 12 288, 24 064 and 6 144 GiB-hours (1 TiB = 1024 GiB), 42 496 in all; 2^40 × 23.5 h in µs = 9.3e22 > 2^53.
    const period = resolvePeriod('2024-10-05', '2024-10-07', 'Australia/Lord_Howe');
    const [ns] = split([lifetime({ startUs: us('2024-10-05T01:30:00Z'), endUs: us('2024-10-06T19:00:00Z'), amounts: { ...amounts(), memoryBytes: 2 ** 40 } })], period);
    expect(ns!.days.map((d) => [d.day, d.hours, d.memory_gib_hours, d.average.memory_gib])).toEqual([
      ['2024-10-05', 24, 12_288, 512],
      ['2024-10-06', 23.5, 24_064, 1024],
      ['2024-10-07', 24, 6_144, 256],
    ]);
    expect(ns!.total).toMatchObject({ memory_gib_hours: 42_496, firstDay: '2024-10-05', lastDay: '2024-10-07' });
    expect(referenceAggregate([lifetime({ startUs: us('2024-10-05T01:30:00Z'), endUs: us('2024-10-06T19:00:00Z'), amounts: { ...amounts(), memoryBytes: 2 ** 40 } })], period, []).total.memory_gib_hours).toBe(42_496);
  });
});
