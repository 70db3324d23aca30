import { UNATTRIBUTED } from '../accounting/aggregate.js';
import type { Micros, Observation, SnapshotObservations } from '../accounting/types.js';
import { formatInstant, formatSpan } from '../util/time.js';
import { toCsv } from './csv.js';
import { fixed, integer, plainTable, withRules } from './table.js';

/**
 * `hourmeter top`: who holds resources in one snapshot. Pure: a snapshot's observations in,
 * rows, totals and their renderings out.
 */

export const TOP_SORTS = ['gpu', 'cpu', 'memory', 'since', 'user'] as const;
export type TopSort = (typeof TOP_SORTS)[number];

const GIB = 1024 ** 3;

export interface TopRow {
  user: string | null;
  namespace: string;
  job_id: string;
  job_name: string | null;
  allocation: string;
  node: string | null;
  status: string;
  gpu: number;
  cpu_cores: number;
  memory_gib: number;
  since: string;
  /** From `since` to the snapshot's capture time. */
  held_seconds: number;
}

export interface TopReport {
  snapshot: {
    file: string;
    kind: 'native' | 'legacy';
    captured_at: string;
    /** From the capture time to now (the clock, or --now). */
    age_seconds: number;
    namespaces: string[];
    failed_scopes: { namespace: string; reason: string }[];
    /** Newer files that could not be read, newest first. */
    unreadable_newer: { file: string; reason: string }[];
  };
  sort: TopSort;
  limit: number | null;
  namespaces: string[];
  /** Over every allocation that holds resources and passes the filter, shown or not. */
  total: { allocations: number; gpu: number; cpu_cores: number; memory_gib: number };
  allocations: TopRow[];
}

interface Sortable {
  row: TopRow;
  startUs: Micros;
  cpuMilli: number;
  memoryBytes: number;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Descending amounts, oldest first, then names: every order is total, so output is stable. */
function compare(sort: TopSort): (a: Sortable, b: Sortable) => number {
  const gpu = (a: Sortable, b: Sortable) => b.row.gpu - a.row.gpu;
  const cpu = (a: Sortable, b: Sortable) => b.cpuMilli - a.cpuMilli;
  const memory = (a: Sortable, b: Sortable) => b.memoryBytes - a.memoryBytes;
  const since = (a: Sortable, b: Sortable) => a.startUs - b.startUs;
  // Unattributed rows sort after every user.
  const user = (a: Sortable, b: Sortable) => (a.row.user === null ? 1 : 0) - (b.row.user === null ? 1 : 0) || byText(a.row.user ?? '', b.row.user ?? '');
  const names = (a: Sortable, b: Sortable) =>
    byText(a.row.namespace, b.row.namespace) || byText(a.row.job_id, b.row.job_id) || byText(a.row.allocation, b.row.allocation);
  const keys = {
    gpu: [gpu, cpu, memory, since, user],
    cpu: [cpu, gpu, memory, since, user],
    memory: [memory, gpu, cpu, since, user],
    since: [since, gpu, cpu, memory, user],
    user: [user, gpu, cpu, memory, since],
  }[sort];
  return (a, b) => {
    for (const k of keys) {
      const c = k(a, b);
      if (c !== 0) return c;
    }
    return names(a, b);
  };
}

function rowOf(o: Observation, capturedUs: Micros): Sortable {
  const startUs = o.startUs!;
  return {
    startUs,
    cpuMilli: o.amounts.cpuMilli,
    memoryBytes: o.amounts.memoryBytes,
    row: {
      user: o.user,
      namespace: o.namespace,
      job_id: o.jobId,
      job_name: o.jobName,
      allocation: o.key.slice(o.key.indexOf(':') + 1),
      node: o.node,
      status: o.status,
      gpu: o.amounts.gpu,
      cpu_cores: o.amounts.cpuMilli / 1000,
      memory_gib: o.amounts.memoryBytes / GIB,
      since: formatInstant(startUs),
      held_seconds: Math.max(0, Math.floor((capturedUs - startUs) / 1_000_000)),
    },
  };
}

export interface TopOptions {
  nowUs: Micros;
  sort: TopSort;
  /** Rows to show; null for all. */
  limit: number | null;
  /** Only these namespaces; empty for all. */
  namespaces: readonly string[];
  unreadableNewer?: { file: string; reason: string }[];
}

export function buildTopReport(snap: SnapshotObservations, opts: TopOptions): TopReport {
  const only = new Set(opts.namespaces);
  const rows = snap.observations
    .filter((o) => o.phase === 'holding' && o.startUs !== null && (only.size === 0 || only.has(o.namespace)))
    .map((o) => rowOf(o, snap.timeUs))
    .sort(compare(opts.sort));
  const cpuMilli = rows.reduce((t, r) => t + r.cpuMilli, 0);
  const memoryBytes = rows.reduce((t, r) => t + r.memoryBytes, 0);
  return {
    snapshot: {
      file: snap.file,
      kind: snap.kind,
      captured_at: formatInstant(snap.timeUs),
      age_seconds: Math.floor((opts.nowUs - snap.timeUs) / 1_000_000),
      namespaces: [...snap.covered].sort(byText),
      failed_scopes: snap.failedScopes,
      unreadable_newer: opts.unreadableNewer ?? [],
    },
    sort: opts.sort,
    limit: opts.limit,
    namespaces: [...opts.namespaces],
    total: {
      allocations: rows.length,
      gpu: rows.reduce((t, r) => t + r.row.gpu, 0),
      // Summed in integer base units, so totals carry no floating-point residue.
      cpu_cores: cpuMilli / 1000,
      memory_gib: memoryBytes / GIB,
    },
    allocations: (opts.limit === null ? rows : rows.slice(0, opts.limit)).map((r) => r.row),
  };
}

/** One line naming the snapshot, its age and what is shown. */
export function topHeadline(r: TopReport): string {
  const s = r.snapshot;
  const shown = r.allocations.length < r.total.allocations ? `, showing the first ${r.allocations.length} by ${r.sort}` : '';
  const filter = r.namespaces.length > 0 ? ` in ${r.namespaces.join(', ')}` : '';
  const n = r.total.allocations;
  return `Snapshot ${s.captured_at} (${s.file}), ${formatSpan(s.age_seconds * 1_000_000)} old: ${n} allocation${n === 1 ? '' : 's'} holding resources${filter}${shown}`;
}

export function renderTopTable(r: TopReport): string {
  const lines = [topHeadline(r)];
  const table = plainTable({
    head: ['User', 'Namespace', 'Job', 'Node', 'GPU', 'CPU cores', 'Memory GiB', 'Since', 'For'],
    colAligns: ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'left', 'right'],
  });
  for (const a of r.allocations) {
    table.push([a.user ?? UNATTRIBUTED, a.namespace, a.job_id, a.node ?? '-', integer(a.gpu), fixed(a.cpu_cores), fixed(a.memory_gib), a.since, formatSpan(a.held_seconds * 1_000_000)]);
  }
  const label = r.allocations.length < r.total.allocations ? `Total (all ${r.total.allocations})` : 'Total';
  table.push([label, '', '', '', integer(r.total.gpu), fixed(r.total.cpu_cores), fixed(r.total.memory_gib), '', '']);
  lines.push(withRules(table, { afterHeader: true, beforeLast: true }));
  if (r.snapshot.failed_scopes.length > 0) {
    lines.push(`Not captured in this snapshot: ${r.snapshot.failed_scopes.map((f) => `${f.namespace} (${f.reason})`).join('; ')}`);
  }
  return lines.join('\n') + '\n';
}

export const TOP_CSV_COLUMNS = ['user', 'namespace', 'job_id', 'job_name', 'allocation', 'node', 'status', 'gpu', 'cpu_cores', 'memory_gib', 'since', 'held_seconds'] as const;

/**
 * One row per allocation shown, numbers unrounded as in JSON; no total row (a spreadsheet
 * sums). A missing user is `(unattributed)`, as in the table; a missing node or job name is empty.
 */
export function renderTopCsv(r: TopReport, delimiter = ','): string {
  return toCsv(
    TOP_CSV_COLUMNS,
    r.allocations.map((a) => ({ ...a, user: a.user ?? UNATTRIBUTED })),
    delimiter,
  );
}
