import Papa from 'papaparse';

/**
 * CSV for spreadsheets and pandas: RFC 4180 quoting, a stable column order, and cells that
 * start with = + - @ tab or CR neutralised (names come from job metadata).
 */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[], delimiter = ','): string {
  return Papa.unparse({ fields: [...columns], data: rows.map((r) => columns.map((c) => r[c] ?? '')) }, { delimiter, escapeFormulae: true, newline: '\n' }) + '\n';
}
