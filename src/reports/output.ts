import { toCsv } from './csv.js';

/**
 * One output path for reports made of rows. A command describes its rows once: each column's
 * key, where JSON holds it, how a table shows it, or why a table leaves it out. renderOutput
 * prints that description as a table, CSV or JSON, so a column cannot reach one format and
 * be forgotten in another (test/e2e/output-columns.test.ts holds every command to it).
 */

export const OUTPUT_FORMATS = ['table', 'csv', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface TableColumn<R> {
  /** The header for people. */
  header: string;
  /** The header of the compact layout (narrow terminals); null: that layout may leave the column out. Default: header. */
  compact?: string | null;
  /** When the table shows the column only in some layouts: which, in words (e.g. "with a request"). */
  only?: string;
  align: 'left' | 'right';
  /** The cell for people (rounded, with thousands separators...). */
  cell: (row: R) => string;
}

/**
 * Where JSON holds a column: under its key in each row (the default); as the name each row
 * is filed under, when the rows are an object; or once, at a path of the document, when every
 * row shares the value (CSV repeats it on each row so that a file says what it counts alone).
 */
export type JsonPlace = 'in row' | 'row name' | { shared: string };

export interface Column<R> {
  /** The CSV header and the JSON key. */
  key: string;
  json?: JsonPlace;
  /** The CSV cell; default: the row's value under `key`. */
  csv?: (row: R) => unknown;
  /** How a table shows the column, or why it leaves it out: said here, so an omission is deliberate. */
  table: TableColumn<R> | { omitted: string };
}

export interface Output<R> {
  columns: readonly Column<R>[];
  rows: readonly R[];
  /** What JSON prints: the whole report, its rows included. */
  json: unknown;
  /**
   * The table for people, fitted to `width` columns: the command draws the lines around it
   * (headline, totals, notes), from the cells tableParts gives.
   */
  table?: (width: number) => string;
}

export interface RenderOptions {
  delimiter?: string;
  /** Terminal width for the table. */
  width?: number;
}

/** The one place a row-shaped report becomes text. */
export function renderOutput<R>(out: Output<R>, format: OutputFormat, opts: RenderOptions = {}): string {
  if (format === 'json') return JSON.stringify(out.json, null, 2) + '\n';
  if (format === 'csv') return renderCsv(out.columns, out.rows, opts.delimiter);
  if (!out.table) throw new Error('this report has no table');
  return out.table(opts.width ?? Infinity);
}

export function renderCsv<R>(columns: readonly Column<R>[], rows: readonly R[], delimiter = ','): string {
  const keys = columns.map((c) => c.key);
  const plain = columns.every((c) => !c.csv);
  // Rows whose values are already the CSV cells go as they are: a report by user has thousands.
  const records = plain
    ? (rows as unknown as Record<string, unknown>[])
    : rows.map((row) => {
        const record: Record<string, unknown> = {};
        for (const c of columns) record[c.key] = c.csv ? c.csv(row) : (row as Record<string, unknown>)[c.key];
        return record;
      });
  return toCsv(keys, records, delimiter);
}

export type ShownColumn<R> = Column<R> & { table: TableColumn<R> };

export const shownInTable = <R>(c: Column<R>): c is ShownColumn<R> => !('omitted' in c.table);

/** The columns a table shows, in `order` (keys) if given, else in the columns' order; compact: without those it may leave out. */
export function tableColumns<R>(columns: readonly Column<R>[], opts: { compact?: boolean; order?: readonly string[]; keep?: (c: ShownColumn<R>) => boolean } = {}): ShownColumn<R>[] {
  const shown = columns.filter(shownInTable);
  const ordered = opts.order ? opts.order.map((k) => shown.find((c) => c.key === k)!) : shown;
  return ordered.filter((c) => (opts.keep ? opts.keep(c) : !(opts.compact && c.table.compact === null)));
}

/** Headers, alignments and body cells of a table, from its columns. */
export function tableParts<R>(shown: readonly ShownColumn<R>[], rows: readonly R[], compact = false): { head: string[]; colAligns: ('left' | 'right')[]; body: string[][] } {
  return {
    head: shown.map((c) => (compact ? (c.table.compact ?? c.table.header) : c.table.header)),
    colAligns: shown.map((c) => c.table.align),
    body: rows.map((row) => shown.map((c) => c.table.cell(row))),
  };
}
