import { bareName } from '../accounting/clusters.js';
import { UNATTRIBUTED } from '../accounting/aggregate.js';
import { TOP_ORDER } from '../accounting/resources.js';
import type { Micros, Observation, SnapshotObservations } from '../accounting/types.js';
import { formatSpan, formatTimestamp, readableInstant } from '../util/time.js';
import { tableColumns, tableParts, type Column, type Output } from './output.js';
import { fixed, integer, plainTable, textWidth, withRules } from './table.js';
import { drawnWidth, NO_NAMES, shortenId, UserColumn, type UserNames } from './user-names.js';

/**
 * `hourmeter top`: who holds resources in one snapshot. Pure: a snapshot's observations in,
 * rows, totals and their renderings out.
 */

type Shown = (typeof TOP_ORDER)[number];
export type TopSort = Shown['name'] | 'since' | 'user';
/** The resources `top` shows, by name (resources.ts), then the start and the user. */
export const TOP_SORTS: readonly TopSort[] = [...TOP_ORDER.map((r) => r.name), 'since', 'user'];

/** An amount held in reported units (cores, GiB): base units summed first, so totals carry no floating-point residue. */
const inUnits = (r: Shown, base: number) => base / Number(r.perUnit);

/** Amounts held, by their column (gpu, cpu_cores, memory_gib). */
type Held = Record<Shown['held'], number>;

export interface TopRow extends Held {
  user: string | null;
  /** From the user database; null when it has no name for the user. */
  user_name: string | null;
  namespace: string;
  job_id: string;
  job_name: string | null;
  allocation: string;
  node: string | null;
  status: string;
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
    /** The cluster it was taken of; absent for the unnamed one (docs/accounting.md#clusters). */
    cluster?: string;
    namespaces: string[];
    failed_scopes: { namespace: string; reason: string }[];
    /** Newer files that could not be read, newest first. */
    unreadable_newer: { file: string; reason: string }[];
  };
  sort: TopSort;
  limit: number | null;
  namespaces: string[];
  /** Over every allocation that holds resources and passes the filter, shown or not. */
  total: { allocations: number } & Held;
  allocations: TopRow[];
}

interface Sortable {
  row: TopRow;
  startUs: Micros;
  /** Amounts in base units, in the order of TOP_ORDER. */
  amounts: number[];
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Descending amounts, oldest first, then names: every order is total, so output is stable. */
function compare(sort: TopSort): (a: Sortable, b: Sortable) => number {
  type Key = (a: Sortable, b: Sortable) => number;
  const amounts: Key[] = TOP_ORDER.map((_, i) => (a, b) => b.amounts[i]! - a.amounts[i]!);
  const since: Key = (a, b) => a.startUs - b.startUs;
  // Unattributed rows sort after every user.
  const user: Key = (a, b) => (a.row.user === null ? 1 : 0) - (b.row.user === null ? 1 : 0) || byText(a.row.user ?? '', b.row.user ?? '');
  const names = (a: Sortable, b: Sortable) =>
    byText(a.row.namespace, b.row.namespace) || byText(a.row.job_id, b.row.job_id) || byText(a.row.allocation, b.row.allocation);
  // The key sorted by, then the amounts in TOP_ORDER, since and user.
  const at = TOP_ORDER.findIndex((r) => r.name === sort);
  const keys =
    sort === 'since' ? [since, ...amounts, user] : sort === 'user' ? [user, ...amounts, since] : [amounts[at]!, ...amounts.filter((_, i) => i !== at), since, user];
  return (a, b) => {
    for (const k of keys) {
      const c = k(a, b);
      if (c !== 0) return c;
    }
    return names(a, b);
  };
}

/** The amounts held, by column, in TOP_ORDER. */
function held(value: (r: Shown, i: number) => number): Held {
  return Object.fromEntries(TOP_ORDER.map((r, i) => [r.held, value(r, i)])) as Held;
}

function rowOf(o: Observation, capturedUs: Micros, names: UserNames): Sortable {
  const startUs = o.startUs!;
  return {
    startUs,
    amounts: TOP_ORDER.map((r) => o.amounts[r.amount]),
    row: {
      user: o.user,
      user_name: o.user === null ? null : names(o.user),
      namespace: bareName(o.namespace),
      job_id: o.jobId,
      job_name: o.jobName,
      allocation: bareName(o.key).slice(bareName(o.key).indexOf(':') + 1),
      node: o.node,
      status: o.status,
      ...held((r) => inUnits(r, o.amounts[r.amount])),
      since: formatTimestamp(startUs),
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
  /** Names for the users, from the user database. */
  names?: UserNames;
}

export function buildTopReport(snap: SnapshotObservations, opts: TopOptions): TopReport {
  const only = new Set(opts.namespaces);
  const rows = snap.observations
    .filter((o) => o.phase === 'holding' && o.startUs !== null && (only.size === 0 || only.has(bareName(o.namespace))))
    .map((o) => rowOf(o, snap.timeUs, opts.names ?? NO_NAMES))
    .sort(compare(opts.sort));
  const sums = TOP_ORDER.map((_, i) => rows.reduce((t, r) => t + r.amounts[i]!, 0));
  return {
    snapshot: {
      file: snap.file,
      kind: snap.kind,
      captured_at: formatTimestamp(snap.timeUs),
      age_seconds: Math.floor((opts.nowUs - snap.timeUs) / 1_000_000),
      ...(snap.cluster ? { cluster: snap.cluster } : {}),
      // A snapshot is of one cluster: its namespaces are named as its scheduler names them.
      namespaces: [...snap.covered].map(bareName).sort(byText),
      failed_scopes: snap.failedScopes.map((f) => ({ ...f, namespace: bareName(f.namespace) })),
      unreadable_newer: opts.unreadableNewer ?? [],
    },
    sort: opts.sort,
    limit: opts.limit,
    namespaces: [...opts.namespaces],
    total: {
      allocations: rows.length,
      // Summed in integer base units, so totals carry no floating-point residue.
      ...held((r, i) => inUnits(r, sums[i]!)),
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
  const of = s.cluster === undefined ? '' : ` of cluster ${s.cluster}`;
  return `Snapshot${of} ${readableInstant(s.captured_at)} (${s.file}), ${formatSpan(s.age_seconds * 1_000_000)} old: ${n} allocation${n === 1 ? '' : 's'} holding resources${filter}${shown}`;
}

/** Job ids are shortened to no fewer columns than these: first while users keep their ids, then at all. */
const JOB_MIN = 13;
const JOB_FLOOR = 8;

/**
 * The table, fitted to `width` columns as far as it goes: first user ids are shortened, then
 * job ids down to JOB_MIN; if that is not enough, a compact layout (short headers, no Since,
 * no Node column when no allocation has a node), then users by name alone (a name two users
 * share keeps the start of each id) and job ids down to JOB_FLOOR.
 */
export function renderTopTable(r: TopReport, width = Infinity): string {
  const lines = wrap(topHeadline(r), width);
  const label = r.allocations.length < r.total.allocations ? `Total (all ${r.total.allocations})` : 'Total';
  const names = new Map(r.allocations.map((a) => [a.user, a.user_name]));
  const users = new UserColumn(
    r.allocations.map((a) => a.user),
    (u) => names.get(u) ?? null,
  );
  const jobFull = Math.max(0, ...r.allocations.map((a) => textWidth(a.job_id)));
  const draw = (compact: boolean, userCells: string[], jobWidth: number) => {
    // The compact layout drops Since, and Node when no allocation has one.
    const withNode = !compact || r.allocations.some((a) => a.node !== null);
    const shown = tableColumns(TOP_COLUMNS, { keep: (c) => !(compact && c.table.compact === null) || (c.key === 'node' && withNode) });
    const { head, colAligns, body } = tableParts(shown, r.allocations, compact);
    const userAt = shown.findIndex((c) => c.key === 'user');
    const jobAt = shown.findIndex((c) => c.key === 'job_id');
    const table = plainTable({ head, colAligns });
    body.forEach((cells, i) => {
      cells[userAt] = userCells[i]!;
      if (jobWidth < jobFull) cells[jobAt] = shortenId(cells[jobAt]!, jobWidth);
      table.push(cells);
    });
    const total: Record<string, string> = { user: label, ...Object.fromEntries(TOP_ORDER.map((x) => [x.held, shownAmount(x, r.total[x.held])])) };
    table.push(shown.map((c) => total[c.key] ?? ''));
    return table;
  };
  const userHead = Math.max('User'.length, textWidth(label));
  /**
   * Users take the least their mode allows (or what jobs leave when whole), jobs the rest;
   * null when jobs would get fewer than `jobMin` columns.
   */
  const fit = (compact: boolean, withIds: boolean, jobMin: number) => {
    // The room for users and jobs together: the table's width without them.
    const room = width - (drawnWidth(draw(compact, r.allocations.map(() => ''), 0)) - userHead - 'Job'.length);
    const cells = users.labels(Math.max(withIds ? users.minWithIds : users.min, room - jobFull), withIds);
    const jobWidth = room - Math.max(userHead, ...cells.map(textWidth));
    return jobWidth >= Math.min(jobMin, jobFull) ? draw(compact, cells, jobWidth) : null;
  };
  const table = fit(false, true, JOB_MIN) ?? fit(true, true, JOB_MIN) ?? fit(true, false, JOB_FLOOR) ?? draw(true, users.labels(0, false), JOB_FLOOR);
  lines.push(withRules(table, { afterHeader: true, beforeLast: true }));
  if (r.snapshot.failed_scopes.length > 0) {
    lines.push(...wrap(`Not captured in this snapshot: ${r.snapshot.failed_scopes.map((f) => `${f.namespace} (${f.reason})`).join('; ')}`, width));
  }
  return lines.join('\n') + '\n';
}

/** A line broken at spaces into lines of at most `width` columns (a word longer than that stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && textWidth(line) + 1 + textWidth(word) > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

const NOT_IN_TABLE = 'in JSON and CSV only: too wide for a terminal';

/** Devices are whole; cores and GiB show two decimals. */
const shownAmount = (r: Shown, x: number) => (r.baseUnit === 'devices' ? integer(x) : fixed(x));

/**
 * One row per allocation shown, numbers unrounded in JSON and CSV; no total row in CSV (a
 * spreadsheet sums). A missing user is `(unattributed)` in CSV, as in the table; a missing
 * name, node or job name is empty.
 */
export const TOP_COLUMNS: readonly Column<TopRow>[] = [
  { key: 'user', csv: (a) => a.user ?? UNATTRIBUTED, table: { header: 'User', align: 'left', cell: (a) => a.user ?? UNATTRIBUTED } },
  { key: 'user_name', table: { omitted: 'in the User column: the name, else the id' } },
  { key: 'namespace', table: { header: 'Namespace', align: 'left', cell: (a) => a.namespace } },
  { key: 'job_id', table: { header: 'Job', align: 'left', cell: (a) => a.job_id } },
  { key: 'job_name', table: { omitted: NOT_IN_TABLE } },
  { key: 'allocation', table: { omitted: NOT_IN_TABLE } },
  { key: 'node', table: { header: 'Node', compact: null, align: 'left', cell: (a) => a.node ?? '-' } },
  { key: 'status', table: { omitted: NOT_IN_TABLE } },
  ...TOP_ORDER.map((r): Column<TopRow> => ({ key: r.held, table: { header: r.heldHeader[0], compact: r.heldHeader[1], align: 'right', cell: (a) => shownAmount(r, a[r.held]) } })),
  { key: 'since', table: { header: 'Since', compact: null, align: 'left', cell: (a) => readableInstant(a.since) } },
  { key: 'held_seconds', table: { header: 'For', align: 'right', cell: (a) => formatSpan(a.held_seconds * 1_000_000) } },
];

export function topOutput(r: TopReport): Output<TopRow> {
  return { columns: TOP_COLUMNS, rows: r.allocations, json: r, table: (width) => renderTopTable(r, width) };
}
