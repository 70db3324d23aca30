import { END_KIND_CODES, type FlavourTable, estimateColumns, LifetimeColumns, MAX_NAME_ID, MemoryNames, NO_NAME, type Names, type TrackColumns } from '../columns.js';
import type { EstimateOptions } from '../reconstruct.js';
import { HOUR_DIVISORS, RESOURCE_COUNT, RESOURCES, type ResourceHours } from '../resources.js';
import type { Amounts, Lifetime, Period } from '../types.js';

/**
 * Resource-hours per group (docs/accounting.md#resource-hours, #attribution, #counts): Σ resource × |lifetime ∩ period|,
 * summed exactly as integers (base units × microseconds, in BigInt) and divided once.
 */

export const GROUP_KEYS = ['namespace', 'user', 'group', 'component', 'job'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

export const UNATTRIBUTED = '(unattributed)';

export interface Filters {
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

const MICROS_PER_HOUR = 3_600_000_000n;

/** The hour fields of a row, in the order of Products: each resource's, then the allocations'. */
const HOUR_FIELDS: readonly (keyof Hours)[] = [...RESOURCES.map((r) => r.hours), 'allocation_hours'];
/** Divisors from base units × µs (or µs) to the reported unit-hours, in the order of HOUR_FIELDS. */
const PRODUCT_DIVISORS: readonly bigint[] = [...HOUR_DIVISORS, MICROS_PER_HOUR];

const SAFE = Number.MAX_SAFE_INTEGER;
const TWO_53 = 2 ** 53;

/**
 * Σ amount × µs per resource in base units × µs, in the order of the resource list (and of
 * a flavour table's amounts), then the allocation-microseconds at ALLOCATION.
 */
type Products = bigint[];
const ALLOCATION = RESOURCE_COUNT;

/**
 * What the aggregation keeps of each allocation that holds time in the period, as columns:
 * its group (slot), flavour, namespace, job and user ids,
 * and its microseconds in the period. No object per allocation or per group: a year of a
 * busy cluster is a hundred thousand entries. At the end they are grouped by slot with a
 * counting sort (slots are dense), so each group's entries are one range of `order`.
 *
 * The entries of vanished allocations (`bounds`) also keep their microseconds under the low
 * and high bounds of their end; `us` holds the estimate's.
 */
class Entries {
  n = 0;
  slot: Int32Array;
  flavour: Int32Array;
  namespace: Int32Array;
  job: Int32Array;
  user: Int32Array;
  us: Float64Array;
  usLow: Float64Array;
  usHigh: Float64Array;
  /** Entries that hold no time under the estimate or a bound (vanished entries only). */
  partial = 0;
  /** Set by bySlot: entry indexes grouped by slot, and where each slot's range starts. */
  order = new Int32Array(0);
  starts = new Int32Array(1);

  /** `capacity`: the entries expected (they grow past it, at a cost: a copy of each column). */
  constructor(
    readonly bounds = false,
    capacity = 1024,
  ) {
    const n = Math.max(capacity, 16);
    this.slot = new Int32Array(n);
    this.flavour = new Int32Array(n);
    this.namespace = new Int32Array(n);
    this.job = new Int32Array(n);
    this.user = new Int32Array(n);
    this.us = new Float64Array(n);
    this.usLow = new Float64Array(bounds ? n : 0);
    this.usHigh = new Float64Array(bounds ? n : 0);
  }

  /** Room for `more` entries past n, written directly (see Aggregator.clip). */
  reserve(more: number): void {
    if (this.n + more > this.us.length) this.grow(Math.max(this.us.length * 2, this.n + more));
  }

  private grow(size: number): void {
    const wider = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a.subarray(0, this.n));
      return b;
    };
    const i32 = (n: number) => new Int32Array(n);
    const f64 = (n: number) => new Float64Array(n);
    this.slot = wider(this.slot, i32);
    this.flavour = wider(this.flavour, i32);
    this.namespace = wider(this.namespace, i32);
    this.job = wider(this.job, i32);
    this.user = wider(this.user, i32);
    this.us = wider(this.us, f64);
    if (this.bounds) {
      this.usLow = wider(this.usLow, f64);
      this.usHigh = wider(this.usHigh, f64);
    }
  }

  /** Groups the entries by slot (a stable counting sort into `order`). */
  bySlot(slots: number): void {
    const starts = new Int32Array(slots + 1);
    const order = new Int32Array(this.n);
    if (this.n > 0) {
      countPerSlot(this.slot, this.n, starts);
      for (let s = 0; s < slots; s++) starts[s + 1]! += starts[s]!;
      placeBySlot(this.slot, this.n, starts.slice(0, slots), order);
    }
    this.order = order;
    this.starts = starts;
  }

  /** How many entries a slot has (after bySlot). */
  count(slot: number): number {
    return this.starts[slot + 1]! - this.starts[slot]!;
  }
}

/**
 * Appends the listed rows of a batch (vanished allocations) to a set of entries with bounds
 * (reserved): their µs in [p0, p1) under the estimate and both bounds, each at least 0. A
 * row that holds no time under any of them is left out. Returns the new count; `counts[0]`
 * gains the rows that may have held time in the period (the high bound reaches into it and
 * the low one starts before its end).
 */
function clipVanishedRows(b: LifetimeColumns, slots: Int32Array, rows: Int32Array, count: number, p0: number, p1: number, e: Entries, counts: Int32Array): number {
  let n = e.n;
  let partial = 0;
  let vanished = 0;
  for (let v = 0; v < count; v++) {
    const i = rows[v]!;
    const start = b.start[i]!;
    const from = start > p0 ? start : p0;
    const end = b.end[i]!;
    const low = b.low[i]!;
    const high = b.high[i]!;
    const usEst = (end < p1 ? end : p1) - from;
    const usLow = (low < p1 ? low : p1) - from;
    const usHigh = (high < p1 ? high : p1) - from;
    if (usHigh > 0 && low < p1) vanished++;
    if (usEst <= 0 && usLow <= 0 && usHigh <= 0) continue;
    if (usEst <= 0 || usLow <= 0 || usHigh <= 0) partial++;
    e.slot[n] = slots[i]!;
    e.flavour[n] = b.flavour[i]!;
    e.namespace[n] = b.namespace[i]!;
    e.job[n] = b.job[i]!;
    e.user[n] = b.user[i]!;
    e.us[n] = usEst > 0 ? usEst : 0;
    e.usLow[n] = usLow > 0 ? usLow : 0;
    e.usHigh[n] = usHigh > 0 ? usHigh : 0;
    n++;
  }
  e.partial += partial;
  counts[0]! += vanished;
  return n;
}

/** The loops of Entries.bySlot, each alone in its function (see sumRange). */
function countPerSlot(slot: Int32Array, n: number, starts: Int32Array): void {
  for (let i = 0; i < n; i++) starts[slot[i]! + 1]!++;
}

function placeBySlot(slot: Int32Array, n: number, next: Int32Array, order: Int32Array): void {
  for (let i = 0; i < n; i++) order[next[slot[i]!]!++] = i;
}

/**
 * The flavours of the dictionary (by flavour id), ranked once per report. Each distinct non-zero
 * amount of each resource gets a rank, and each flavour the ranks of its amounts (-1 for
 * zero). A group's times are summed per flavour, then per rank, as plain numbers, so its
 * exact products are a handful per resource however many flavours it holds: a year of a
 * busy cluster has thousands of flavours (every mix of amounts) but fewer than a hundred
 * amounts each.
 */
class RankTable {
  /** Per flavour, the rank of each resource's amount (flavour × RESOURCE_COUNT + resource). */
  private readonly ranks: Int32Array;
  /** Per rank: its amount (also as a BigInt), and which resource it is. */
  private readonly amount: number[] = [];
  private readonly amountBig: bigint[] = [];
  private readonly resource: number[] = [];
  /**
   * Per rank: its amount as scaled × 2^shift (scaled odd), and the bucket its products add
   * into (see products): resource × 64 + shift.
   */
  private readonly scaled: number[] = [];
  private readonly bucket: number[] = [];
  /**
   * Scratch for one group, zero between uses: µs per flavour and per rank, each split in a
   * high part (units of 2^26 µs) and a low part (see sumRange), and the flavours and ranks
   * it touched.
   */
  private readonly flavourHigh: Float64Array;
  private readonly flavourLow: Float64Array;
  private readonly flavoursTouched: Int32Array;
  private readonly flavourIsTouched: Uint8Array;
  private readonly high: Float64Array;
  private readonly low: Float64Array;
  private readonly touched: Int32Array;
  private readonly isTouched: Uint8Array;
  private touchedCount = 0;
  /** The allocation µs of the current group, high and low parts, and how many flavours it touched. */
  private readonly sums = new Float64Array(3);
  /** The settled part of the current group (see settle): its ranks and their µs, and its allocation µs. */
  private settledCount = 0;
  private readonly settledRank: Int32Array;
  private readonly settledHigh: Float64Array;
  private readonly settledLow: Float64Array;
  private readonly settledAllocation = new Float64Array(2);
  /** Exact sums of scaled products below 2^53, per bucket (see products), and the buckets touched. */
  private readonly bucketSum = new Float64Array(RESOURCE_COUNT * 64);
  /** Per bucket: how many units of 2^53 its sum passed (see products). */
  private readonly bucketCarry = new Float64Array(RESOURCE_COUNT * 64);
  private readonly bucketsTouched = new Int32Array(RESOURCE_COUNT * 64);
  private readonly bucketIsTouched = new Uint8Array(RESOURCE_COUNT * 64);

  constructor(flavours: FlavourTable) {
    const rankOf = RESOURCES.map(() => new Map<number, number>());
    const amounts = flavours.values;
    const ranks = (this.ranks = new Int32Array(amounts.length));
    for (let r = 0; r < RESOURCE_COUNT; r++) {
      const seen = rankOf[r]!;
      for (let at = r; at < amounts.length; at += RESOURCE_COUNT) {
        const amount = amounts[at]!;
        let k = -1;
        if (amount !== 0) {
          k = seen.get(amount) ?? -1;
          if (k < 0) {
            k = this.amount.push(amount) - 1;
            this.amountBig.push(BigInt(amount));
            this.resource.push(r);
            let scaled = amount;
            let shift = 0;
            while (scaled % 2 === 0 && shift < 63) {
              scaled /= 2;
              shift++;
            }
            this.scaled.push(scaled);
            this.bucket.push(r * 64 + shift);
            seen.set(amount, k);
          }
        }
        ranks[at] = k;
      }
    }
    const flavourCount = amounts.length / RESOURCE_COUNT;
    this.flavourHigh = new Float64Array(flavourCount);
    this.flavourLow = new Float64Array(flavourCount);
    this.flavoursTouched = new Int32Array(flavourCount);
    this.flavourIsTouched = new Uint8Array(flavourCount);
    const rankCount = this.amount.length;
    this.high = new Float64Array(rankCount);
    this.low = new Float64Array(rankCount);
    this.touched = new Int32Array(rankCount);
    this.isTouched = new Uint8Array(rankCount);
    this.settledRank = new Int32Array(rankCount);
    this.settledHigh = new Float64Array(rankCount);
    this.settledLow = new Float64Array(rankCount);
  }

  /**
   * Sums a group's settled entries (from..to of the sorted ones) and keeps them apart, for
   * products() to add to each bound's vanished entries (see add).
   */
  settle(e: Entries, from: number, to: number): void {
    this.add(e, from, to, e.us);
    const { high, low, touched, isTouched, settledRank, settledHigh, settledLow, settledAllocation } = this;
    const count = (this.settledCount = this.touchedCount);
    for (let x = 0; x < count; x++) {
      const k = touched[x]!;
      settledRank[x] = k;
      settledHigh[x] = high[k]!;
      settledLow[x] = low[k]!;
      high[k] = 0;
      low[k] = 0;
      isTouched[k] = 0;
    }
    this.touchedCount = 0;
    settledAllocation[0] = this.sums[0]!;
    settledAllocation[1] = this.sums[1]!;
    this.sums.fill(0);
  }

  /**
   * Adds entries from..to (of the sorted ones) to the group's sums per rank, with each
   * entry's time read from `us` (the estimate's, or a bound's).
   */
  add(e: Entries, from: number, to: number, us: Float64Array): void {
    sumRange(e.order, e.flavour, us, from, to, this.flavourHigh, this.flavourLow, this.flavoursTouched, this.flavourIsTouched, this.sums);
    this.spreadToRanks();
  }

  /** Adds the flavours sumRange touched to their amounts' ranks, and leaves those flavours zero. */
  private spreadToRanks(): void {
    const { ranks, flavourHigh, flavourLow, flavoursTouched, flavourIsTouched, high, low, touched, isTouched } = this;
    const flavours = this.sums[2]!;
    let touchedCount = this.touchedCount;
    for (let x = 0; x < flavours; x++) {
      const f = flavoursTouched[x]!;
      const hi = flavourHigh[f]!;
      const lo = flavourLow[f]!;
      flavourHigh[f] = 0;
      flavourLow[f] = 0;
      flavourIsTouched[f] = 0;
      const at = f * RESOURCE_COUNT;
      for (let r = 0; r < RESOURCE_COUNT; r++) {
        const k = ranks[at + r]!;
        if (k < 0) continue;
        if (isTouched[k] === 0) {
          isTouched[k] = 1;
          touched[touchedCount++] = k;
        }
        high[k]! += hi;
        low[k]! += lo;
      }
    }
    this.touchedCount = touchedCount;
  }

  /**
   * Σ amount × time per resource and the allocation time of the group's settled sums and
   * what add() added since, in base units × µs; the sums added are then cleared.
   */
  products(): Products {
    const { high, low, touched, isTouched, settledRank, settledHigh, settledLow, settledAllocation, sums } = this;
    // The settled part joins in: split sums of integers add exactly (see GroupTally.tally).
    for (let x = 0; x < this.settledCount; x++) {
      const k = settledRank[x]!;
      if (isTouched[k] === 0) {
        isTouched[k] = 1;
        touched[this.touchedCount++] = k;
      }
      high[k]! += settledHigh[x]!;
      low[k]! += settledLow[x]!;
    }
    const out = zeroProducts();
    out[ALLOCATION] = joinSplit(sums[0]! + settledAllocation[0]!, sums[1]! + settledAllocation[1]!);
    sums[0] = 0;
    sums[1] = 0;
    const { bucketSum, bucketCarry, bucketsTouched, bucketIsTouched } = this;
    let buckets = 0;
    for (let x = 0; x < this.touchedCount; x++) {
      const k = touched[x]!;
      const h = high[k]!;
      const l = low[k]!;
      high[k] = 0;
      low[k] = 0;
      isTouched[k] = 0;
      // scaled × time as a double is exact when at most 2^53 - 1 (rounding is monotonic and
      // 2^53 is a double; the time is exact too then). Such products are summed per bucket as
      // plain numbers while the sum stays that small, and only each bucket's sum becomes a
      // BigInt: a group touches dozens of amounts, but a few buckets.
      const time = h * SPLIT + l;
      const q = this.scaled[k]! * time;
      if (q <= SAFE) {
        const b = this.bucket[k]!;
        if (bucketIsTouched[b] === 0) {
          bucketIsTouched[b] = 1;
          bucketsTouched[buckets++] = b;
        }
        // Both terms are integers below 2^53: a sum that comes out below 2^53 is exact. One
        // that does not is at least 2^53: the bucket counts a unit of 2^53 and keeps the rest,
        // (sum - 2^53) + q, which is exact too (an integer below 2^53 from exact operands).
        const sum = bucketSum[b]! + q;
        if (sum <= SAFE) bucketSum[b] = sum;
        else {
          bucketSum[b] = bucketSum[b]! - TWO_53 + q;
          bucketCarry[b]!++;
        }
      } else {
        // Byte amounts times hours pass 2^53 as a rule; their time alone rarely does.
        out[this.resource[k]!]! += this.amountBig[k]! * (time <= SAFE ? BigInt(time) : joinSplit(h, l));
      }
    }
    this.touchedCount = 0;
    for (let x = 0; x < buckets; x++) {
      const b = bucketsTouched[x]!;
      const carried = bucketCarry[b]!;
      const sum = carried === 0 ? BigInt(bucketSum[b]!) : (BigInt(carried) << 53n) + BigInt(bucketSum[b]!);
      out[b >> 6]! += sum << SHIFTS[b & 63]!;
      bucketSum[b] = 0;
      bucketCarry[b] = 0;
      bucketIsTouched[b] = 0;
    }
    return out;
  }
}

/**
 * The loop of RankTable.add, alone in its function: V8 optimises a long loop while it runs
 * it, and code after the loop, or a branch, that had never run would undo that (a
 * deoptimisation). So the sums have no branch to take when they grow large: each µs amount
 * is split into a high part (units of 2^26 µs) and a low part, summed apart as plain
 * numbers. Below 2^26 entries neither sum can pass 2^53, so both stay exact. Time is summed
 * per flavour: one table access per entry, however many resources a flavour holds.
 * `sums`: the allocation time's high and low parts (added to), then how many flavours were touched.
 */
function sumRange(
  order: Int32Array,
  flavour: Int32Array,
  usOf: Float64Array,
  from: number,
  to: number,
  high: Float64Array,
  low: Float64Array,
  touched: Int32Array,
  isTouched: Uint8Array,
  sums: Float64Array,
): void {
  let touchedCount = 0;
  let allocationHigh = 0;
  let allocationLow = 0;
  for (let j = from; j < to; j++) {
    const i = order[j]!;
    const us = usOf[i]!;
    const hi = Math.floor(us / SPLIT);
    const lo = us - hi * SPLIT;
    allocationHigh += hi;
    allocationLow += lo;
    const f = flavour[i]!;
    if (isTouched[f] === 0) {
      isTouched[f] = 1;
      touched[touchedCount++] = f;
    }
    high[f]! += hi;
    low[f]! += lo;
  }
  sums[0]! += allocationHigh;
  sums[1]! += allocationLow;
  sums[2] = touchedCount;
}

/** Counts the distinct users of a set of settled entries (all of them hold time). */
function stampUsers(e: Entries, n: number, users: Stamps): void {
  const { user } = e;
  for (let i = 0; i < n; i++) users.see(user[i]!);
}

/**
 * Counts the distinct jobs and users of the entries order[from..to) that hold time in `us`
 * into the stamps given (on top of what those saw since they began); returns how many
 * entries that is. Alone in its function (see sumRange).
 */
function stampRange(e: Entries, from: number, to: number, us: Float64Array, jobs: Stamps, users: Stamps): number {
  const { order, namespace, job, user } = e;
  let held = 0;
  for (let j = from; j < to; j++) {
    const i = order[j]!;
    if (us[i]! <= 0) continue;
    held++;
    jobs.seeJob(namespace[i]!, job[i]!);
    users.see(user[i]!);
  }
  return held;
}

/** 0n to 63n: the shifts of RankTable's buckets, made once. */
const SHIFTS = Array.from({ length: 64 }, (_, i) => BigInt(i));

/** The unit of the high part of a split sum (see sumRange). */
const SPLIT = 2 ** 26;
const SPLIT_BIG = BigInt(SPLIT);

function joinSplit(high: number, low: number): bigint {
  return BigInt(high) * SPLIT_BIG + BigInt(low);
}

/**
 * Counts distinct ids by stamping each id's place in a table instead of sorting or hashing:
 * a year of a busy cluster is a hundred thousand jobs and users, counted several times per
 * report (each group, each bound, the total). Users: negative ids (none) do not count.
 * Jobs: a job is a (namespace, job id) pair; job ids are stamped and namespaces checked.
 *
 * A count may be taken on top of another (onTop): what the base count saw is not counted
 * again. That is how vanished entries join the settled ones under each bound: the settled
 * ids keep their base stamp, and each bound's count only stamps the ids they lack.
 */
class Stamps {
  count = 0;
  private stamp: Int32Array;
  /** For jobs: the namespace the stamped job id was seen with. */
  private namespaceOf: Int32Array;
  /** The stamp of the base count, and of the current one (the same outside onTop). */
  private base = 0;
  private current = 0;
  /** (namespace, job) pairs whose job id was first seen under another namespace: in the base count, and on top. */
  private readonly baseMore = new Set<number>();
  private readonly more = new Set<number>();

  /** Ids below `size` are stamped without growing the table (see sumRange on why it matters). */
  constructor(size: number) {
    this.stamp = new Int32Array(Math.max(1024, size));
    this.namespaceOf = new Int32Array(this.stamp.length);
  }

  /** Starts a count of its own. */
  begin(): void {
    this.base = ++this.current;
    this.count = 0;
    this.baseMore.clear();
    this.more.clear();
  }

  /** Starts a count on top of the last begin()'s: ids that one saw do not count (again). */
  onTop(): void {
    if (this.more.size > 0 && this.base === this.current) for (const key of this.more) this.baseMore.add(key);
    this.current++;
    this.count = 0;
    this.more.clear();
  }

  see(id: number): void {
    if (id < 0) return;
    if (id >= this.stamp.length) this.grow(id);
    const s = this.stamp[id]!;
    if (s !== this.current && s !== this.base) {
      this.stamp[id] = this.current;
      this.count++;
    }
  }

  seeJob(namespace: number, job: number): void {
    if (job >= this.stamp.length) this.grow(job);
    // One load of each table for both paths: a path that never ran before V8 optimised
    // the caller's loop would make it deoptimise (see sumRange).
    const { stamp, namespaceOf } = this;
    const s = stamp[job]!;
    const elsewhere = namespaceOf[job] !== namespace;
    if (s !== this.current && s !== this.base) {
      stamp[job] = this.current;
      namespaceOf[job] = namespace;
      this.count++;
    } else if (elsewhere) {
      this.seeJobElsewhere(namespace, job);
    }
  }

  /** The same job id in another namespace: a job of its own (rare). */
  private seeJobElsewhere(namespace: number, job: number): void {
    const key = namespace * MAX_NAME_ID + job;
    if (this.more.has(key) || this.baseMore.has(key)) return;
    this.more.add(key);
    this.count++;
  }

  private grow(id: number): void {
    const size = Math.max(id + 1, this.stamp.length * 2);
    const stamp = new Int32Array(size);
    stamp.set(this.stamp);
    const ns = new Int32Array(size);
    ns.set(this.namespaceOf);
    this.stamp = stamp;
    this.namespaceOf = ns;
  }
}

function hoursOf(p: Products, jobs: number, users: number, allocations: number): Hours {
  const hours: Partial<Hours> = {};
  for (let f = 0; f < HOUR_FIELDS.length; f++) hours[HOUR_FIELDS[f]!] = divide(p[f]!, PRODUCT_DIVISORS[f]!);
  return Object.assign(hours, { jobs, users, allocations }) as Hours;
}

/** n / d as the nearest double, without first rounding n to a double. */
export function divide(n: bigint, d: bigint): number {
  if (n >= 0n && n <= TWO_52 && d > 0n && d <= TWO_52) return divideSmall(Number(n), Number(d));
  const q = n / d;
  const r = n % d;
  return Number(q) + Number(r) / Number(d);
}

const TWO_52 = 2n ** 52n;

/**
 * divide for 0 ≤ x, 0 < y, both at most 2^52, in plain numbers: the same quotient and
 * remainder, so the same result. The rounded x / y is at most one above the quotient, so
 * q × y ≤ x + y ≤ 2^53 is exact, and so is x - q × y; one step then corrects q.
 */
function divideSmall(x: number, y: number): number {
  let q = Math.floor(x / y);
  let r = x - q * y;
  if (r < 0) {
    q--;
    r += y;
  } else if (r >= y) {
    q++;
    r -= y;
  }
  return q + r / y;
}

/** Rows sort by key; the unattributed row goes last within its level. */
function compareKeys(a: string[], b: string[]): number {
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

const { open: OPEN_CODE, vanished: VANISHED_CODE } = END_KIND_CODES;

/** Group keys a row may lack (NO_NAME): it then groups as unattributed. */
const NULLABLE_KEYS: ReadonlySet<GroupKey> = new Set(['user', 'group', 'component']);

/** Stands for "no user" or "no group" as a row key, when no such name was ever stored. */
const UNATTRIBUTED_ID = -2;

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

/**
 * Sums lifetimes, given as columns, for one period and grouping. Only vanished allocations
 * have bounds that differ from their estimate: the others are kept once, in `settled`,
 * and the vanished ones in `unsettled`, with a time under each bound (see GroupTally).
 */
export class Aggregator {
  /** The cells of the slot tables of two-key groupings, at most (16 MB; tests lower it). */
  static pairTableCells = 4 * 1024 * 1024;
  /** Up to this many groups, bounds wanted in total only are still summed per group (see result; tests lower it). */
  static fewGroups = 64;
  private readonly groupBounds: boolean;
  private readonly settled: Entries;
  /** Vanished allocations: the estimate and both bounds of their end (see Entries). */
  private readonly unsettled: Entries;
  private open = 0;
  /** Vanished allocations that may have held time in the period (see clipVanishedRows). */
  private readonly vanishedInPeriod = new Int32Array(1);
  /** The id a missing user or group groups under: the literal name's, if stored. */
  private readonly unattributed: number;
  private readonly only: { namespace: Set<number> | null; user: Set<number> | null; group: Set<number> | null };
  /** Group slots: by key id (one key), or by the ids joined (several); 0 = none yet, else slot + 1. */
  private slotById = new Int32Array(1024);
  private readonly slotByIds = new Map<string, number>();
  /** Two keys: both ids (offset past the negative sentinels) packed into one number. */
  private readonly slotByPair = new Map<number, number>();
  /** Two keys: per first key id + 2, its table of slots (index + 1, 0: none; see newPairSlot). */
  private readonly pairTableOf: Int32Array;
  private readonly pairTables: Int32Array[] = [];
  private unattributedSlot = -1;
  private readonly keys: number[][] = [];

  constructor(
    private readonly period: Pick<Period, 'startUs' | 'endUs'>,
    private readonly by: readonly GroupKey[],
    filters: Filters,
    private readonly names: Names,
    opts: AggregateOptions = {},
  ) {
    const { expectedRows = 0 } = opts;
    this.groupBounds = opts.groupBounds ?? true;
    this.settled = new Entries(false, expectedRows);
    // Vanished allocations are a part of the rows: up to a third of them on AI4OS-like data.
    this.unsettled = new Entries(true, expectedRows / 2);
    this.unattributed = names.lookup(UNATTRIBUTED) ?? UNATTRIBUTED_ID;
    this.pairTableOf = new Int32Array(by.length === 2 ? names.size() + 2 : 0);
    const ids = (values: readonly string[] | undefined): Set<number> | null => {
      if (!values?.length) return null;
      const out = new Set<number>();
      for (const v of values) {
        const id = v === UNATTRIBUTED ? this.unattributed : names.lookup(v);
        if (id !== undefined) out.add(id);
      }
      return out;
    };
    this.only = { namespace: ids(filters.namespaces), user: ids(filters.users), group: ids(filters.groups) };
  }

  /** The column a group key reads (users and groups may hold NO_NAME: unattributed). */
  private column(b: LifetimeColumns, k: GroupKey): Int32Array {
    return k === 'namespace' ? b.namespace : k === 'user' ? b.user : k === 'group' ? b.group : k === 'component' ? b.component : b.job;
  }

  private slotOf(id: number): number {
    if (id < 0) {
      if (this.unattributedSlot < 0) this.unattributedSlot = this.newSlot([id]);
      return this.unattributedSlot;
    }
    if (id >= this.slotById.length) {
      const grown = new Int32Array(Math.max(id + 1, this.slotById.length * 2));
      grown.set(this.slotById);
      this.slotById = grown;
    }
    const s = this.slotById[id]!;
    if (s > 0) return s - 1;
    const slot = this.newSlot([id]);
    this.slotById[id] = slot + 1;
    return slot;
  }

  private slotOfIds(ids: number[]): number {
    const joined = ids.join(',');
    let slot = this.slotByIds.get(joined);
    if (slot === undefined) this.slotByIds.set(joined, (slot = this.newSlot(ids)));
    return slot;
  }

  private slotOfPair(a: number, b: number): number {
    const t = this.pairTableOf[a + 2]!;
    if (t > 0) {
      const table = this.pairTables[t - 1]!;
      if (b + 2 < table.length && table[b + 2]! > 0) return table[b + 2]! - 1;
    }
    return this.newPairSlot(a, b);
  }

  /**
   * A pair seen for the first time. A first key's first pair gives it a table of slots by
   * second key (dense ids: no hashing), while the tables stay within pairTableCells; the
   * other first keys' pairs go through a Map. A pair always takes the same way.
   */
  private newPairSlot(a: number, b: number): number {
    let t = this.pairTableOf[a + 2]!;
    const size = this.pairTableOf.length;
    if (t === 0 && (this.pairTables.length + 1) * size <= Aggregator.pairTableCells) {
      this.pairTables.push(new Int32Array(size));
      t = this.pairTableOf[a + 2] = this.pairTables.length;
    }
    const table = t > 0 ? this.pairTables[t - 1]! : null;
    if (table && b + 2 < table.length) {
      if (table[b + 2]! === 0) table[b + 2] = this.newSlot([a, b]) + 1;
      return table[b + 2]! - 1;
    }
    const packed = (a + 2) * (MAX_NAME_ID + 2) + (b + 2);
    let slot = this.slotByPair.get(packed);
    if (slot === undefined) this.slotByPair.set(packed, (slot = this.newSlot([a, b])));
    return slot;
  }

  private newSlot(keys: number[]): number {
    this.keys.push(keys);
    return this.keys.length - 1;
  }

  /** Per row of a batch, its slot, or -1 when a filter leaves it out (reused between batches). */
  private rowSlots = new Int32Array(0);
  /** The batch's vanished rows, and how many (written by clip). */
  private vanishedRows = new Int32Array(0);
  private readonly vanishedCount = new Int32Array(1);

  add(b: LifetimeColumns): void {
    if (this.rowSlots.length < b.length) {
      this.rowSlots = new Int32Array(b.length);
      this.vanishedRows = new Int32Array(b.length);
    }
    const slots = this.rowSlots;
    // One key and no filter (the common case): clip finds the slots as it goes.
    const key = this.by.length === 1 && !this.only.namespace && !this.only.user && !this.only.group ? this.column(b, this.by[0]!) : null;
    const unfiltered = !this.only.namespace && !this.only.user && !this.only.group;
    if (!key && unfiltered && this.by.length === 2) this.pairSlots(b, slots);
    else if (!key) this.slotsOfRows(b, slots);
    this.settled.reserve(b.length);
    this.vanishedCount[0] = 0;
    this.settled.n = this.clip(b, key, slots, this.settled);
    const vanished = this.vanishedCount[0]!;
    if (vanished > 0) {
      this.unsettled.reserve(vanished);
      this.clipVanished(b, slots, vanished);
    }
  }

  /** Slots for two keys without filters (a report by namespace and user): known pairs looked up in their tables here. */
  private pairSlots(b: LifetimeColumns, out: Int32Array): void {
    const [first, second] = this.by as [GroupKey, GroupKey];
    const x = this.column(b, first);
    const y = this.column(b, second);
    const nullableX = NULLABLE_KEYS.has(first);
    const nullableY = NULLABLE_KEYS.has(second);
    const un = this.unattributed;
    const { pairTableOf, pairTables } = this;
    for (let i = 0; i < b.length; i++) {
      let a = x[i]!;
      if (nullableX && a === NO_NAME) a = un;
      let c = y[i]!;
      if (nullableY && c === NO_NAME) c = un;
      const t = a + 2 < pairTableOf.length ? pairTableOf[a + 2]! : 0;
      if (t > 0) {
        const table = pairTables[t - 1]!;
        const slot = c + 2 < table.length ? table[c + 2]! : 0;
        if (slot > 0) {
          out[i] = slot - 1;
          continue;
        }
      }
      out[i] = this.newPairSlot(a, c);
    }
  }

  /** Slots with filters or several keys. */
  private slotsOfRows(b: LifetimeColumns, out: Int32Array): void {
    const un = this.unattributed;
    const only = this.only;
    const cols = this.by.map((k) => ({ col: this.column(b, k), nullable: NULLABLE_KEYS.has(k) }));
    for (let i = 0; i < b.length; i++) {
      out[i] = -1;
      if (only.namespace && !only.namespace.has(b.namespace[i]!)) continue;
      if (only.user && !only.user.has(b.user[i] === NO_NAME ? un : b.user[i]!)) continue;
      if (only.group && !only.group.has(b.group[i] === NO_NAME ? un : b.group[i]!)) continue;
      if (cols.length === 1) {
        const id = cols[0]!.col[i]!;
        out[i] = this.slotOf(id === NO_NAME ? un : id);
      } else if (cols.length === 2) {
        const [x, y] = cols as [(typeof cols)[0], (typeof cols)[0]];
        const a = x.col[i]!;
        const c = y.col[i]!;
        out[i] = this.slotOfPair(x.nullable && a === NO_NAME ? un : a, y.nullable && c === NO_NAME ? un : c);
      } else {
        out[i] = this.slotOfIds(cols.map(({ col, nullable }) => (nullable && col[i] === NO_NAME ? un : col[i]!)));
      }
    }
  }

  /**
   * Clips each row to the period and appends it to the settled entries (reserved for the
   * batch), or lists a vanished one for clipVanished; returns the settled count. The slots
   * come from `key` (one key column, no filter) or were set in `slots` (-1: filtered out),
   * and clipVanished finds them there. A slot made for a row that then holds nothing in the
   * period is harmless: it has no entries.
   */
  private clip(b: LifetimeColumns, key: Int32Array | null, slots: Int32Array, e: Entries): number {
    const { startUs: p0, endUs: p1 } = this.period;
    const { slot: eSlot, flavour: eFlavour, namespace: eNamespace, job: eJob, user: eUser, us: eUs } = e;
    const { vanishedRows, vanishedCount } = this;
    let n = e.n;
    for (let i = 0; i < b.length; i++) {
      let slot: number;
      if (key !== null) {
        // Known ids find their slot here; new ones (a few, early) and the rest go the long way.
        const id = key[i]!;
        const known = id >= 0 && id < this.slotById.length ? this.slotById[id]! : 0;
        slot = slots[i] = known > 0 ? known - 1 : this.slotOf(id === NO_NAME ? this.unattributed : id);
      } else {
        slot = slots[i]!;
        if (slot < 0) continue;
      }
      const kind = b.kind[i]!;
      if (kind === VANISHED_CODE) {
        vanishedRows[vanishedCount[0]!++] = i;
        continue;
      }
      const start = b.start[i]!;
      const end = b.end[i]!;
      const us = (end < p1 ? end : p1) - (start > p0 ? start : p0);
      if (us <= 0) continue;
      eSlot[n] = slot;
      eFlavour[n] = b.flavour[i]!;
      eNamespace[n] = b.namespace[i]!;
      eJob[n] = b.job[i]!;
      eUser[n] = b.user[i]!;
      eUs[n] = us;
      n++;
      if (kind === OPEN_CODE && end < p1) this.open++;
    }
    return n;
  }

  /** The batch's vanished rows: the estimate and both bounds, in one set of entries (reserved). */
  private clipVanished(b: LifetimeColumns, slots: Int32Array, count: number): void {
    const { startUs: p0, endUs: p1 } = this.period;
    const e = this.unsettled;
    e.n = clipVanishedRows(b, slots, this.vanishedRows, count, p0, p1, e, this.vanishedInPeriod);
  }

  result(): StatsResult {
    const slots = this.keys.length;
    const { settled, unsettled } = this;
    settled.bySlot(slots);
    unsettled.bySlot(slots);
    // Slots are made for every row read; only those with entries in the period make rows.
    const held = this.keys.map((_, slot) => settled.count(slot) + unsettled.count(slot) > 0);
    const ids = new Set<number>();
    this.keys.forEach((keys, slot) => held[slot] && keys.forEach((k) => ids.add(k)));
    this.names.prefetch?.(ids);
    const name = (id: number) => (id === UNATTRIBUTED_ID ? UNATTRIBUTED : this.names.name(id));
    const rowKeys = this.keys.map((keys, slot) => (held[slot] ? keys.map(name) : []));
    const order = rowKeys.flatMap((_, slot) => (held[slot] ? [slot] : [])).sort((a, b) => compareKeys(rowKeys[a]!, rowKeys[b]!));

    // Bounds wanted in total only are summed over all entries at once, unless the groups are
    // few: summing those three times costs less than a pass over all entries.
    const perGroup = this.groupBounds || order.length <= Aggregator.fewGroups;
    const groups = new GroupTally(new RankTable(this.names.flavours()), this.names.size(), settled, unsettled, slots, perGroup);
    groups.tallyAll(order);
    if (!perGroup) groups.sumBoundsOverAll();
    // The total's jobs (or users) are the sum of the rows' when each job (or user) falls in one
    // group: when every key is a job's namespace or id (or the user). Otherwise, as with a
    // job run by two users in a report by namespace and user, they are counted over all entries.
    const jobsDisjoint = this.by.every((k) => k === 'namespace' || k === 'job');
    const usersDisjoint = this.by.every((k) => k === 'user');
    const overAll = !jobsDisjoint || !usersDisjoint || !perGroup ? groups.countOverAll(jobsDisjoint && perGroup) : null;

    const aggregates: Aggregate[] = groups.bounds.map((bound, k) => {
      if (!perGroup && k > 0) {
        const c = overAll![k]!;
        return { rows: [], total: hoursOf(bound.total, c.jobs, c.users, c.allocations) };
      }
      const rows: Row[] = [];
      let allocations = 0;
      let jobs = 0;
      let users = 0;
      for (const slot of order) {
        const held = bound.allocations[slot]!;
        if (held === 0) continue;
        const row: Partial<Record<GroupKey, string | number>> = {};
        for (let i = 0; i < this.by.length; i++) row[this.by[i]!] = rowKeys[slot]![i]!;
        const at = slot * HOUR_FIELDS.length;
        for (let f = 0; f < HOUR_FIELDS.length; f++) (row as Record<string, number>)[HOUR_FIELDS[f]!] = bound.hours[at + f]!;
        rows.push(Object.assign(row, { jobs: bound.jobs[slot]!, users: bound.users[slot]!, allocations: held }) as Row);
        allocations += held;
        jobs += bound.jobs[slot]!;
        users += bound.users[slot]!;
      }
      if (overAll && !jobsDisjoint) jobs = overAll[k]!.jobs;
      if (overAll && !usersDisjoint) users = overAll[k]!.users;
      return { rows: k > 0 && !this.groupBounds ? [] : rows, total: hoursOf(bound.total, jobs, users, allocations) };
    });
    const est = aggregates[0]!;
    // Nothing vanished: the bounds are the estimate, their rows left empty as groupBounds says.
    const same: Aggregate = this.groupBounds ? est : { rows: [], total: est.total };
    return { ...est, low: aggregates[1] ?? same, high: aggregates[2] ?? same, open: this.open, vanished: this.vanishedInPeriod[0]! };
  }
}

/**
 * What one result (the estimate, or a bound) holds per group slot, and its total products.
 * Numbers in typed arrays rather than objects: a report by user has thousands of groups,
 * and what a report keeps alive until its end is work for the garbage collector.
 */
interface BoundSums {
  /** Entries that hold time in the period (0: the group has no row). */
  allocations: Float64Array;
  jobs: Float64Array;
  users: Float64Array;
  /** HOUR_FIELDS per slot: slot × HOUR_FIELDS.length + field. */
  hours: Float64Array;
  total: Products;
}


/**
 * The sums and distinct counts of each group, under the estimate and both bounds: the
 * settled entries once, then each bound's vanished entries on top. Without vanished
 * entries at all there is one result, which stands for the three.
 */
class GroupTally {
  /** The estimate, the low bound, the high bound (or the estimate alone). */
  readonly bounds: BoundSums[];
  private readonly jobs: Stamps;
  private readonly users: Stamps;
  /** The vanished entries' µs under each bound. */
  private readonly times: readonly Float64Array[];
  /**
   * Slots that hold a vanished entry with no time under the estimate or a bound: there the
   * bounds count different entries, jobs and users. Elsewhere they count the same: once.
   */
  private readonly partial: Uint8Array | null;

  constructor(
    private readonly table: RankTable,
    names: number,
    private readonly settled: Entries,
    private readonly unsettled: Entries,
    slots: number,
    /** Whether each group gets its low and high bounds, or only the totals do. */
    private readonly groupBounds: boolean,
  ) {
    this.jobs = new Stamps(names);
    this.users = new Stamps(names);
    this.times = [unsettled.us, unsettled.usLow, unsettled.usHigh];
    this.partial = unsettled.partial > 0 ? slotsOfPartial(unsettled, this.times, slots) : null;
    const results = unsettled.n > 0 ? 3 : 1;
    this.bounds = Array.from({ length: results }, () => ({
      allocations: new Float64Array(slots),
      jobs: new Float64Array(slots),
      users: new Float64Array(slots),
      hours: new Float64Array(slots * HOUR_FIELDS.length),
      total: zeroProducts(),
    }));
  }

  tallyAll(slots: readonly number[]): void {
    for (const slot of slots) this.tally(slot);
  }

  private tally(slot: number): void {
    const { table, jobs, users, settled, unsettled, times, bounds } = this;
    // The split sums stay exact below 2^26 entries per group, settled and vanished together (see sumRange).
    if (settled.count(slot) + unsettled.count(slot) >= SPLIT) throw new Error(`more than ${SPLIT} allocations in one group`);
    jobs.begin();
    users.begin();
    table.settle(settled, settled.starts[slot]!, settled.starts[slot + 1]!);
    stampRange(settled, settled.starts[slot]!, settled.starts[slot + 1]!, settled.us, jobs, users);
    const mine = settled.count(slot);
    const settledJobs = jobs.count;
    const settledUsers = users.count;
    const from = unsettled.starts[slot]!;
    const to = unsettled.starts[slot + 1]!;
    // Without groupBounds, the bounds are summed in total only (see sumBoundsOverAll).
    const kinds = this.groupBounds ? bounds.length : 1;
    if (from === to) {
      // The estimate and both bounds are the settled sums.
      const p = table.products();
      for (let k = 0; k < kinds; k++) this.keep(bounds[k]!, slot, p, mine, settledJobs, settledUsers);
      return;
    }
    const partial = this.partial !== null && this.partial[slot] === 1;
    let theirs = 0;
    for (let k = 0; k < kinds; k++) {
      table.add(unsettled, from, to, times[k]!);
      const p = table.products();
      if (k === 0 || partial) {
        jobs.onTop();
        users.onTop();
        theirs = stampRange(unsettled, from, to, times[k]!, jobs, users);
      }
      this.keep(bounds[k]!, slot, p, mine + theirs, settledJobs + jobs.count, settledUsers + users.count);
    }
  }

  private keep(bound: BoundSums, slot: number, p: Products, allocations: number, jobs: number, users: number): void {
    if (allocations === 0) return;
    bound.allocations[slot] = allocations;
    bound.jobs[slot] = jobs;
    bound.users[slot] = users;
    const at = slot * HOUR_FIELDS.length;
    for (let f = 0; f < HOUR_FIELDS.length; f++) {
      bound.hours[at + f] = divide(p[f]!, PRODUCT_DIVISORS[f]!);
      bound.total[f]! += p[f]!;
    }
  }

  /**
   * The products of the low and high bounds taken over all entries at once, for a report
   * that shows the bounds in total only (groupBounds false): sums are linear. Their counts
   * come from countOverAll.
   */
  sumBoundsOverAll(): void {
    const { table, settled, unsettled, times, bounds } = this;
    if (settled.n + unsettled.n >= SPLIT) throw new Error(`more than ${SPLIT} allocations in one report`);
    table.settle(settled, 0, settled.n);
    for (let k = 1; k < bounds.length; k++) {
      table.add(unsettled, 0, unsettled.n, times[k]!);
      bounds[k]!.total = table.products();
    }
  }

  /**
   * Distinct jobs and users, and the entries that hold time, over all groups, per result:
   * for totals the rows cannot sum, and bounds summed in total only. `usersOnly`: the jobs
   * are counted per group, and the settled ones are not counted again here.
   */
  countOverAll(usersOnly: boolean): { jobs: number; users: number; allocations: number }[] {
    const { jobs, users, settled, unsettled, times } = this;
    jobs.begin();
    users.begin();
    if (usersOnly) stampUsers(settled, settled.n, users);
    else stampRange(settled, 0, settled.n, settled.us, jobs, users);
    const settledJobs = jobs.count;
    const settledUsers = users.count;
    let all = { jobs: settledJobs, users: settledUsers, allocations: settled.n };
    return this.bounds.map((_, k) => {
      // Every bound counts the same vanished entries unless some hold no time under one.
      if (k === 0 || unsettled.partial > 0) {
        jobs.onTop();
        users.onTop();
        const held = stampRange(unsettled, 0, unsettled.n, times[k]!, jobs, users);
        all = { jobs: settledJobs + jobs.count, users: settledUsers + users.count, allocations: settled.n + held };
      }
      return all;
    });
  }

}

/** The slots that hold a vanished entry with no time under the estimate or a bound (1 in a per-slot table). */
function slotsOfPartial(e: Entries, bounds: readonly Float64Array[], slots: number): Uint8Array {
  const out = new Uint8Array(slots);
  for (let i = 0; i < e.n; i++) if (bounds.some((us) => us[i]! <= 0)) out[e.slot[i]!] = 1;
  return out;
}

function zeroProducts(): Products {
  return new Array<bigint>(RESOURCE_COUNT + 1).fill(0n);
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
