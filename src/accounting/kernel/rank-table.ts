import type { FlavourTable } from '../columns.js';
import { RESOURCE_COUNT } from '../resources.js';
import type { Entries } from './entries.js';

/**
 * The rank table: a group's exact Σ amount × µs per resource. Time is summed per flavour and
 * per distinct amount as plain numbers, kept exact by splitting each sum in two, and only a
 * handful of sums per group become BigInts, however many allocations and flavours it holds.
 */

const SAFE = Number.MAX_SAFE_INTEGER;
const TWO_53 = 2 ** 53;

/**
 * Σ amount × µs per resource in base units × µs, in the order of the resource list (and of
 * a flavour table's amounts), then the allocation-microseconds at ALLOCATION.
 */
export type Products = bigint[];
const ALLOCATION = RESOURCE_COUNT;

/**
 * The flavours of the dictionary (by flavour id), ranked once per report. Each distinct non-zero
 * amount of each resource gets a rank, and each flavour the ranks of its amounts (-1 for
 * zero). A group's times are summed per flavour, then per rank, as plain numbers, so its
 * exact products are a handful per resource however many flavours it holds: a year of a
 * busy cluster has thousands of flavours (every mix of amounts) but fewer than a hundred
 * amounts each.
 */
export class RankTable {
  /** Per flavour, the rank of each resource's amount (flavour × RESOURCE_COUNT + resource). */
  private readonly ranks: Int32Array;
  /** Per rank: its amount (also as a BigInt), and which resource it is. */
  private readonly amount: readonly number[];
  private readonly amountBig: readonly bigint[];
  private readonly resource: readonly number[];
  /**
   * Per rank: its amount as scaled × 2^shift (scaled odd), and the bucket its products add
   * into (see products): resource × 64 + shift.
   */
  private readonly scaled: readonly number[];
  private readonly bucket: readonly number[];
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
    const ranking = rankingOf(flavours);
    this.ranks = ranking.ranks;
    this.amount = ranking.amount;
    this.amountBig = ranking.amountBig;
    this.resource = ranking.resource;
    this.scaled = ranking.scaled;
    this.bucket = ranking.bucket;
    const amounts = flavours.values;
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

/** The ranks of a flavour table's amounts (see RankTable), with what each rank stands for. */
interface Ranking {
  /** How many flavours the table held when ranked: flavours are only ever appended. */
  flavours: number;
  ranks: Int32Array;
  amount: number[];
  amountBig: bigint[];
  resource: number[];
  scaled: number[];
  bucket: number[];
}

/**
 * Rankings by flavour table: a long-lived reader (a query worker of `serve`) keeps its
 * dictionary, and with it its flavour table, between reports, so each report need not rank
 * the same thousands of flavours again. A table that grew since is ranked afresh.
 */
const rankings = new WeakMap<FlavourTable, Ranking>();

function rankingOf(flavours: FlavourTable): Ranking {
  const kept = rankings.get(flavours);
  if (kept && kept.flavours === flavours.count) return kept;
  const r: Ranking = { flavours: flavours.count, ranks: new Int32Array(flavours.values.length), amount: [], amountBig: [], resource: [], scaled: [], bucket: [] };
  const amounts = flavours.values;
  for (let res = 0; res < RESOURCE_COUNT; res++) {
    const seen = new Map<number, number>();
    for (let at = res; at < amounts.length; at += RESOURCE_COUNT) {
      const amount = amounts[at]!;
      let k = -1;
      if (amount !== 0) {
        k = seen.get(amount) ?? -1;
        if (k < 0) {
          k = r.amount.push(amount) - 1;
          r.amountBig.push(BigInt(amount));
          r.resource.push(res);
          let scaled = amount;
          let shift = 0;
          while (scaled % 2 === 0 && shift < 63) {
            scaled /= 2;
            shift++;
          }
          r.scaled.push(scaled);
          r.bucket.push(res * 64 + shift);
          seen.set(amount, k);
        }
      }
      r.ranks[at] = k;
    }
  }
  rankings.set(flavours, r);
  return r;
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

/** 0n to 63n: the shifts of RankTable's buckets, made once. */
const SHIFTS = Array.from({ length: 64 }, (_, i) => BigInt(i));

/** The unit of the high part of a split sum (see sumRange). */
export const SPLIT = 2 ** 26;
const SPLIT_BIG = BigInt(SPLIT);

function joinSplit(high: number, low: number): bigint {
  return BigInt(high) * SPLIT_BIG + BigInt(low);
}

export function zeroProducts(): Products {
  return new Array<bigint>(RESOURCE_COUNT + 1).fill(0n);
}
