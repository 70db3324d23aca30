/**
 * Kubernetes resource quantities ("500m", "1.5Gi", "129e6", ...), parsed exactly.
 *
 * A quantity is returned as an integer number of nano-units (bigint): the API server's parser
 * rounds every value up, in magnitude, to a multiple of 10^-9 and caps it at 2^63-1, so an
 * integer count of nanos holds any quantity exactly. Sums and maxima stay exact; the
 * scheduler's own rounding (millicores for CPU, whole units for the rest) is applied once,
 * at the end, by `ceilMilli` and `ceilUnits`.
 *
 * Grammar (apimachinery resource.Quantity):
 *
 *   quantity ::= [+-] number suffix
 *   number   ::= digits | digits "." digits | digits "." | "." digits
 *   suffix   ::= "" | n u m k M G T P E          (decimal SI)
 *              | Ki Mi Gi Ti Pi Ei               (binary SI)
 *              | (e|E) [+-] digits               (decimal exponent)
 *
 * Case matters: "m" is milli, "M" mega; "400m" of memory is 0.4 bytes.
 */

export class QuantityError extends Error {}

const NANO = 1_000_000_000n;
/** 2^63-1 units, the largest magnitude a quantity may have. */
const MAX_NANOS = (2n ** 63n - 1n) * NANO;

const DECIMAL_SI: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SI: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

const SHAPE = /^([+-]?)(\d*)(?:\.(\d*))?(.*)$/;

/** Parses a quantity to nano-units, rounding up in magnitude to the nano as the API server does. */
export function parseQuantity(text: string): bigint {
  const m = SHAPE.exec(text);
  const [, sign, whole, frac, suffix] = m ?? [];
  if (!m || (whole === '' && (frac ?? '') === '')) throw new QuantityError(`not a Kubernetes quantity: ${JSON.stringify(text)}`);
  const digits = BigInt(`${whole}${frac ?? ''}` || '0');
  // value = digits × 10^(exp10 − len(frac)) × 2^exp2
  let exp10 = -(frac ?? '').length;
  let exp2 = 0;
  if (suffix! in DECIMAL_SI) exp10 += DECIMAL_SI[suffix!]!;
  else if (suffix! in BINARY_SI) exp2 = BINARY_SI[suffix!]!;
  else if (/^[eE][+-]?\d+$/.test(suffix!)) {
    exp10 += Number(suffix!.slice(1));
  } else {
    throw new QuantityError(`not a Kubernetes quantity: ${JSON.stringify(text)} (unknown suffix ${JSON.stringify(suffix)}; use one of n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent such as e6)`);
  }
  // In nanos: digits × 2^exp2 × 10^(exp10 + 9), rounded up when the power is negative.
  let num = digits << BigInt(exp2);
  const shift = exp10 + 9;
  if (num === 0n) return 0n;
  if (shift > 40) num = MAX_NANOS; // at least 10^40 nanos: past the cap, however huge the exponent
  else if (shift >= 0) num *= 10n ** BigInt(shift);
  else if (-shift > String(num).length) num = 1n; // less than one nano: rounded up to one
  else {
    const den = 10n ** BigInt(-shift);
    num = (num + den - 1n) / den;
  }
  if (num > MAX_NANOS) num = MAX_NANOS;
  return sign === '-' ? -num : num;
}

/** Rounds nanos up to whole milli-units (the scheduler's MilliValue). */
export function ceilMilli(nanos: bigint): bigint {
  return ceilDiv(nanos, 1_000_000n);
}

/** Rounds nanos up to whole units (the scheduler's Value, e.g. bytes of memory). */
export function ceilUnits(nanos: bigint): bigint {
  return ceilDiv(nanos, NANO);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b > 0n ? q + 1n : q;
}
