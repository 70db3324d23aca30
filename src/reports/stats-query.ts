import { aggregateTracks, type Filters, type GroupKey } from '../accounting/aggregate.js';
import type { EstimateOptions } from '../accounting/reconstruct.js';
import { UNNAMED_CLUSTER } from '../accounting/clusters.js';
import { windowCoverage } from '../accounting/coverage.js';
import type { Micros, Period } from '../accounting/types.js';
import { fileCount, windowDiagnostics } from '../snapshots/catalogue.js';
import type { HistoryView } from '../store/view.js';
import { buildStatsReport, type StatsReport } from './stats-report.js';

/** The `stats` report from a history view: what the command prints and the HTTP API serves. */
export function statsFromView(
  view: HistoryView,
  q: {
    period: Period;
    groupBy: GroupKey[];
    filters: Filters;
    estimate: EstimateOptions;
    unnamedFiles: number;
    /** false: the low and high bounds in total only, their rows left empty (see AggregateOptions). */
    groupBounds?: boolean;
    /** --max-gap; unset: the default of coverage.ts. */
    maxGapUs?: Micros | null;
    /** The time of the report: a period still running is covered up to then. */
    nowUs?: Micros;
  },
): StatsReport & { tracks: number; files: number } {
  const { result, files, diagnostics, skipped } = view.consistently(() => {
    const { tracks, names, files, rows } = view.read(q.period);
    return { result: aggregateTracks(tracks, names, q.period, q.groupBy, q.filters, q.estimate, { expectedRows: rows, groupBounds: q.groupBounds }), files, ...windowDiagnostics(files, q.unnamedFiles) };
  });
  // A report of some clusters is covered where those are (docs/accounting.md#clusters).
  const clusters = q.filters.clusters?.map((c) => (c === UNNAMED_CLUSTER ? '' : c));
  const coverage = windowCoverage(files, q.period, { maxGapUs: q.maxGapUs, nowUs: q.nowUs, clusters });
  const report = buildStatsReport({ result, period: q.period, groupBy: q.groupBy, coverage, diagnostics, skipped, gapPolicy: q.estimate.gapPolicy, gcWindowUs: q.estimate.gcWindowUs });
  return Object.assign(report, { tracks: result.tracks, files: fileCount(files) });
}
