import { bareName } from './clusters.js';
import { NamespaceParts } from './kernel/namespace-parts.js';
import { TZDate } from '@date-fns/tz';
import { addDays } from 'date-fns/addDays';
import { divide, UNATTRIBUTED } from './aggregate.js';
import { estimateColumns, LifetimeColumns, MAX_NAME_ID, NO_NAME, type Names, type TrackColumns } from './columns.js';
import { dayStartUs, formatDay, parseDay } from './period.js';
import type { EstimateOptions } from './reconstruct.js';
import { heldBetweenUs, resourceUs } from './reference.js';
import { AMOUNT_FIELDS, hourDivisor, RESOURCE_COUNT, RESOURCES, REPORT_ORDER, type AverageField, type ResourceHours } from './resources.js';
import type { Amounts, Micros, Period } from './types.js';

/**
 * Resource-hours per calendar day (what `summarize` writes): every lifetime is clipped to
 * the period and to each day of the report's time zone, so a day holds exactly the part of
 * each allocation that fell in it, and a DST day has 23 or 25 hours. Clips and products are
 * the reference's (reference.ts: heldUs, resourceUs), so each day equals the reference over
 * that day, and the per-user and per-namespace totals equal it (and `stats`) over the period,
 * to the last bit; the days add up to the totals exactly before the one division.
 * Pure: data in, data out.
 */

/** The days of a period and the instants that separate them. */
export interface DayGrid {
  /** YYYY-MM-DD, in order. */
  days: string[];
  /** days.length + 1 instants: day i is [boundsUs[i], boundsUs[i + 1]). */
  boundsUs: Micros[];
  timezone: string;
}

export function dayGrid(period: Period): DayGrid {
  const days: string[] = [];
  const boundsUs: Micros[] = [];
  // Calendar steps are taken in UTC (a date, not an instant); each day's first instant
  // comes from the zone, as the period's own bounds do.
  let d = parseDay(period.from, '--from');
  for (;;) {
    const name = formatDay(d);
    days.push(name);
    boundsUs.push(dayStartUs(d, period.timezone));
    if (name >= period.to) break;
    const next = addDays(new TZDate(d.year, d.month - 1, d.day, 'UTC'), 1);
    d = { year: next.getFullYear(), month: next.getMonth() + 1, day: next.getDate() };
  }
  boundsUs.push(period.endUs);
  if (boundsUs[0] !== period.startUs) throw new Error(`day grid starts at ${boundsUs[0]}, the period at ${period.startUs}`);
  return { days, boundsUs, timezone: period.timezone };
}

/** The index of the day holding instant `us`, or -1 outside the grid. */
export function dayIndexOf(grid: DayGrid, us: Micros): number {
  const b = grid.boundsUs;
  if (us < b[0]! || us >= b[b.length - 1]!) return -1;
  let lo = 0;
  let hi = b.length - 1;
  // Invariant: b[lo] <= us < b[hi].
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (b[mid]! <= us) lo = mid;
    else hi = mid;
  }
  return lo;
}

export type { ResourceHours };

/** The amount held on average over a day: its resource-hours / the day's hours (one field per resource, see resources.ts). */
export type AverageAmounts = Record<AverageField, number>;

export interface DayUsage extends ResourceHours {
  day: string;
  /** 24, or 23 and 25 on DST days. */
  hours: number;
  average: AverageAmounts;
  jobs: number;
  users: number;
  allocations: number;
}

export interface UserUsage extends ResourceHours {
  /** The user id, or `(unattributed)`. */
  user: string;
  jobs: number;
  allocations: number;
  /** First and last day on which the user held resources. */
  firstDay: string;
  lastDay: string;
}

export interface NamespaceUsage {
  namespace: string;
  /** One entry per day of the grid, zeros included. */
  days: DayUsage[];
  /** Sorted by id, `(unattributed)` last, as `stats --by namespace,user`. */
  users: UserUsage[];
  total: ResourceHours & { jobs: number; users: number; allocations: number; firstDay: string | null; lastDay: string | null };
}

/** Σ amount × µs per resource, in the order of the resource list. */
type Products = bigint[];
const zeroProducts = (): Products => new Array<bigint>(RESOURCE_COUNT).fill(0n);
/** Where each resource of the report order sits in the list (and in Products). */
const REPORT_AT = REPORT_ORDER.map((r) => (RESOURCES as readonly unknown[]).indexOf(r));

const SAFE = Number.MAX_SAFE_INTEGER;

/** Microseconds per flavour: plain numbers, spilled into a BigInt before they lose precision. */
class TimeSums {
  private readonly us = new Map<number, number>();
  private readonly spilled = new Map<number, bigint>();

  add(flavour: number, us: number): void {
    const t = this.us.get(flavour) ?? 0;
    if (t > SAFE - us) {
      this.spilled.set(flavour, (this.spilled.get(flavour) ?? 0n) + BigInt(t));
      this.us.set(flavour, us);
    } else this.us.set(flavour, t + us);
  }

  /**
   * Σ amount × µs per resource, in base units × µs. Flavours are many and amounts per
   * resource few: times are summed per amount first (as numbers, spilled like above), so
   * only a handful of BigInt products remain.
   */
  products(amountsOf: (flavour: number) => Amounts): Products {
    const perAmount = AMOUNT_FIELDS.map(() => new Map<number, { us: number; spilled: bigint }>());
    for (const [flavour, us] of this.us) {
      const a = amountsOf(flavour);
      const spilled = this.spilled.get(flavour) ?? 0n;
      for (let r = 0; r < RESOURCE_COUNT; r++) {
        const amount = a[AMOUNT_FIELDS[r]!];
        if (amount === 0) continue;
        const sum = perAmount[r]!.get(amount);
        if (!sum) perAmount[r]!.set(amount, { us, spilled });
        else {
          if (sum.us > SAFE - us) {
            sum.spilled += BigInt(sum.us);
            sum.us = 0;
          }
          sum.us += us;
          if (spilled !== 0n) sum.spilled += spilled;
        }
      }
    }
    const p = zeroProducts();
    for (let r = 0; r < RESOURCE_COUNT; r++) {
      for (const [amount, t] of perAmount[r]!) p[r]! += resourceUs(amount, t.spilled + BigInt(t.us));
    }
    return p;
  }
}

class Usage {
  readonly time = new TimeSums();
  readonly jobs = new Set<number>();
  readonly users = new Set<number>();
  allocations = 0;
  first = Infinity;
  last = -Infinity;

  add(flavour: number, us: number, job: number, user: number): void {
    this.time.add(flavour, us);
    this.jobs.add(job);
    if (user !== NO_NAME) this.users.add(user);
    this.allocations++;
  }
}

class NamespaceSums {
  readonly total = new Usage();
  readonly days: (Usage | undefined)[];
  readonly users = new Map<number, Usage>();

  constructor(days: number) {
    this.days = new Array<Usage | undefined>(days);
  }
}

/** Resource-hours in the report order (summarize's JSON keeps its keys in that order). */
function hoursOf(p: Products): ResourceHours {
  const hours = {} as ResourceHours;
  REPORT_ORDER.forEach((r, i) => (hours[r.hours] = divide(p[REPORT_AT[i]!]!, hourDivisor(r))));
  return hours;
}

function averageOf(p: Products, dayUs: number): AverageAmounts {
  const average = {} as AverageAmounts;
  // A day a zone skipped (Pacific/Apia, 2011-12-30) has no hours, and held nothing.
  REPORT_ORDER.forEach((r, i) => (average[r.average] = dayUs === 0 ? 0 : divide(p[REPORT_AT[i]!]!, r.perUnit * BigInt(dayUs))));
  return average;
}

/**
 * Splits lifetimes, given as columns, over the days of a grid, per namespace. Only the
 * parts with a positive duration count, as in `stats`: a job or user is active on a day
 * when one of its allocations held resources for some of that day.
 */
export class DailySplitter {
  private readonly sums = new Map<number, NamespaceSums>();
  /** Namespaces are kept qualified by cluster; a day's rows merge them by their bare name, as `stats --by namespace` does. */
  private readonly parts: NamespaceParts;
  /** The namespaces asked for, when filtered: each gets a result, zeros if it never held anything. */
  private readonly requested: string[] | null;

  constructor(
    private readonly grid: DayGrid,
    private readonly names: Names,
    namespaces: readonly string[] = [],
    /** Only these clusters (names as reports give them; docs/accounting.md#clusters). */
    clusters: readonly string[] = [],
  ) {
    this.requested = namespaces.length === 0 ? null : [...new Set(namespaces)];
    this.parts = new NamespaceParts(names, { namespaces: this.requested ?? [], clusters });
  }

  add(b: LifetimeColumns): void {
    const bounds = this.grid.boundsUs;
    const n = this.grid.days.length;
    const p0 = bounds[0]!;
    const p1 = bounds[n]!;
    const bare = this.parts.column(b.namespace, b.length, 'namespace');
    for (let i = 0; i < b.length; i++) {
      if (this.parts.filtering && !this.parts.allows(b.namespace[i]!)) continue;
      const ns = bare[i]!;
      const start = b.start[i]!;
      const end = b.end[i]!;
      const held = heldBetweenUs(start, end, p0, p1);
      if (held === 0) continue;
      let s = this.sums.get(ns);
      if (!s) this.sums.set(ns, (s = new NamespaceSums(n)));
      const flavour = b.flavour[i]!;
      // A job is its (cluster-qualified) namespace and id: a row of a namespace name may hold several clusters' jobs.
      const job = b.namespace[i]! * MAX_NAME_ID + b.job[i]!;
      const user = b.user[i]!;
      s.total.add(flavour, held, job, user);
      let u = s.users.get(user);
      if (!u) s.users.set(user, (u = new Usage()));
      u.add(flavour, held, job, user);
      // Days from the one holding the clipped start, while they begin before the lifetime ends.
      let d = dayIndexOf(this.grid, start > p0 ? start : p0);
      if (d < u.first) u.first = d;
      if (d < s.total.first) s.total.first = d;
      for (; d < n && bounds[d]! < end; d++) {
        const us = heldBetweenUs(start, end, bounds[d]!, bounds[d + 1]!);
        if (us === 0) continue;
        (s.days[d] ??= new Usage()).add(flavour, us, job, user);
        if (d > u.last) u.last = d;
        if (d > s.total.last) s.total.last = d;
      }
    }
  }

  /**
   * Per namespace, sorted by name; `also` adds namespaces with no usage (say, covered by
   * snapshots that saw nothing running), which get zero rows.
   */
  result(also: Iterable<string> = []): NamespaceUsage[] {
    const flavours = this.names.flavours();
    const known: Amounts[] = [];
    const amountsOf = (f: number): Amounts => (known[f] ??= flavours.amounts(f));
    const ids = new Set<number>();
    for (const [ns, s] of this.sums) {
      ids.add(ns);
      for (const u of s.users.keys()) if (u !== NO_NAME) ids.add(u);
    }
    this.names.prefetch?.([...ids].filter((id) => this.parts.isStored(id)));
    const { days, boundsUs } = this.grid;
    const dayName = (d: number) => days[d]!;
    const out = new Map<string, NamespaceUsage>();
    for (const [ns, s] of this.sums) {
      const users: UserUsage[] = [];
      for (const [id, u] of s.users) {
        users.push({
          user: id === NO_NAME ? UNATTRIBUTED : this.names.name(id),
          ...hoursOf(u.time.products(amountsOf)),
          jobs: u.jobs.size,
          allocations: u.allocations,
          firstDay: dayName(u.first),
          lastDay: dayName(u.last),
        });
      }
      users.sort((a, b) => (a.user === b.user ? 0 : a.user === UNATTRIBUTED ? 1 : b.user === UNATTRIBUTED ? -1 : a.user < b.user ? -1 : 1));
      const t = s.total;
      const name = this.parts.name(ns);
      out.set(name, {
        namespace: name,
        days: days.map((day, d) => usageOfDay(day, boundsUs[d + 1]! - boundsUs[d]!, s.days[d], amountsOf)),
        users,
        total: { ...hoursOf(t.time.products(amountsOf)), jobs: t.jobs.size, users: t.users.size, allocations: t.allocations, firstDay: dayName(t.first), lastDay: dayName(t.last) },
      });
    }
    // Filtered, exactly the namespaces asked for; otherwise also those that held nothing.
    for (const namespace of this.requested ?? [...also].map(bareName)) {
      if (out.has(namespace)) continue;
      out.set(namespace, {
        namespace,
        days: days.map((day, d) => usageOfDay(day, boundsUs[d + 1]! - boundsUs[d]!, undefined, amountsOf)),
        users: [],
        total: { ...hoursOf(zeroProducts()), jobs: 0, users: 0, allocations: 0, firstDay: null, lastDay: null },
      });
    }
    return [...out.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
  }
}

function usageOfDay(day: string, dayUs: number, u: Usage | undefined, amountsOf: (f: number) => Amounts): DayUsage {
  const p = u ? u.time.products(amountsOf) : zeroProducts();
  return { day, hours: dayUs / 3_600_000_000, ...hoursOf(p), average: averageOf(p, dayUs), jobs: u?.jobs.size ?? 0, users: u?.users.size ?? 0, allocations: u?.allocations ?? 0 };
}

/** The daily split of tracks given as columns (what reports read from the index or the files). */
export function splitTracks(
  tracks: Iterable<TrackColumns>,
  names: Names,
  grid: DayGrid,
  namespaces: readonly string[],
  estimate: EstimateOptions,
  clusters: readonly string[] = [],
): DailySplitter {
  const split = new DailySplitter(grid, names, namespaces, clusters);
  let lifetimes = new LifetimeColumns(0);
  for (const t of tracks) {
    lifetimes = estimateColumns(t, estimate, lifetimes);
    split.add(lifetimes);
  }
  return split;
}
