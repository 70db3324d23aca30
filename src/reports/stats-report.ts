import type { GroupKey, Hours, Row, StatsResult } from '../accounting/aggregate.js';
import { coverageJson, type Coverage, type CoverageJson } from '../accounting/coverage.js';
import type { SnapshotDiagnostics } from '../snapshots/catalogue.js';
import type { GapPolicy, Micros, Period } from '../accounting/types.js';
import type { SkipCount } from '../snapshots/catalogue.js';
import { formatTimestamp, parseInstant, readableInstant } from '../util/time.js';
import { toCsv } from './csv.js';
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
    failed_scopes: { namespace: string; reason: string; snapshots: number }[];
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
      failed_scopes: d.failedScopes.map((f) => ({ namespace: f.namespace, reason: f.reason, snapshots: f.snapshots })),
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

export const HOUR_COLUMNS = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'] as const;
const COUNT_COLUMNS = ['jobs', 'users', 'allocations'] as const;

const HEADERS: Record<string, [full: string, compact: string]> = {
  cpu_hours: ['CPU-hours', 'CPU h'],
  gpu_hours: ['GPU-hours', 'GPU h'],
  memory_gib_hours: ['Memory GiB-hours', 'Mem GiB h'],
  disk_gib_hours: ['Disk GiB-hours', 'Disk GiB h'],
  cpu_mhz_hours: ['CPU MHz-hours', 'MHz h'],
  jobs: ['Jobs', 'Jobs'],
  users: ['Users', 'Users'],
};

function periodLine(r: StatsReport): string {
  const hours = (parseInstant(r.period.end)! - parseInstant(r.period.start)!) / 3_600_000_000;
  return `Period [${readableInstant(r.period.start)}, ${readableInstant(r.period.end)}) ${r.period.timezone}, ${integer(hours)} h (${r.period.from} to ${r.period.to}, both included)`;
}

/**
 * The table for people; below 100 columns it switches to compact headers and drops MHz-hours.
 * Users show by name where the rows carry one (withUserNames), their ids shortened as much as
 * the width needs. An uncovered stretch is told right under the table.
 */
export function renderStatsTable(r: StatsReport, width: number): string {
  const compact = width < 100;
  const hourCols = compact ? HOUR_COLUMNS.filter((c) => c !== 'cpu_mhz_hours') : [...HOUR_COLUMNS];
  const cols = [...hourCols, 'jobs', 'users'] as const;
  const keyHeads = r.group_by.map((k) => k[0]!.toUpperCase() + k.slice(1));
  const cells = (h: Hours) => cols.map((c) => ((COUNT_COLUMNS as readonly string[]).includes(c) ? integer(h[c as keyof Hours]) : fixed(h[c as keyof Hours])));
  const heads = [...keyHeads, ...cols.map((c) => HEADERS[c]![compact ? 1 : 0]!)];
  // Every cell but the users', made once: a report by user can have thousands of rows.
  const body = r.rows.map((row) => [...r.group_by.map((k) => row[k] ?? ''), ...cells(row)]);
  const totalRow = [...r.group_by.map((_, i) => (i === 0 ? 'Total' : '')), ...cells(r.total)];
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
  const table = plainTable({ head: heads, colAligns: [...keyHeads.map(() => 'left' as const), ...cols.map(() => 'right' as const)] });
  for (const cells of body) table.push(cells);
  if (r.rows.length === 0) table.push([{ colSpan: keyHeads.length + cols.length, content: 'no allocation held resources in this period' }]);
  table.push(totalRow);

  const d = r.diagnostics;
  const lines = [periodLine(r), withRules(table, { afterHeader: true, beforeLast: true })];
  if (r.coverage.warning !== null) lines.push(`Coverage: ${r.coverage.warning}`);
  const lo = r.bounds.low.total;
  const hi = r.bounds.high.total;
  const band = (c: keyof Hours, label: string) => `${label} ${fixed(lo[c])} – ${fixed(hi[c])}`;
  lines.push(
    `Allocations: ${integer(d.open)} open (counted up to the latest snapshot of their namespace), ${integer(d.vanished)} vanished between snapshots (estimate: ${d.gap_policy}${d.gc_window_hours === null ? '' : `, GC window ${d.gc_window_hours} h`})`,
    `Sure band for the allocations the snapshots saw (low – high): ${band('cpu_hours', 'CPU-hours')}; ${band('gpu_hours', 'GPU-hours')}; ${band('memory_gib_hours', 'memory GiB-hours')}`,
    `Snapshots: ${integer(d.snapshots)} read${d.first_snapshot ? ` (${readableInstant(d.first_snapshot)} to ${readableInstant(d.last_snapshot!)})` : ''}, largest gap ${fixed(d.largest_gap_hours)} h`,
    `Failed scopes: ${d.failed_scopes.length === 0 ? 'none' : d.failed_scopes.map((f) => `${f.namespace} in ${f.snapshots} snapshot${f.snapshots > 1 ? 's' : ''} (${f.reason})`).join('; ')}`,
    `Skipped: ${d.skipped.length === 0 ? 'none' : d.skipped.map((s) => `${integer(s.count)} × ${s.reason}`).join('; ')}`,
  );
  return lines.join('\n') + '\n';
}

/** Every row carries the period and its zone, so a CSV file says what it counts on its own. */
export function renderStatsCsv(r: StatsReport, delimiter = ','): string {
  const keys = r.group_by.flatMap((k) => (k === 'user' ? ['user', 'user_name'] : [k]));
  const columns = [...keys, ...HOUR_COLUMNS, ...COUNT_COLUMNS, 'period_start', 'period_end', 'tz'];
  const period = { period_start: r.period.start, period_end: r.period.end, tz: r.period.timezone };
  return toCsv(columns, r.rows.map((row) => ({ ...row, ...period })) as unknown as Record<string, unknown>[], delimiter);
}
