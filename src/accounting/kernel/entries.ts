import type { LifetimeColumns } from '../columns.js';

/**
 * The entries: what the kernel keeps of each allocation that holds time in the period, as
 * typed columns written in place (no object per allocation), then grouped by slot with a
 * counting sort, so that each group's entries are one range to sum.
 */

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
export class Entries {
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
export function clipVanishedRows(b: LifetimeColumns, slots: Int32Array, rows: Int32Array, count: number, p0: number, p1: number, e: Entries, counts: Int32Array): number {
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

/** The loops of Entries.bySlot, each alone in its function (see sumRange in rank-table.ts). */
function countPerSlot(slot: Int32Array, n: number, starts: Int32Array): void {
  for (let i = 0; i < n; i++) starts[slot[i]! + 1]!++;
}

function placeBySlot(slot: Int32Array, n: number, next: Int32Array, order: Int32Array): void {
  for (let i = 0; i < n; i++) order[next[slot[i]!]!++] = i;
}
