import type Table from 'cli-table3';
import { createRequire } from 'node:module';

/** Loaded on first use: a report printed as JSON or CSV starts faster without it. */
let TableClass: typeof Table | null = null;
const loadTable = (): typeof Table => (TableClass ??= createRequire(import.meta.url)('cli-table3') as typeof Table);
let widthOf: ((s: string) => number) | null = null;
const loadWidth = (): ((s: string) => number) => (widthOf ??= createRequire(import.meta.url)('string-width') as (s: string) => number);

// Numbers are formatted where the core can use them too; reports keep importing them from here.
export { decimal, fixed, integer } from '../util/numbers.js';

type Align = 'left' | 'right' | 'center';
/** A cell: text, or text spanning columns (a message in place of rows). */
export type Cell = string | { colSpan: number; content: string };

/**
 * A table without colours (output must be the same on a TTY, in a pipe and in golden files)
 * and without lines between rows, drawn as cli-table3 draws it. Tables without spanning or
 * multi-line cells are drawn here instead, to the same bytes (a test compares both):
 * cli-table3's layout checks every cell against every other for spans, which takes seconds
 * at thousands of rows (a report by user), and loading it costs a short report about
 * 10 ms of its time.
 */
export class PlainTable {
  private readonly rows: Cell[][] = [];

  constructor(private readonly options: { head?: string[]; colAligns?: Align[] } = {}) {}

  push(...rows: Cell[][]): void {
    this.rows.push(...rows);
  }

  toString(): string {
    return this.draw(this.canDrawOwn() ? 'own' : 'library');
  }

  /** The table drawn by cli-table3, or here (which only tests choose). */
  draw(by: 'library' | 'own'): string {
    if (by === 'own') return this.drawOwn();
    const Ctor = loadTable();
    const table = new Ctor({
      ...this.options,
      chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
      style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
    });
    table.push(...(this.rows as Table.HorizontalTableRow[]));
    return table.toString();
  }

  /**
   * Plain one-line cells, aligned left or right, and rows of one cell spanning them all:
   * what drawOwn handles. (cli-table3 draws stray junctions around a row-wide span.)
   */
  private canDrawOwn(): boolean {
    const plain = (c: Cell) => typeof c === 'string' && !/[\n\r\t\u001b]/.test(c);
    const columns = this.columns();
    const wide = (r: Cell[]) => r.length === 1 && typeof r[0] === 'object' && r[0].colSpan === columns && plain(r[0].content);
    return (this.options.colAligns ?? []).every((a) => a !== 'center') && this.rows.every((r) => r.every(plain) || wide(r)) && (this.options.head ?? []).every(plain);
  }

  private columns(): number {
    const plainRows = this.rows.filter((r) => r.every((c) => typeof c === 'string'));
    return Math.max(0, this.options.head?.length ?? 0, ...plainRows.map((r) => r.length));
  }

  private drawOwn(): string {
    const width = textWidth;
    const spanning = (r: Cell[]): string | null => (typeof r[0] === 'object' ? r[0].content : null);
    const lines = [...(this.options.head ? [this.options.head] : []), ...(this.rows.filter((r) => spanning(r) === null) as string[][])];
    const columns = this.columns();
    const widths = Array.from({ length: columns }, (_, c) => Math.max(0, ...lines.map((l) => width(l[c] ?? ''))));
    // A spanning row wider than the columns widens the last one.
    const inner = () => widths.reduce((a, w) => a + w + 3, -3);
    for (const r of this.rows) {
      const text = spanning(r);
      if (text !== null && columns > 0 && width(text) > inner()) widths[columns - 1]! += width(text) - inner();
    }
    const align = this.options.colAligns ?? [];
    const rule = (left: string, mid: string, right: string) => left + widths.map((w) => '─'.repeat(w + 2)).join(mid) + right;
    const row = (cells: Cell[]) => {
      const text = spanning(cells);
      if (text !== null) return '│ ' + text + ' '.repeat(inner() - width(text)) + ' │';
      return (
        '│' +
        widths
          .map((w, c) => {
            const text = (cells[c] as string | undefined) ?? '';
            const pad = ' '.repeat(w - width(text));
            return ' ' + (align[c] === 'right' ? pad + text : text + pad) + ' ';
          })
          .join('│') +
        '│'
      );
    };
    const all: Cell[][] = [...(this.options.head ? [this.options.head] : []), ...this.rows];
    return [rule('┌', '┬', '┐'), ...all.map(row), rule('└', '┴', '┘')].join('\n');
  }
}

/** Columns a text takes: printable ASCII is one a character; anything else is measured as cli-table3 does. */
export function textWidth(s: string): number {
  return /^[\x20-\x7e]*$/.test(s) ? s.length : loadWidth()(s);
}

export function plainTable(options: { head?: string[]; colAligns?: Align[] } = {}): PlainTable {
  return new PlainTable(options);
}

/**
 * Renders a table with rule lines after its header and before its last row (the total),
 * which cli-table3 cannot place by itself.
 */
export function withRules(table: PlainTable, opts: { afterHeader: boolean; beforeLast: boolean }): string {
  const lines = table.toString().split('\n');
  const rule = lines[0]!.replace('┌', '├').replace('┐', '┤').replaceAll('┬', '┼');
  // lines: top border, header (if any), rows..., bottom border; multi-line cells do not occur here.
  if (opts.beforeLast) lines.splice(lines.length - 2, 0, rule);
  if (opts.afterHeader) lines.splice(2, 0, rule);
  return lines.join('\n');
}

/** Terminal width for layout choices: COLUMNS, then the TTY, then a wide default for pipes. */
export function terminalWidth(): number {
  const env = Number(process.env.COLUMNS);
  if (Number.isFinite(env) && env > 0) return env;
  return process.stdout.columns ?? 200;
}
