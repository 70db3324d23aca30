import { estimateColumns, LifetimeColumns, MemoryNames, type Names, type TrackColumns } from './columns.js';
import { Aggregator } from './kernel/aggregator.js';
import type { EstimateOptions } from './reconstruct.js';
import type { ResourceHours } from './resources.js';
import type { Lifetime, Period } from './types.js';

/**
 * Resource-hours per group (docs/accounting.md#resource-hours, #attribution, #counts): Σ resource × |lifetime ∩ period|,
 * summed exactly as integers (base units × microseconds, in BigInt) and divided once.
 *
 * This module is the interface: the result types and the two entry points. The fast kernel
 * that computes them lives in kernel/; the reference core (reference.ts) computes the same
 * results plainly, and a property test holds the kernel to it.
 */

export const GROUP_KEYS = ['cluster', 'namespace', 'user', 'group', 'component', 'job'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

// Defined in the kernel, which also needs them, so that it imports only types from here.
export { UNATTRIBUTED } from './kernel/aggregator.js';
export { divide } from './kernel/hours.js';

export interface Filters {
  /** Cluster names (the unnamed cluster as UNNAMED_CLUSTER, see clusters.ts). */
  clusters?: readonly string[];
  /** Namespaces as the scheduler names them, in whichever cluster. */
  namespaces?: readonly string[];
  users?: readonly string[];
  groups?: readonly string[];
}

/** A group's resource-hours (one field per resource, see resources.ts), and its counts. */
export interface Hours extends ResourceHours {
  /** Wall-clock hours the allocations held resources (Σ |lifetime ∩ period|). */
  allocation_hours: number;
  jobs: number;
  users: number;
  allocations: number;
}

export type Row = Partial<Record<GroupKey, string>> & Hours;

export interface Aggregate {
  rows: Row[];
  total: Hours;
}

export interface StatsResult extends Aggregate {
  /** The sums with every vanished allocation ending at its low or high bound (rows: see AggregateOptions.groupBounds). */
  low: Aggregate;
  high: Aggregate;
  /** Allocations whose counting stopped at the last snapshot, inside the period. */
  open: number;
  /** Allocations whose end is only known to lie in a band that overlaps the period. */
  vanished: number;
}

export interface AggregateOptions {
  /** The rows expected (0: unknown), so that the entries are made once at their size. */
  expectedRows?: number;
  /**
   * Whether each row gets its low and high bounds (true, the default), or only the totals
   * do: a table or a CSV shows the bounds in total, and a report by user then sums each
   * group once instead of three times.
   */
  groupBounds?: boolean;
}

/** Stats over lifetimes given as objects (tests, the simulator's truth). */
export function aggregate(lifetimes: Iterable<Lifetime>, period: Period, by: readonly GroupKey[], filters: Filters = {}): StatsResult {
  const names = new MemoryNames();
  const batches: LifetimeColumns[] = [];
  let b = new LifetimeColumns(4096);
  for (const l of lifetimes) {
    b.push(l, names);
    if (b.full) {
      batches.push(b);
      b = new LifetimeColumns(4096);
    }
  }
  batches.push(b);
  const agg = new Aggregator(period, by, filters, names);
  for (const batch of batches) agg.add(batch);
  return agg.result();
}

/**
 * Stats over tracks given as columns (what reports read from the index or the files).
 * `names` must already hold every name the tracks use: filters are looked up in it once, at
 * the start, so columns packed lazily while this runs would match no filter.
 */
export function aggregateTracks(
  tracks: Iterable<TrackColumns>,
  names: Names,
  period: Pick<Period, 'startUs' | 'endUs'>,
  by: readonly GroupKey[],
  filters: Filters,
  estimate: EstimateOptions,
  opts: AggregateOptions = {},
): StatsResult & { tracks: number } {
  const agg = new Aggregator(period, by, filters, names, opts);
  let lifetimes = new LifetimeColumns(0);
  let n = 0;
  for (const t of tracks) {
    lifetimes = estimateColumns(t, estimate, lifetimes);
    agg.add(lifetimes);
    n += t.length;
  }
  return { ...agg.result(), tracks: n };
}
