import type { Hours } from '../aggregate.js';
import { HOUR_DIVISORS, RESOURCES } from '../resources.js';
import type { Products } from './rank-table.js';

/**
 * From exact products (base units × µs, in BigInt) to the hours a row reports: one division
 * per field, rounded once, in plain numbers when both operands are small enough.
 */

const MICROS_PER_HOUR = 3_600_000_000n;

/** The hour fields of a row, in the order of Products: each resource's, then the allocations'. */
export const HOUR_FIELDS: readonly (keyof Hours)[] = [...RESOURCES.map((r) => r.hours), 'allocation_hours'];
/** Divisors from base units × µs (or µs) to the reported unit-hours, in the order of HOUR_FIELDS. */
export const PRODUCT_DIVISORS: readonly bigint[] = [...HOUR_DIVISORS, MICROS_PER_HOUR];

export function hoursOf(p: Products, jobs: number, users: number, allocations: number): Hours {
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
