import { UNATTRIBUTED } from '../accounting/aggregate.js';
import type { ParsedCsv } from './csv.js';
import type { Chart, IndexEntry, NamespacePage } from './html.js';
import { PLOT_TOP_ORDER, REPORT_ORDER, resource, type HoursField } from '../accounting/resources.js';
import { AI4OS_TIMESERIES_COLUMNS, HOUR_COLUMNS } from './summaries.js';

/**
 * What `plot` draws, from the CSV files `summarize` wrote: per namespace, daily
 * resource-hours for each resource, running and queued jobs, snapshots per day and the top
 * users. Pure: parsed files in, page models out. Errors say which column of which row.
 */

/** A chart of each resource's hours per day, in the report order. */
const RESOURCE_CHARTS: readonly [column: HoursField, title: string, label: string][] = REPORT_ORDER.map((r) => [r.hours, r.perDay, r.header]);

/** The top-user charts: by CPU- and GPU-hours. */
const TOP_BY: readonly [column: HoursField, label: string][] = PLOT_TOP_ORDER.map((r) => [r.hours, r.header]);

/** The top-users table leaves detail resources out, as compact tables do. */
const TABLE_RESOURCES = REPORT_ORDER.filter((r) => r.compact !== null);

const TIMESERIES_NEEDS = ['date', 'snapshots', ...HOUR_COLUMNS, 'running_jobs_avg', 'queued_jobs_avg'];
const USERS_NEEDS = ['user', ...HOUR_COLUMNS, 'jobs'];
const FULL_NEEDS = [...HOUR_COLUMNS, 'jobs', 'users'];

/** A file that cannot be drawn; `file` says which of the namespace's three. */
export class PlotInputError extends Error {
  constructor(
    message: string,
    readonly file: 'timeseries' | 'users' | 'full' = 'timeseries',
  ) {
    super(message);
  }
}

/** Runs `f`, tagging a PlotInputError with the file it was reading. */
function within<T>(file: PlotInputError['file'], f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PlotInputError) throw new PlotInputError(e.message, file);
    throw e;
  }
}

function needColumns(csv: ParsedCsv, columns: readonly string[]): void {
  const missing = columns.filter((c) => !csv.fields.includes(c));
  if (missing.length === 0) return;
  if (AI4OS_TIMESERIES_COLUMNS.every((c) => csv.fields.includes(c)) || csv.fields[0] === 'owner' || csv.fields.includes('cpu_num')) {
    throw new PlotInputError('it was written with --format ai4os, and plot reads the default format; run `hourmeter summarize` without --format ai4os (into another --summaries folder if these files must stay)');
  }
  throw new PlotInputError(`it lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (its header: ${csv.fields.slice(0, 4).join(', ')}${csv.fields.length > 4 ? ', ...' : ''})`);
}

function num(row: Record<string, string>, column: string, line: number, nullable: boolean): number | null {
  const cell = (row[column] ?? '').trim();
  if (cell === '' && nullable) return null;
  const v = Number(cell);
  if (cell === '' || !Number.isFinite(v)) throw new PlotInputError(`record ${line}, column ${column}: ${JSON.stringify(row[column] ?? '')} is not a number`);
  return v;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface PlotInput {
  namespace: string;
  timeseries: ParsedCsv;
  users: ParsedCsv;
  /** User id → display name (from the user database); ids without one show as themselves. */
  names: (user: string) => string | null;
  top: number;
}

/** A chart id safe in HTML and as a DOM id. */
const chartId = (k: string) => `chart-${k}`;

export function namespacePage(input: PlotInput): NamespacePage {
  const ts = input.timeseries;
  const charts = within('timeseries', () => dailyCharts(ts));
  const users = within('users', () => {
    needColumns(input.users, USERS_NEEDS);
    return input.users.rows.map((r, i) => ({
      user: r.user ?? '',
      hours: Object.fromEntries([...HOUR_COLUMNS, 'jobs'].map((c) => [c, num(r, c, i + 2, false)!])) as Record<HoursField | 'jobs', number>,
    }));
  });
  const label = (user: string) => (user === UNATTRIBUTED ? user : (input.names(user) ?? user));
  const ranked = (c: HoursField) =>
    users
      .filter((u) => u.hours[c] > 0)
      .sort((a, b) => b.hours[c] - a.hours[c] || (a.user < b.user ? -1 : 1))
      .slice(0, input.top);
  for (const [c, l] of TOP_BY) {
    const top = ranked(c);
    charts.push({
      id: chartId(`top-${c}`),
      title: `Top ${input.top} users by ${l}`,
      kind: 'ranks',
      x: top.map((_, i) => i),
      labels: top.map((u) => label(u.user)),
      unit: '',
      series: [{ label: l, values: top.map((u) => u.hours[c]), bars: true }],
    });
  }
  const byCpu = ranked(resource('cpu').hours);
  return {
    namespace: input.namespace,
    from: ts.rows[0]?.date ?? '',
    to: ts.rows[ts.rows.length - 1]?.date ?? '',
    days: ts.rows.length,
    charts,
    tables: [
      {
        title: `Top ${input.top} users by ${resource('cpu').header}`,
        columns: [...TABLE_RESOURCES.map((r) => r.header), 'Jobs'],
        rows: byCpu.map((u, i) => ({
          rank: i + 1,
          user: u.user,
          name: u.user === UNATTRIBUTED ? '' : (input.names(u.user) ?? ''),
          values: [...TABLE_RESOURCES.map((r) => u.hours[r.hours]), u.hours.jobs],
        })),
      },
    ],
  };
}

/** Resource-hours, jobs and snapshots, one point per day. */
function dailyCharts(ts: ParsedCsv): Chart[] {
  needColumns(ts, TIMESERIES_NEEDS);
  const x = ts.rows.map((r, i) => {
    const d = r.date ?? '';
    const t = DATE.test(d) ? Date.parse(`${d}T00:00:00Z`) : NaN;
    if (Number.isNaN(t)) throw new PlotInputError(`record ${i + 2}, column date: ${JSON.stringify(d)} is not a YYYY-MM-DD date`);
    return t / 1000;
  });
  const column = (c: string, nullable = false) => ts.rows.map((r, i) => num(r, c, i + 2, nullable));
  const charts: Chart[] = RESOURCE_CHARTS.map(([c, title, label]) => ({ id: chartId(c), title, kind: 'days', x, unit: '', series: [{ label, values: column(c), bars: true }] }));
  charts.push({
    id: chartId('jobs'),
    title: "Running and queued jobs (average over each day's snapshots)",
    kind: 'days',
    x,
    unit: '',
    series: [
      { label: 'Running jobs', values: column('running_jobs_avg', true), bars: false },
      { label: 'Queued jobs', values: column('queued_jobs_avg', true), bars: false },
    ],
  });
  charts.push({ id: chartId('snapshots'), title: 'Snapshots per day (0: a gap)', kind: 'days', x, unit: '', series: [{ label: 'Snapshots', values: column('snapshots'), bars: true }] });
  return charts;
}

/** The index page's row for a namespace, with its totals from `<ns>-full-agg.csv`. */
export function indexEntry(page: NamespacePage, href: string, full: ParsedCsv): IndexEntry {
  const v = within('full', () => {
    needColumns(full, FULL_NEEDS);
    const row = full.rows[0];
    if (!row) throw new PlotInputError('it has no data row');
    for (const c of FULL_NEEDS) num(row, c, 2, false);
    return (c: string) => num(row, c, 2, false);
  });
  return {
    namespace: page.namespace,
    href,
    from: page.from,
    to: page.to,
    days: page.days,
    totals: [
      ...REPORT_ORDER.map((r) => ({ label: r.header, value: v(r.hours) })),
      { label: 'Jobs', value: v('jobs') },
      { label: 'Users', value: v('users') },
    ],
  };
}
