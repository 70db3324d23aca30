import type { DayUsage, NamespaceUsage, ResourceHours } from '../accounting/daily.js';
import { AI4OS_SUMMARY_ORDER, HOUR_COLUMNS, REPORT_ORDER } from '../accounting/resources.js';
import { noCounts, type DayCounts } from '../accounting/job-counts.js';
import type { Period } from '../accounting/types.js';
import { toCsv } from './csv.js';

/**
 * The files `summarize` writes per namespace, under the AI4OS names so that existing
 * dashboards keep working: `<ns>-timeseries.csv` (one row per day), `<ns>-users-agg.csv`
 * (one row per user) and `<ns>-full-agg.csv` (the namespace). The default columns carry
 * their unit and use the names of `stats`; `ai4os` writes the original columns and units
 * (averages per day, resource-days per user, whole numbers) for scripts that expect them.
 * Pure: contents in, file names and texts out.
 */

export type SummaryFormat = 'hourmeter' | 'ai4os';

export { HOUR_COLUMNS };
/** The average amount held at once over a day, per resource, in the order of HOUR_COLUMNS. */
export const AVERAGE_COLUMNS: readonly string[] = REPORT_ORDER.map((r) => r.averageColumn);

export const TIMESERIES_COLUMNS = ['date', 'hours', 'snapshots', ...HOUR_COLUMNS, ...AVERAGE_COLUMNS, 'running_jobs_avg', 'queued_jobs_avg', 'jobs', 'users'] as const;
export const USERS_COLUMNS = ['user', ...HOUR_COLUMNS, 'jobs', 'allocations', 'first_day', 'last_day'] as const;
export const FULL_COLUMNS = ['from', 'to', 'timezone', ...HOUR_COLUMNS, 'jobs', 'users', 'allocations', 'first_day', 'last_day'] as const;

/** The original AI4OS `summarize.py` columns. */
const AI4OS_RESOURCES: readonly string[] = AI4OS_SUMMARY_ORDER.map((r) => r.ai4os.column);
export const AI4OS_TIMESERIES_COLUMNS = ['date', ...AI4OS_RESOURCES, 'queued', 'running'] as const;
export const AI4OS_USERS_COLUMNS = ['owner', ...AI4OS_RESOURCES] as const;
export const AI4OS_FULL_COLUMNS = [...AI4OS_RESOURCES] as const;

export const SUFFIXES = { timeseries: '-timeseries.csv', users: '-users-agg.csv', full: '-full-agg.csv', merged: '-users-agg-merged.csv' } as const;

/**
 * A namespace as a file-name prefix. Namespace names are DNS labels on Nomad and
 * Kubernetes, but AI4OS files take any JSON key: anything that could leave the folder or
 * trouble a shell is percent-encoded.
 */
export function namespaceFileBase(namespace: string): string {
  return encodeURIComponent(namespace).replace(/^\./, '%2E').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The namespace a summary file is about, from its name; null for other files. */
export function namespaceOfFile(file: string, suffix: string): string | null {
  if (!file.endsWith(suffix) || file.length === suffix.length) return null;
  try {
    return decodeURIComponent(file.slice(0, -suffix.length));
  } catch {
    return null;
  }
}

export interface SummaryFile {
  name: string;
  content: string;
}

export interface SummaryInput {
  usage: NamespaceUsage[];
  /** Job counts per namespace and day; a namespace missing here had no snapshot covering it. */
  counts: Map<string, DayCounts[]>;
  period: Period;
  format: SummaryFormat;
  delimiter: string;
}

export function summaryFiles(input: SummaryInput): SummaryFile[] {
  const out: SummaryFile[] = [];
  for (const ns of input.usage) {
    const base = namespaceFileBase(ns.namespace);
    const counts = input.counts.get(ns.namespace) ?? noCounts(ns.days.length);
    const files = input.format === 'ai4os' ? ai4osFiles(ns, counts) : hourmeterFiles(ns, counts, input.period);
    out.push(
      { name: base + SUFFIXES.timeseries, content: toCsv(files.timeseries.columns, files.timeseries.rows, input.delimiter) },
      { name: base + SUFFIXES.users, content: toCsv(files.users.columns, files.users.rows, input.delimiter) },
      { name: base + SUFFIXES.full, content: toCsv(files.full.columns, files.full.rows, input.delimiter) },
    );
  }
  return out;
}

interface Table {
  columns: readonly string[];
  rows: Record<string, unknown>[];
}

function hourmeterFiles(ns: NamespaceUsage, counts: DayCounts[], period: Period): { timeseries: Table; users: Table; full: Table } {
  const timeseries = ns.days.map((d, i) => {
    const c = counts[i]!;
    const a = d.average;
    return {
      date: d.day,
      hours: d.hours,
      snapshots: c.snapshots,
      ...pick(d),
      ...averages(a),
      // Empty, not zero, on a day no snapshot saw: the count is unknown.
      running_jobs_avg: c.running ?? '',
      queued_jobs_avg: c.queued ?? '',
      jobs: d.jobs,
      users: d.users,
    };
  });
  const users = ns.users.map((u) => ({ user: u.user, ...pick(u), jobs: u.jobs, allocations: u.allocations, first_day: u.firstDay, last_day: u.lastDay }));
  const t = ns.total;
  const full = [
    { from: period.from, to: period.to, timezone: period.timezone, ...pick(t), jobs: t.jobs, users: t.users, allocations: t.allocations, first_day: t.firstDay ?? '', last_day: t.lastDay ?? '' },
  ];
  return { timeseries: { columns: TIMESERIES_COLUMNS, rows: timeseries }, users: { columns: USERS_COLUMNS, rows: users }, full: { columns: FULL_COLUMNS, rows: full } };
}

function pick(h: ResourceHours): ResourceHours {
  return Object.fromEntries(HOUR_COLUMNS.map((c) => [c, h[c]])) as ResourceHours;
}

function averages(a: DayUsage['average']): Record<string, number> {
  return Object.fromEntries(REPORT_ORDER.map((r) => [r.averageColumn, a[r.average]]));
}

/** Whole numbers as pandas' `round(0)` gives them: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** AI4OS units from hourmeter's (cores, MHz, MB: Nomad's MB are MiB, GPUs), rounded, per resource. */
function ai4osAmounts(amountOf: (r: (typeof AI4OS_SUMMARY_ORDER)[number]) => number): Record<string, number> {
  return Object.fromEntries(AI4OS_SUMMARY_ORDER.map((r) => [r.ai4os.column, roundHalfEven(amountOf(r) * r.ai4os.perUnit)]));
}

/**
 * The original's columns. Its daily values are the mean of each day's snapshots; here they
 * are the exact average amount held that day. Per user it summed those daily means
 * (resource-days); here that is resource-hours / 24, as the days are UTC days. Its
 * namespace row is the sum of the rounded user rows, and so is this one.
 */
function ai4osFiles(ns: NamespaceUsage, counts: DayCounts[]): { timeseries: Table; users: Table; full: Table } {
  const timeseries = ns.days.map((d, i) => {
    const a = d.average;
    const c = counts[i]!;
    return { date: d.day, ...ai4osAmounts((r) => a[r.average]), queued: c.queued === null ? '' : roundHalfEven(c.queued), running: c.running === null ? '' : roundHalfEven(c.running) };
  });
  const amounts = ns.users.map((u) => ai4osAmounts((r) => u[r.hours] / 24));
  const users = ns.users.map((u, i) => ({ owner: u.user, ...amounts[i] }));
  const full: Record<string, number> = Object.fromEntries(AI4OS_RESOURCES.map((r) => [r, 0]));
  for (const a of amounts) for (const r of AI4OS_RESOURCES) full[r]! += a[r]!;
  return { timeseries: { columns: AI4OS_TIMESERIES_COLUMNS, rows: timeseries }, users: { columns: AI4OS_USERS_COLUMNS, rows: users }, full: { columns: AI4OS_FULL_COLUMNS, rows: [full] } };
}
