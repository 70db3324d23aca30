/**
 * Numbers as people read them, with the same rounding everywhere: the reports' cells and the
 * core's messages (a quota decision's reason) share these.
 */

/**
 * 12,345.68: fixed decimals with thousands separators. Written out rather than with
 * toLocaleString, whose first call loads the locale data: tens of milliseconds a report
 * would spend before printing a table.
 */
export function fixed(n: number, digits = 2): string {
  const [whole, fraction] = roundDecimal(Math.abs(n), digits);
  const sign = n < 0 && /[1-9]/.test(whole + fraction) ? '-' : '';
  return sign + groupThousands(whole) + (digits > 0 ? `.${fraction}` : '');
}

/** 1234567 → 1,234,567 (a report by user formats thousands of cells: no regular expression). */
function groupThousands(whole: string): string {
  if (whole.length <= 3) return whole;
  let out = whole.slice(0, ((whole.length - 1) % 3) + 1);
  for (let at = out.length; at < whole.length; at += 3) out += ',' + whole.slice(at, at + 3);
  return out;
}

/**
 * x ≥ 0 rounded half away from zero on its shortest decimal form, as spreadsheets and
 * toLocaleString do (1.005 → 1.01, where toFixed, rounding the binary value, gives 1.00).
 */
function roundDecimal(x: number, digits: number): [whole: string, fraction: string] {
  const text = String(x);
  // Exponent forms: tiny numbers round to zero, huge ones have no fraction to round.
  if (text.includes('e')) return x < 1 ? ['0', '0'.repeat(digits)] : [BigInt(x).toString(), '0'.repeat(digits)];
  const [whole, fraction = ''] = text.split('.') as [string, string?];
  if (fraction.length <= digits) return [whole, fraction.padEnd(digits, '0')];
  const up = fraction[digits]! >= '5';
  const digitsKept = whole + fraction.slice(0, digits);
  // Up to 15 digits the kept digits are an exact plain number, and print as a BigInt would.
  const all = (digitsKept.length <= 15 ? String(Number(digitsKept) + (up ? 1 : 0)) : String(BigInt(digitsKept) + (up ? 1n : 0n))).padStart(digits + 1, '0');
  return [all.slice(0, all.length - digits), all.slice(all.length - digits)];
}

/** Fixed decimals without separators, for CSV (same rounding as `fixed`). */
export function decimal(n: number, digits = 2): string {
  const [whole, fraction] = roundDecimal(Math.abs(n), digits);
  const sign = n < 0 && /[1-9]/.test(whole + fraction) ? '-' : '';
  return sign + whole + (digits > 0 ? `.${fraction}` : '');
}

export function integer(n: number): string {
  return fixed(n, 0);
}
