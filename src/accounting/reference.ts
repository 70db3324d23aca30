import { bareName, clusterLabel, clusterOf } from './clusters.js';
import { divide, UNATTRIBUTED, type Aggregate, type Filters, type GroupKey, type Hours, type Row, type StatsResult } from './aggregate.js';
import { HOUR_DIVISORS, RESOURCES } from './resources.js';
import type { Lifetime, Micros, Period } from './types.js';

/**
 * The accounting rules written out plainly (docs/accounting.md#period, #resource-hours,
 * #attribution, #counts, #sure-band): clip each lifetime to the period, multiply by its
 * amounts, sum per group. The fast kernel (kernel/, behind aggregate.ts) is built for a year of a busy
 * cluster; this one is built to be read, and a property test holds the kernel to it exactly.
 * Daily splits, monthly details and quota usage clip and multiply with its heldUs and
 * resourceUs; a second property test holds each day of a daily split to it.
 */

type Span = Pick<Period, 'startUs' | 'endUs'>;

/** |[startUs, endUs) ∩ span| in microseconds, 0 when they do not overlap (docs/accounting.md#period). */
export function heldUs(startUs: Micros, endUs: Micros, span: Span): Micros {
  return heldBetweenUs(startUs, endUs, span.startUs, span.endUs);
}

/** heldUs with the span as two instants, for loops over many spans (the days of a grid) that make no object per span. */
export function heldBetweenUs(startUs: Micros, endUs: Micros, spanStartUs: Micros, spanEndUs: Micros): Micros {
  const us = Math.min(endUs, spanEndUs) - Math.max(startUs, spanStartUs);
  return us > 0 ? us : 0;
}

/**
 * amount × held time, exactly: base units × microseconds as a BigInt (docs/accounting.md#resource-hours).
 * The time may be a sum of held times (a BigInt once past 2^53): amount × Σ µs = Σ amount × µs.
 */
export function resourceUs(amount: number, us: Micros | bigint): bigint {
  return BigInt(amount) * BigInt(us);
}

const HOUR = 3_600_000_000n;

/** Where a lifetime ends under the estimate and under each end of the sure band (docs/accounting.md#sure-band). */
type End = 'endUs' | 'lowEndUs' | 'highEndUs';

/** One group's exact sums under one end, and what its counts count. */
interface Sums {
  keys: string[];
  /** Σ amount × µs per resource, in the order of the resource list (resources.ts). */
  products: bigint[];
  /** Σ µs: the allocations' wall-clock time. */
  us: bigint;
  allocations: number;
  jobs: Set<string>;
  users: Set<string>;
}

/** Stats of lifetimes over a period, grouped by `by`: what aggregate() returns, computed plainly. */
export function referenceAggregate(lifetimes: Iterable<Lifetime>, period: Span, by: readonly GroupKey[], filters: Filters = {}): StatsResult {
  const kept = [...lifetimes].filter((l) => passes(l, filters));
  const estimate = sumUnder(kept, 'endUs', period, by);
  let open = 0;
  let vanished = 0;
  for (const l of kept) {
    const held = heldUs(l.startUs, l.endUs, period) > 0;
    // Counting stopped at the last snapshot, before the period ends (docs/accounting.md#reconstruction).
    if (l.endKind === 'open' && held && l.endUs < period.endUs) open++;
    // The band of its end overlaps the period: it may have held time there, and may have ended there.
    if (l.endKind === 'vanished' && heldUs(l.startUs, l.highEndUs, period) > 0 && l.lowEndUs < period.endUs) vanished++;
  }
  return {
    ...estimate,
    low: sumUnder(kept, 'lowEndUs', period, by),
    high: sumUnder(kept, 'highEndUs', period, by),
    open,
    vanished,
  };
}

/** Missing attribution groups and filters as "(unattributed)" (docs/accounting.md#attribution). */
function keyOf(l: Lifetime, k: GroupKey): string {
  // Namespaces are kept qualified by their cluster (docs/accounting.md#clusters); rows name them bare.
  if (k === 'namespace') return bareName(l.namespace);
  if (k === 'cluster') return clusterLabel(clusterOf(l.namespace));
  if (k === 'job') return l.jobId;
  return l[k] ?? UNATTRIBUTED;
}

function passes(l: Lifetime, f: Filters): boolean {
  const allows = (values: readonly string[] | undefined, value: string) => !values?.length || values.includes(value);
  return allows(f.namespaces, bareName(l.namespace)) && allows(f.clusters, clusterLabel(clusterOf(l.namespace))) && allows(f.users, l.user ?? UNATTRIBUTED) && allows(f.groups, l.group ?? UNATTRIBUTED);
}

/** Every lifetime ending at `end`, clipped to the period and summed per group and in total. */
function sumUnder(lifetimes: readonly Lifetime[], end: End, period: Span, by: readonly GroupKey[]): Aggregate {
  const groups = new Map<string, Sums>();
  const total = emptySums([]);
  for (const l of lifetimes) {
    const us = heldUs(l.startUs, l[end], period);
    // Only allocations that held time in the period count, in sums and counts (docs/accounting.md#counts).
    if (us === 0) continue;
    const keys = by.map((k) => keyOf(l, k));
    const id = JSON.stringify(keys);
    let group = groups.get(id);
    if (!group) groups.set(id, (group = emptySums(keys)));
    addTo(group, l, us);
    addTo(total, l, us);
  }
  const rows = [...groups.values()].sort((a, b) => compareKeys(a.keys, b.keys)).map((g) => rowOf(g, by));
  return { rows, total: hoursOf(total) };
}

function emptySums(keys: string[]): Sums {
  return { keys, products: RESOURCES.map(() => 0n), us: 0n, allocations: 0, jobs: new Set(), users: new Set() };
}

function addTo(s: Sums, l: Lifetime, us: Micros): void {
  RESOURCES.forEach((r, i) => (s.products[i]! += resourceUs(l.amounts[r.amount], us)));
  s.us += BigInt(us);
  s.allocations++;
  // A job is its namespace and id; a missing user is not a user.
  s.jobs.add(JSON.stringify([l.namespace, l.jobId]));
  if (l.user !== null) s.users.add(l.user);
}

/** The exact sums divided once, at the end (docs/accounting.md#resource-hours). */
function hoursOf(s: Sums): Hours {
  const hours = { allocation_hours: divide(s.us, HOUR), jobs: s.jobs.size, users: s.users.size, allocations: s.allocations } as Hours;
  // Each resource's divisor: base units × µs in one of its unit-hours (docs/accounting.md#attribution).
  RESOURCES.forEach((r, i) => (hours[r.hours] = divide(s.products[i]!, HOUR_DIVISORS[i]!)));
  return hours;
}

function rowOf(s: Sums, by: readonly GroupKey[]): Row {
  const row: Partial<Record<GroupKey, string>> = {};
  by.forEach((k, i) => (row[k] = s.keys[i]!));
  return { ...row, ...hoursOf(s) };
}

/**
 * Rows sort by their keys in order, as text; the unattributed row goes last within its level.
 * Written again here, not imported from the kernel: the property test compares the two orders.
 */
function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === UNATTRIBUTED) return 1;
    if (y === UNATTRIBUTED) return -1;
    return x < y ? -1 : 1;
  }
  return 0;
}
