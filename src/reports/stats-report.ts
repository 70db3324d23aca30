import { bareName, clusterOf } from '../accounting/clusters.js';
import type { GroupKey, Hours, Row, StatsResult } from '../accounting/aggregate.js';
import { HOUR_COLUMNS, REPORT_ORDER, STATS_BAND_ORDER } from '../accounting/resources.js';
import { coverageJson, type Coverage, type CoverageJson } from '../accounting/coverage.js';
import type { SnapshotDiagnostics } from '../snapshots/catalogue.js';
import type { GapPolicy, Micros, Period } from '../accounting/types.js';
import type { SkipCount } from '../snapshots/catalogue.js';
import { formatTimestamp, parseInstant, readableInstant } from '../util/time.js';
import { tableColumns, tableParts, type Column, type Output } from './output.js';
import { fixed, integer, plainTable, textWidth, withRules } from './table.js';
import { UserColumn, type UserNames } from './user-names.js';

/**
 * The `stats` report: one JSON shape (the same with or without data), and the table and
 * CSV renderings of it. Hours stay unrounded here; only the table rounds.
 */

/** A row; grouped by user, it also carries the user's name from the user database (null when unknown). */
export type StatsRow = Row & { user_name?: string | null };

export interface StatsReport {
  period: { from: string; to: string; timezone: string; start: string; end: string };
  /** What the snapshots cover of the period (docs/accounting.md, "Coverage"). */
  coverage: CoverageJson;
  method: 'exact';
  group_by: GroupKey[];
  rows: StatsRow[];
  total: Hours;
  bounds: { low: { rows: StatsRow[]; total: Hours }; high: { rows: StatsRow[]; total: Hours } };
  diagnostics: {
    snapshots: number;
    first_snapshot: string | null;
    last_snapshot: string | null;
    largest_gap_hours: number;
    gap_policy: GapPolicy;
    gc_window_hours: number | null;
    failed_scopes: { cluster?: string; namespace: string; reason: string; snapshots: number }[];
    open: number;
    vanished: number;
    skipped: SkipCount[];
  };
}

const HOUR = 3_600_000_000;

export function buildStatsReport(args: {
  result: StatsResult;
  period: Period;
  groupBy: GroupKey[];
  coverage: Coverage;
  diagnostics: SnapshotDiagnostics;
  skipped: SkipCount[];
  gapPolicy: GapPolicy;
  gcWindowUs: Micros | null;
}): StatsReport {
  const { result, period, diagnostics: d } = args;
  return {
    period: { from: period.from, to: period.to, timezone: period.timezone, start: formatTimestamp(period.startUs), end: formatTimestamp(period.endUs) },
    coverage: coverageJson(args.coverage),
    method: 'exact',
    group_by: args.groupBy,
    rows: result.rows,
    total: result.total,
    bounds: { low: { rows: result.low.rows, total: result.low.total }, high: { rows: result.high.rows, total: result.high.total } },
    diagnostics: {
      snapshots: d.snapshots,
      first_snapshot: d.firstUs === null ? null : formatTimestamp(d.firstUs),
      last_snapshot: d.lastUs === null ? null : formatTimestamp(d.lastUs),
      largest_gap_hours: d.largestGapUs / HOUR,
      gap_policy: args.gapPolicy,
      gc_window_hours: args.gcWindowUs === null ? null : args.gcWindowUs / HOUR,
      // A named cluster's scope says its cluster apart (docs/accounting.md#clusters).
      failed_scopes: d.failedScopes.map((f) => ({ ...(clusterOf(f.namespace) === '' ? {} : { cluster: clusterOf(f.namespace) }), namespace: bareName(f.namespace), reason: f.reason, snapshots: f.snapshots })),
      open: result.open,
      vanished: result.vanished,
      skipped: args.skipped,
    },
  };
}

/** Rows grouped by user gain `user_name`, right after `user`; other reports are returned as they are. */
export function withUserNames<R extends StatsReport>(r: R, names: UserNames): R {
  if (!r.group_by.includes('user')) return r;
  const named = (rows: StatsRow[]): StatsRow[] =>
    rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        out[k] = v;
        if (k === 'user') out.user_name = typeof v === 'string' ? names(v) : null;
      }
      return out as unknown as StatsRow;
    });
  const { low, high } = r.bounds;
  return { ...r, rows: named(r.rows), bounds: { low: { ...low, rows: named(low.rows) }, high: { ...high, rows: named(high.rows) } } };
}

/** Each resource's headers (resources.ts); below 100 columns the table drops detail resources (MHz-hours). */
const HEADERS: Record<string, [full: string, compact: string | null]> = {
  ...Object.fromEntries(REPORT_ORDER.map((r) => [r.hours, [r.header, r.compact]])),
  jobs: ['Jobs', 'Jobs'],
  users: ['Users', 'Users'],
};

/** A header inside a sentence: "memory GiB-hours", but "CPU-hours". */
const inSentence = (header: string) => (/^[A-Z][a-z]/.test(header) ? header[0]!.toLowerCase() + header.slice(1) : header);

const NOT_IN_TABLE = 'in JSON and CSV only: the table keeps to the resources, to fit a terminal';

/**
 * The columns of a report grouped by `groupBy`: the keys (a user's name after the user), the
 * hours, the counts, then the period every row shares.
 */
export function statsColumns(r: Pick<StatsReport, 'group_by' | 'period'>): Column<StatsRow>[] {
  const amount = (key: keyof Hours, show: (n: number) => string): Column<StatsRow> => {
    const head = HEADERS[key];
    return { key, table: head ? { header: head[0], compact: head[1], align: 'right', cell: (row) => show(row[key]) } : { omitted: NOT_IN_TABLE } };
  };
  const shared = (key: string, path: 'start' | 'end' | 'timezone'): Column<StatsRow> => ({
    key,
    json: { shared: `period.${path}` },
    csv: () => r.period[path],
    table: { omitted: 'in the Period line above the table' },
  });
  return [
    ...r.group_by.flatMap((k): Column<StatsRow>[] => {
      const key: Column<StatsRow> = { key: k, table: { header: k[0]!.toUpperCase() + k.slice(1), align: 'left', cell: (row) => row[k] ?? '' } };
      return k === 'user' ? [key, { key: 'user_name', table: { omitted: 'in the User column: the name, else the id' } }] : [key];
    }),
    ...HOUR_COLUMNS.map((c) => amount(c, fixed)),
    amount('allocation_hours', fixed),
    amount('jobs', integer),
    amount('users', integer),
    amount('allocations', integer),
    shared('period_start', 'start'),
    shared('period_end', 'end'),
    shared('tz', 'timezone'),
  ];
}

/** The report as one output: table, CSV (every row carries the period and its zone) or JSON. */
export function statsOutput(r: StatsReport): Output<StatsRow> {
  const columns = statsColumns(r);
  return { columns, rows: r.rows, json: r, table: (width) => renderStatsTable(r, width, columns) };
}

function periodLine(r: StatsReport): string {
  const hours = (parseInstant(r.period.end)! - parseInstant(r.period.start)!) / 3_600_000_000;
  return `Period [${readableInstant(r.period.start)}, ${readableInstant(r.period.end)}) ${r.period.timezone}, ${integer(hours)} h (${r.period.from} to ${r.period.to}, both included)`;
}

/**
 * The table for people; below 100 columns it switches to compact headers and drops MHz-hours.
 * Users show by name where the rows carry one (withUserNames), their ids shortened as much as
 * the width needs. An uncovered stretch is told right under the table.
 */
export function renderStatsTable(r: StatsReport, width: number, columns = statsColumns(r)): string {
  const compact = width < 100;
  const shown = tableColumns(columns, { compact });
  const isKey = (key: string) => (r.group_by as string[]).includes(key);
  const { head: heads, colAligns, body } = tableParts(shown, r.rows, compact);
  const totalRow = shown.map((c, i) => (isKey(c.key) ? (i === 0 ? 'Total' : '') : c.table.cell(r.total as StatsRow)));
  const userAt = r.group_by.indexOf('user');
  if (userAt >= 0 && r.rows.length > 0) {
    const names = new Map(r.rows.map((row) => [row.user ?? '', row.user_name ?? null]));
    const column = new UserColumn(
      r.rows.map((row) => row.user ?? ''),
      (u) => names.get(u) ?? null,
    );
    // The room left for the user column is what the rest of the table takes: each other
    // column's widest cell plus its padding and border, and the user column's own.
    let rest = 1 + 3;
    for (let c = 0; c < heads.length; c++) if (c !== userAt) rest += 3 + Math.max(textWidth(heads[c]!), textWidth(totalRow[c]!), ...body.map((cells) => textWidth(cells[c]!)));
    column.labels(width - rest).forEach((label, i) => (body[i]![userAt] = label));
  }
  const table = plainTable({ head: heads, colAligns });
  for (const cells of body) table.push(cells);
  if (r.rows.length === 0) table.push([{ colSpan: shown.length, content: 'no allocation held resources in this period' }]);
  table.push(totalRow);

  const d = r.diagnostics;
  const lines = [periodLine(r), withRules(table, { afterHeader: true, beforeLast: true })];
  if (r.coverage.warning !== null) lines.push(`Coverage: ${r.coverage.warning}`);
  const lo = r.bounds.low.total;
  const hi = r.bounds.high.total;
  const band = (c: keyof Hours, label: string) => `${label} ${fixed(lo[c])} – ${fixed(hi[c])}`;
  lines.push(
    `Allocations: ${integer(d.open)} open (counted up to the latest snapshot of their namespace), ${integer(d.vanished)} vanished between snapshots (estimate: ${d.gap_policy}${d.gc_window_hours === null ? '' : `, GC window ${d.gc_window_hours} h`})`,
    `Sure band for the allocations the snapshots saw (low – high): ${STATS_BAND_ORDER.map((r) => band(r.hours, inSentence(r.header))).join('; ')}`,
    `Snapshots: ${integer(d.snapshots)} read${d.first_snapshot ? ` (${readableInstant(d.first_snapshot)} to ${readableInstant(d.last_snapshot!)})` : ''}, largest gap ${fixed(d.largest_gap_hours)} h`,
    `Failed scopes: ${d.failed_scopes.length === 0 ? 'none' : d.failed_scopes.map((f) => `${f.cluster === undefined ? '' : `${f.cluster}/`}${f.namespace} in ${f.snapshots} snapshot${f.snapshots > 1 ? 's' : ''} (${f.reason})`).join('; ')}`,
    `Skipped: ${d.skipped.length === 0 ? 'none' : d.skipped.map((s) => `${integer(s.count)} × ${s.reason}`).join('; ')}`,
  );
  return lines.join('\n') + '\n';
}
