import type Papa from 'papaparse';
import { createRequire } from 'node:module';

/** Loaded on first use: a report printed as a table or JSON starts faster without it. */
let papa: typeof Papa | null = null;
const loadPapa = (): typeof Papa => (papa ??= createRequire(import.meta.url)('papaparse') as typeof Papa);

/**
 * A cell a spreadsheet would run as a formula. papaparse's own pattern (`escapeFormulae:
 * true`) needs the rest of the cell on one line, so a name with a line break after `=...`
 * would slip through; this one looks at the first character only.
 */
const FORMULA = /^[=+\-@\t\r]/;

/**
 * CSV for spreadsheets and pandas: RFC 4180 quoting, a stable column order, and cells that
 * start with = + - @ tab or CR neutralised with a leading ' (names come from job metadata).
 */
export function toCsv(columns: readonly string[], rows: readonly Record<string, unknown>[], delimiter = ','): string {
  return loadPapa().unparse({ fields: [...columns], data: rows.map((r) => columns.map((c) => r[c] ?? '')) }, { delimiter, escapeFormulae: FORMULA, newline: '\n' }) + '\n';
}

export interface ParsedCsv {
  fields: string[];
  rows: Record<string, string>[];
}

/**
 * Reads a CSV that toCsv wrote (header row, then records), undoing the neutralisation of
 * formula-like cells. Throws an Error whose message says where the text is malformed.
 */
export function parseCsv(text: string, delimiter: string): ParsedCsv {
  const r = loadPapa().parse<string[]>(text.startsWith('\uFEFF') ? text.slice(1) : text, { delimiter, skipEmptyLines: true });
  const problem = r.errors[0];
  if (problem) throw new Error(`${problem.message}${problem.row !== undefined ? ` (record ${problem.row + 1})` : ''}`);
  const [head, ...records] = r.data;
  if (!head) throw new Error('no header row');
  const fields = head.map(unescapeCell);
  const rows = records.map((cells, i) => {
    if (cells.length !== fields.length) throw new Error(`record ${i + 2} has ${cells.length} fields, the header ${fields.length}`);
    const row: Record<string, string> = {};
    fields.forEach((f, k) => (row[f] = unescapeCell(cells[k]!)));
    return row;
  });
  return { fields, rows };
}

/** A cell as it was before toCsv neutralised it. */
export function unescapeCell(cell: string): string {
  return cell.startsWith("'") && FORMULA.test(cell.slice(1)) ? cell.slice(1) : cell;
}
