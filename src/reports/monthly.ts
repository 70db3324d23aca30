import { bareName, clusterLabel, clusterOf } from '../accounting/clusters.js';
import { aggregateTracks, divide, UNATTRIBUTED, type StatsResult } from '../accounting/aggregate.js';
import { formatMonth, monthPeriod, reportDate, type Month } from '../accounting/months.js';
import { lifetimesOf, type EstimateOptions } from '../accounting/reconstruct.js';
import { heldUs, resourceUs } from '../accounting/reference.js';
import { hourDivisor, PRIMEHUB_ORDER, RESOURCES } from '../accounting/resources.js';
import type { Lifetime, Period } from '../accounting/types.js';
import type { WindowFiles } from '../snapshots/catalogue.js';
import type { HistoryView } from '../store/view.js';
import { formatTimestamp } from '../util/time.js';
import { toCsv } from './csv.js';
import { decimal } from './table.js';

/**
 * PrimeHub's monthly usage report: one row per component, group and user, exact per
 * docs/accounting.md, under PrimeHub's own column names for its consumers. `memory_gb_hours` holds
 * GiB-hours and `total_hours` the allocations' wall-clock hours, as PrimeHub means them.
 * The details list every allocation clipped to the month; they sum to the summary rows.
 */

/** PrimeHub's hour columns: its own names, in its order (resources.ts). */
const PRIMEHUB_HOURS = PRIMEHUB_ORDER.map((r) => r.primehub);

export const MONTHLY_COLUMNS: readonly string[] = ['component', 'group_name', 'user_name', ...PRIMEHUB_HOURS, 'total_hours', 'report_date'];

export const DETAIL_COLUMNS: readonly string[] = [
  'cluster', 'namespace', 'job_id', 'job_name', 'allocation', 'component', 'group_name', 'user_name',
  'start', 'end', 'running', 'end_estimated',
  ...RESOURCES.map((r) => r.held),
  ...PRIMEHUB_HOURS, 'total_hours', 'report_date',
];

export type CsvRow = Record<string, string>;

/** Monthly reports use the default estimate: PrimeHub's have no knobs. */
const ESTIMATE: EstimateOptions = { gapPolicy: 'midpoint', gcWindowUs: null };

/** Missing attribution is an empty cell, as in PrimeHub's own reports. */
const cell = (name: string | null | undefined): string => (name === undefined || name === null || name === UNATTRIBUTED ? '' : name);

/** The summary rows from stats grouped by component, group and user. */
export function monthlyRows(result: Pick<StatsResult, 'rows'>, month: Month): CsvRow[] {
  return result.rows.map((r) => ({
    component: cell(r.component),
    group_name: cell(r.group),
    user_name: cell(r.user),
    ...Object.fromEntries(PRIMEHUB_ORDER.map((c) => [c.primehub, decimal(r[c.hours])])),
    total_hours: decimal(r.allocation_hours),
    report_date: reportDate(month),
  }));
}

const HOUR = 3_600_000_000n;

/**
 * One row per allocation that held resources in the period, clipped to it, in start order.
 * `running`: it still held resources at the end of the period, or at the latest snapshot
 * (an open allocation). `end_estimated`: it vanished between snapshots, so its end is the
 * estimate every report uses (see docs/accounting.md#reconstruction).
 */
export function detailRows(lifetimes: Iterable<Lifetime>, period: Pick<Period, 'startUs' | 'endUs'>, month: Month): CsvRow[] {
  const kept: { l: Lifetime; from: number; us: number }[] = [];
  for (const l of lifetimes) {
    const us = heldUs(l.startUs, l.endUs, period);
    if (us > 0) kept.push({ l, from: Math.max(l.startUs, period.startUs), us });
  }
  kept.sort((a, b) => a.from - b.from || (a.l.key < b.l.key ? -1 : a.l.key > b.l.key ? 1 : 0));
  return kept.map(({ l, from, us }) => {
    const a = l.amounts;
    return {
      cluster: clusterLabel(clusterOf(l.namespace)),
      namespace: bareName(l.namespace),
      job_id: l.jobId,
      job_name: l.jobName ?? '',
      allocation: bareName(l.key).slice(bareName(l.key).indexOf(':') + 1),
      component: cell(l.component),
      group_name: cell(l.group),
      user_name: cell(l.user),
      start: formatTimestamp(from),
      end: formatTimestamp(from + us),
      running: String(l.endKind === 'open' || l.endUs >= period.endUs),
      end_estimated: String(l.endKind === 'vanished'),
      ...Object.fromEntries(RESOURCES.map((r) => [r.held, String(a[r.amount] / Number(r.perUnit))])),
      ...Object.fromEntries(PRIMEHUB_ORDER.map((r) => [r.primehub, decimal(divide(resourceUs(a[r.amount], us), hourDivisor(r)))])),
      total_hours: decimal(divide(BigInt(us), HOUR)),
      report_date: reportDate(month),
    };
  });
}

export interface MonthlyReport {
  month: string;
  period: Period;
  summary: CsvRow[];
  details: CsvRow[] | null;
  /** The month's snapshot files, read with the rows: what its coverage is judged from. */
  files: WindowFiles;
}

/** Reads one month from a history view (the index, or the files). */
export function monthlyReport(view: HistoryView, month: Month, tz: string, opts: { details: boolean; clusters?: readonly string[] }): MonthlyReport {
  const period = monthPeriod(month, tz);
  // --cluster: only those clusters' allocations (docs/accounting.md#clusters).
  const clusters = opts.clusters?.length ? new Set(opts.clusters) : null;
  return view.consistently(() => {
    const { tracks, names, rows, files } = view.read(period);
    const result = aggregateTracks(tracks, names, period, ['component', 'group', 'user'], { clusters: opts.clusters ?? [] }, ESTIMATE, { expectedRows: rows, groupBounds: false });
    const kept = (l: Lifetime) => clusters === null || clusters.has(clusterLabel(clusterOf(l.namespace)));
    const details = opts.details ? detailRows([...lifetimesOf(view.allocations(period), ESTIMATE)].filter(kept), period, month) : null;
    return { month: formatMonth(month), period, summary: monthlyRows(result, month), details, files };
  });
}

export function monthlyCsv(rows: readonly CsvRow[], delimiter = ','): string {
  return toCsv(MONTHLY_COLUMNS, rows, delimiter);
}

export function detailsCsv(rows: readonly CsvRow[], delimiter = ','): string {
  return toCsv(DETAIL_COLUMNS, rows, delimiter);
}
