import { heldUs, resourceUs } from '../accounting/reference.js';
import type { Amounts, Micros } from '../accounting/types.js';
import { resource, type AmountField } from '../accounting/resources.js';
import { QUOTA_RESOURCES, type QuotaResource } from './policy.js';

/**
 * A user's usage over a rolling window, exactly: Σ amount × |lifetime ∩ [t − W, t)| in base
 * units × microseconds (BigInt), and the earliest instant at which that sum, as the window
 * slides, falls to a target. Pure: lifetimes and instants in, numbers out.
 */

export interface UsageInterval {
  startUs: Micros;
  /** Where counting stops today: the recorded end, or the latest snapshot for an open one. */
  endUs: Micros;
  /** Still holding resources at the latest snapshot: assumed to keep running afterwards. */
  open: boolean;
  amounts: Amounts;
}

/** Each quota resource's field in Amounts. */
const AMOUNT_OF = Object.fromEntries(QUOTA_RESOURCES.map((n) => [n, resource(n).amount])) as Record<QuotaResource, AmountField>;

export function amountOf(a: Amounts, name: QuotaResource): number {
  return a[AMOUNT_OF[name]];
}

/**
 * The intervals with every open one counted up to now rather than the latest snapshot: an
 * allocation still running then is assumed to have kept running since (for holding running
 * servers to their limits, where the time since the latest snapshot is usage too).
 */
export function openUntil(intervals: readonly UsageInterval[], nowUs: Micros): UsageInterval[] {
  return intervals.map((iv) => (iv.open && iv.endUs < nowUs ? { ...iv, endUs: nowUs } : iv));
}

/** Σ amount × |[start, end) ∩ [fromUs, toUs)|, counting recorded usage only. */
export function usedBetween(intervals: readonly UsageInterval[], resource: QuotaResource, fromUs: Micros, toUs: Micros): bigint {
  const window = { startUs: fromUs, endUs: toUs };
  let sum = 0n;
  for (const iv of intervals) sum += resourceUs(amountOf(iv.amounts, resource), heldUs(iv.startUs, iv.endUs, window));
  return sum;
}

/**
 * The earliest integer instant t ≥ nowUs at which usage in [t − W, t) is at most `target`,
 * assuming no usage beyond what is recorded, except that open allocations keep running (from
 * their start, with no end). Null when that never happens: the open allocations alone hold
 * more than the target over a whole window, or the target is negative.
 *
 * Each interval contributes a × |[s, e) ∩ [t − W, t)|, which is piecewise linear in t with
 * kinks at s (slope +a), e (−a), s + W (−a) and e + W (+a). The sum is walked from now over
 * the kinks in order; within a segment it is linear, so the crossing is solved exactly.
 */
export function retryTime(intervals: readonly UsageInterval[], resource: QuotaResource, windowUs: Micros, nowUs: Micros, target: bigint): Micros | null {
  if (target < 0n) return null;
  const valueAt = (t: Micros): bigint => {
    const window = { startUs: t - windowUs, endUs: t };
    let sum = 0n;
    for (const iv of intervals) sum += resourceUs(amountOf(iv.amounts, resource), heldUs(iv.startUs, iv.open ? Infinity : iv.endUs, window));
    return sum;
  };
  let value = valueAt(nowUs);
  if (value <= target) return nowUs;
  // Slope changes at instants after now; the slope on [now, next kink) sums those up to now.
  const kinks: [Micros, number][] = [];
  let slope = 0;
  const kink = (at: Micros, delta: number) => {
    if (at <= nowUs) slope += delta;
    else kinks.push([at, delta]);
  };
  for (const iv of intervals) {
    const a = amountOf(iv.amounts, resource);
    if (a === 0 || (!iv.open && iv.endUs <= iv.startUs)) continue;
    kink(iv.startUs, a);
    kink(iv.startUs + windowUs, -a);
    if (!iv.open) {
      kink(iv.endUs, -a);
      kink(iv.endUs + windowUs, a);
    }
  }
  kinks.sort((x, y) => x[0] - y[0]);
  let at = nowUs;
  for (let i = 0; i <= kinks.length; i++) {
    const next = i < kinks.length ? kinks[i]![0] : Infinity;
    if (slope < 0) {
      // value(t) = value + slope × (t − at): the first integer t with value(t) ≤ target.
      const excess = value - target;
      const down = BigInt(-slope);
      const t = at + Number((excess + down - 1n) / down);
      if (t <= next) return t;
    }
    if (next === Infinity) return null;
    value += BigInt(slope) * BigInt(next - at);
    at = next;
    // Kinks at the same instant apply together.
    while (i < kinks.length && kinks[i]![0] === at) slope += kinks[i++]![1];
    i--;
    if (value <= target) return at;
  }
  return null;
}
