import type { NamespaceUsage, ResourceHours } from '../accounting/daily.js';
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

export const HOUR_COLUMNS = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'] as const satisfies readonly (keyof ResourceHours)[];
/** The average amount held at once over a day, per resource, in the order of HOUR_COLUMNS. */
export const AVERAGE_COLUMNS = ['cpu_cores_avg', 'gpus_avg', 'memory_gib_avg', 'disk_gib_avg', 'cpu_mhz_avg'] as const;

export const TIMESERIES_COLUMNS = ['date', 'hours', 'snapshots', ...HOUR_COLUMNS, ...AVERAGE_COLUMNS, 'running_jobs_avg', 'queued_jobs_avg', 'jobs', 'users'] as const;
export const USERS_COLUMNS = ['user', ...HOUR_COLUMNS, 'jobs', 'allocations', 'first_day', 'last_day'] as const;
export const FULL_COLUMNS = ['from', 'to', 'timezone', ...HOUR_COLUMNS, 'jobs', 'users', 'allocations', 'first_day', 'last_day'] as const;

/** The original AI4OS `summarize.py` columns. */
const AI4OS_RESOURCES = ['cpu_num', 'cpu_MHz', 'memory_MB', 'disk_MB', 'gpu_num'] as const;
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
      cpu_cores_avg: a.cpu_cores,
      gpus_avg: a.gpus,
      memory_gib_avg: a.memory_gib,
      disk_gib_avg: a.disk_gib,
      cpu_mhz_avg: a.cpu_mhz,
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
  return { cpu_hours: h.cpu_hours, gpu_hours: h.gpu_hours, memory_gib_hours: h.memory_gib_hours, disk_gib_hours: h.disk_gib_hours, cpu_mhz_hours: h.cpu_mhz_hours };
}

/** Whole numbers as pandas' `round(0)` gives them: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** AI4OS units from hourmeter's: cores, MHz, MB (Nomad's MB are MiB), MB, GPUs. */
function ai4osAmounts(cores: number, mhz: number, memoryGib: number, diskGib: number, gpus: number): Record<(typeof AI4OS_RESOURCES)[number], number> {
  return { cpu_num: roundHalfEven(cores), cpu_MHz: roundHalfEven(mhz), memory_MB: roundHalfEven(memoryGib * 1024), disk_MB: roundHalfEven(diskGib * 1024), gpu_num: roundHalfEven(gpus) };
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
    return { date: d.day, ...ai4osAmounts(a.cpu_cores, a.cpu_mhz, a.memory_gib, a.disk_gib, a.gpus), queued: c.queued === null ? '' : roundHalfEven(c.queued), running: c.running === null ? '' : roundHalfEven(c.running) };
  });
  const users = ns.users.map((u) => ({ owner: u.user, ...ai4osAmounts(u.cpu_hours / 24, u.cpu_mhz_hours / 24, u.memory_gib_hours / 24, u.disk_gib_hours / 24, u.gpu_hours / 24) }));
  const full: Record<string, number> = Object.fromEntries(AI4OS_RESOURCES.map((r) => [r, 0]));
  for (const u of users) for (const r of AI4OS_RESOURCES) full[r]! += u[r];
  return { timeseries: { columns: AI4OS_TIMESERIES_COLUMNS, rows: timeseries }, users: { columns: AI4OS_USERS_COLUMNS, rows: users }, full: { columns: AI4OS_FULL_COLUMNS, rows: [full] } };
}
