import { MemoryNames, trackColumnsOf, type Names, type TrackColumns } from '../accounting/columns.js';
import { CADENCE_NEIGHBOURS } from '../accounting/coverage.js';
import { distinctValues, type FilterKey } from '../accounting/known.js';
import type { Micros } from '../accounting/types.js';
import { windowFiles, type FileSummary, type SkipCount, type WindowFiles } from '../snapshots/catalogue.js';
import { reachUs, type Track } from '../accounting/reconstruct.js';
import type { History } from '../snapshots/full-read.js';
import type { Db } from './schema.js';
import { IndexNames, readSegments, SegmentCache, segmentRows } from './segments.js';
import { tracksOverlapping } from './tracks.js';
import { watchedStretches } from './journals.js';

/**
 * What reports read: allocation tracks and file summaries for a time window. Two sources
 * give the same answers: the index (fast, incremental) and a full read of the files.
 */
export interface HistoryView {
  /**
   * Tracks that may have held resources in [startUs, endUs) (a superset is fine), and the
   * summaries of the files that matter for the window (see selectFiles), read together.
   */
  read(window: Window | null): WindowData;
  /**
   * Runs `use` on one consistent state of the source: what it reads (files, tracks,
   * names) all comes from the same moment, whatever an ingest commits meanwhile.
   */
  consistently<T>(use: () => T): T;
  /**
   * Each allocation that may have held resources in the window, as a whole track (with
   * its identity and attribution): slower than `read`, for per-allocation reports.
   */
  allocations(window: Window): Iterable<Track>;
  /**
   * The distinct values of a key over every track that held resources in the whole
   * history, sorted: what a filter on it can match at all (a missing user or group is
   * `(unattributed)`). Reads every track's ids, not their times: a few milliseconds for a
   * year from the index, so callers ask only when a filter is given.
   */
  knownValues(key: FilterKey): string[];
  /**
   * Per cluster the history holds (docs/accounting.md#clusters; '' the unnamed one), its newest
   * readable snapshot that covered a namespace: what `check` judges each cluster by.
   */
  newestByCluster(): { cluster: string; name: string }[];
}

export interface WindowData {
  /** Tracks as columns, read once, in any order; the index streams them. */
  tracks: Iterable<TrackColumns>;
  /** The dictionary the columns' ids point into. */
  names: Names;
  files: WindowFiles;
  /** How many rows the tracks hold at most, when known before they are read (0: unknown). */
  rows: number;
}

export interface Window {
  startUs: Micros;
  endUs: Micros;
}

/** The index-free view over a history read in full. */
export function filesView(h: History): HistoryView {
  return {
    read: (w) => {
      const names = new MemoryNames();
      // Packed before they are handed over: a report looks its filters up in the dictionary
      // first, and a name not interned yet would match nothing.
      const tracks = [...trackColumnsOf(h.tracks, names)];
      return { tracks, names, files: { ...windowFiles(h.files, w), ...(h.watched.length ? { watched: h.watched } : {}) }, rows: h.tracks.length };
    },
    consistently: (use) => use(),
    allocations: (w) => h.tracks.filter((t) => t.startUs !== null && t.startUs < w.endUs && (reachUs(t) ?? -Infinity) > w.startUs),
    // Packed as a report reads them, so both views count the same tracks.
    knownValues: (key) => {
      const names = new MemoryNames();
      return distinctValues(trackColumnsOf(h.tracks, names), names, key);
    },
    newestByCluster: () => {
      const newest = new Map<string, string>();
      for (const f of h.files) if (f.corrupt === null && f.cluster !== null && f.cluster !== undefined) newest.set(f.cluster, f.name);
      return [...newest].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([cluster, name]) => ({ cluster, name }));
    },
  };
}

interface SummaryRow {
  name: string;
  time_us: number;
  captured_us: number | null;
  corrupt: string | null;
  failed: string | null;
  record_skips: string | null;
}

function toSummary(r: SummaryRow): FileSummary {
  return {
    name: r.name,
    timeUs: r.time_us,
    capturedUs: r.captured_us,
    corrupt: r.corrupt,
    failedScopes: r.failed ? (JSON.parse(r.failed) as FileSummary['failedScopes']) : [],
    recordSkips: r.record_skips ? (JSON.parse(r.record_skips) as SkipCount[]) : [],
  };
}

/**
 * The cluster a catalogued snapshot sampled (catalogue.ts, clusterOfCovered), read from its
 * covered namespaces, a sorted JSON list: the part of the first before its `/`, '' for
 * bare names (the unnamed cluster), null when it covered none.
 */
const CLUSTER = `CASE WHEN covered IS NULL OR covered = '[]' THEN NULL WHEN instr(covered, '/') > 0 THEN substr(covered, 3, instr(covered, '/') - 3) ELSE '' END`;

const SUMMARY = 'SELECT name, time_us, captured_us, corrupt, failed, record_skips FROM snapshots';
/** (time, name) is the order of files; a window's files lie between two of them (see selectFiles). */
const IN_WINDOW = '(time_us, name) >= (@loUs, @loName) AND (time_us, name) <= (@hiUs, @hiName)';

/**
 * The view over the index; every read is one SQLite read transaction. `keepSegments`: keep
 * segments and names decoded between reads (a long-lived reader; see SegmentCache).
 */
export function indexView(db: Db, opts: { keepSegments?: boolean } = {}): HistoryView {
  const kept = opts.keepSegments ? new SegmentCache(db) : null;
  // From the last file at or before the window's start to the first at or after its end.
  const before = db.prepare('SELECT time_us, name FROM snapshots WHERE time_us <= ? ORDER BY time_us DESC, name DESC LIMIT 1').raw();
  const after = db.prepare('SELECT time_us, name FROM snapshots WHERE time_us >= ? ORDER BY time_us, name LIMIT 1').raw();
  const captured = db.prepare(`SELECT coalesce(captured_us, time_us), ${CLUSTER} FROM snapshots WHERE corrupt IS NULL AND ${IN_WINDOW} ORDER BY time_us, name`).raw();
  const problems = db.prepare(
    `${SUMMARY} WHERE (corrupt IS NOT NULL OR failed IS NOT NULL OR record_skips IS NOT NULL) AND ${IN_WINDOW} ORDER BY time_us, name`,
  );
  const earlier = db.prepare(`SELECT coalesce(captured_us, time_us), ${CLUSTER} FROM snapshots WHERE corrupt IS NULL AND (time_us, name) < (@loUs, @loName) ORDER BY time_us DESC, name DESC LIMIT ${CADENCE_NEIGHBOURS}`).raw();
  const later = db.prepare(`SELECT coalesce(captured_us, time_us), ${CLUSTER} FROM snapshots WHERE corrupt IS NULL AND (time_us, name) > (@hiUs, @hiName) ORDER BY time_us, name LIMIT ${CADENCE_NEIGHBOURS}`).raw();
  const files = (w: Window | null): WindowFiles => {
    const lo = (w && (before.get(w.startUs) as [number, string] | undefined)) || [Number.MIN_SAFE_INTEGER, ''];
    const hi = (w && (after.get(w.endUs) as [number, string] | undefined)) || [Number.MAX_SAFE_INTEGER, ''];
    const bounds = { loUs: lo[0], loName: lo[1], hiUs: hi[0], hiName: hi[1] };
    const nearby = [...(earlier.all(bounds) as [number, string | null][]).reverse(), ...(later.all(bounds) as [number, string | null][])];
    const inWindow = captured.all(bounds) as [number, string | null][];
    const watched = watchedStretches(db, w);
    return {
      capturedUs: inWindow.map((r) => r[0]),
      problems: (problems.all(bounds) as SummaryRow[]).map(toSummary),
      nearbyUs: nearby.map((r) => r[0]),
      clusters: inWindow.map((r) => r[1]),
      nearbyClusters: nearby.map((r) => r[1]),
      ...(watched.length ? { watched } : {}),
    };
  };
  // One read transaction: in WAL mode it sees one committed state throughout, so a
  // rebuild committed meanwhile (which renumbers names) cannot mix with what was read.
  // Inside one already, the reads join it.
  const consistently = <T>(use: () => T): T => {
    if (db.inTransaction) return use();
    db.exec('BEGIN');
    try {
      return use();
    } finally {
      db.exec('COMMIT');
    }
  };
  return {
    read: (w) => ({
      files: files(w),
      tracks: kept ? kept.segments(w) : readSegments(db, w),
      names: kept ? kept.names() : new IndexNames(db),
      rows: segmentRows(db, w),
    }),
    allocations: (w) => tracksOverlapping(db, w),
    consistently,
    // Every segment, ids only: the names table alone cannot tell a namespace from a user or
    // a job id, and the allocations table is wider (its own rows, a few times slower).
    knownValues: (key) => consistently(() => distinctValues(readSegments(db, null), new IndexNames(db), key)),
    newestByCluster: () =>
      db
        .prepare(
          `SELECT cluster, name FROM (SELECT ${CLUSTER} AS cluster, name, row_number() OVER (PARTITION BY ${CLUSTER} ORDER BY time_us DESC, name DESC) AS n FROM snapshots WHERE corrupt IS NULL)
           WHERE n = 1 AND cluster IS NOT NULL ORDER BY cluster`,
        )
        .all() as { cluster: string; name: string }[],
  };
}

/** The first problem that --strict refuses, as the index recorded it. */
export function firstProblem(db: Db): { name: string; corrupt: string | null; detail: string | null; recordSkips: string | null } | undefined {
  return db
    .prepare('SELECT name, corrupt, detail, record_skips AS recordSkips FROM snapshots WHERE corrupt IS NOT NULL OR record_skips IS NOT NULL ORDER BY time_us, name LIMIT 1')
    .get() as { name: string; corrupt: string | null; detail: string | null; recordSkips: string | null } | undefined;
}
