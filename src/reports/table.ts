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

export function fixed(n: number, digits = 2): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function integer(n: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

/** Terminal width for layout choices: COLUMNS, then the TTY, then a wide default for pipes. */
export function terminalWidth(): number {
  const env = Number(process.env.COLUMNS);
  if (Number.isFinite(env) && env > 0) return env;
  return process.stdout.columns ?? 200;
}
