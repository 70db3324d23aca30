import type Table from 'cli-table3';
import { createRequire } from 'node:module';

/** Loaded on first use: a report printed as JSON or CSV starts faster without it. */
let TableClass: typeof Table | null = null;
const loadTable = (): typeof Table => (TableClass ??= createRequire(import.meta.url)('cli-table3') as typeof Table);

/**
 * A cli-table3 table without colours (output must be the same on a TTY, in a pipe and in
 * golden files) and without lines between rows.
 */
export function plainTable(options: ConstructorParameters<typeof Table>[0] = {}): InstanceType<typeof Table> {
  const Ctor = loadTable();
  return new Ctor({
    ...options,
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
  });
}

/**
 * Renders a table with rule lines after its header and before its last row (the total),
 * which cli-table3 cannot place by itself.
 */
export function withRules(table: InstanceType<typeof Table>, opts: { afterHeader: boolean; beforeLast: boolean }): string {
  const lines = table.toString().split('\n');
  const rule = lines[0]!.replace('┌', '├').replace('┐', '┤').replaceAll('┬', '┼');
  // lines: top border, header (if any), rows..., bottom border; multi-line cells do not occur here.
  if (opts.beforeLast) lines.splice(lines.length - 2, 0, rule);
  if (opts.afterHeader) lines.splice(2, 0, rule);
  return lines.join('\n');
}

/**
 * 12,345.68: fixed decimals with thousands separators. Written out rather than with
 * toLocaleString, whose first call loads the locale data: tens of milliseconds a report
 * would spend before printing a table.
 */
export function fixed(n: number, digits = 2): string {
  const [whole, fraction] = roundDecimal(Math.abs(n), digits);
  const sign = n < 0 && /[1-9]/.test(whole + fraction) ? '-' : '';
  return sign + whole.replace(/\B(?=(\d{3})+$)/g, ',') + (digits > 0 ? `.${fraction}` : '');
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
  let kept = BigInt(whole + fraction.slice(0, digits));
  if (fraction[digits]! >= '5') kept += 1n;
  const all = kept.toString().padStart(digits + 1, '0');
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

/** Terminal width for layout choices: COLUMNS, then the TTY, then a wide default for pipes. */
export function terminalWidth(): number {
  const env = Number(process.env.COLUMNS);
  if (Number.isFinite(env) && env > 0) return env;
  return process.stdout.columns ?? 200;
}
