import type Papa from 'papaparse';
import { createRequire } from 'node:module';

/** Loaded on first use: a report printed as a table or JSON starts faster without it. */
let papa: typeof Papa | null = null;
const loadPapa = (): typeof Papa => (papa ??= createRequire(import.meta.url)('papaparse') as typeof Papa);

/**
 * CSV for spreadsheets and pandas: RFC 4180 quoting, a stable column order, and cells that
 * start with = + - @ tab or CR neutralised (names come from job metadata).
 */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[], delimiter = ','): string {
  return loadPapa().unparse({ fields: [...columns], data: rows.map((r) => columns.map((c) => r[c] ?? '')) }, { delimiter, escapeFormulae: true, newline: '\n' }) + '\n';
}
