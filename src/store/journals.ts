import { statSync } from 'node:fs';
import { join } from 'node:path';
import { JOURNAL_DIR, listJournals, readJournalFile, type JournalEntry } from '../snapshots/journal.js';
import { EMPTY_MERGE, journalSequence, type JournalSequence, type MergeState } from '../snapshots/journal-replay.js';
import type { Db } from './schema.js';

/**
 * Watchers' journals in the index (docs/index.md#journals): per journal file, where the
 * last ingest stopped reading (after its last complete line), and where the merge of
 * journal lines with snapshot files stopped (MergeState). An ingest reads the lines after
 * those places and folds them in on top; a journal file that shrank, was removed, changed
 * before that place, or appeared before one already read makes the fold start over, and
 * so does a line or a file that falls before what was folded (see journalOrderReason).
 */

export interface JournalFileRow {
  /** Relative to the snapshot folder: `journal/<source>/<hour>Z.jsonl`. */
  name: string;
  source: string;
  /** The size when it was read. */
  bytes: number;
  /** Complete lines were read up to here. */
  offset: number;
  line: number;
}

export interface NewJournalLines {
  /** Why the fold must start over, or null. */
  reason: string | null;
  /** Per source with lines read, those lines, keyed on from where its merge stopped. */
  sequences: JournalSequence[];
  /** The files whose place moved (or that are new). */
  files: JournalFileRow[];
  /** How many lines were read (headers aside). */
  lines: number;
}

export function journalFiles(db: Db): Map<string, JournalFileRow> {
  const rows = db.prepare('SELECT name, source, bytes, offset, line FROM journal_files').all() as JournalFileRow[];
  return new Map(rows.map((r) => [r.name, r]));
}

/**
 * Reads the journal lines written since the last ingest (every line when `known` is
 * empty). `say` receives each line that was skipped.
 */
export function readNewJournalLines(dir: string, known: ReadonlyMap<string, JournalFileRow>, state: MergeState, say: (line: string) => void): NewJournalLines {
  const out: NewJournalLines = { reason: null, sequences: [], files: [], lines: 0 };
  const seen = new Set<string>();
  const lastKeys = new Map(state.sources.map((s) => [s.source, s.lastKey]));
  // The last file read of each source: files are hours, and only the last one grows.
  const lastKnown = new Map<string, string>();
  for (const r of known.values()) if ((lastKnown.get(r.source) ?? '') < r.name) lastKnown.set(r.source, r.name);
  for (const source of listJournals(dir)) {
    const entries: JournalEntry[] = [];
    for (const file of source.files) {
      const name = join(JOURNAL_DIR, source.sourceId, file.name);
      seen.add(name);
      const row = known.get(name);
      if (!row && (lastKnown.get(source.sourceId) ?? '') > name) {
        return { ...out, reason: `journal file ${name} appeared before one already read` };
      }
      let size: number;
      try {
        size = statSync(file.path).size;
      } catch {
        size = 0;
      }
      if (row && size < row.bytes) return { ...out, reason: `journal file ${name} shrank (${row.bytes} to ${size} bytes)` };
      if (row && size === row.bytes) continue;
      const read = readJournalFile(file.path, row ? { offset: row.offset, line: row.line } : undefined);
      for (const p of read.problems) {
        if (row && p.line === row.line && /no longer matches/.test(p.reason)) return { ...out, reason: `journal file ${name} changed before the part already read` };
        say(`${p.file} line ${p.line}: ${p.reason}; the line is skipped`);
      }
      for (const e of read.entries) if (e.line.type !== 'journal') entries.push(e);
      out.files.push({ name, source: source.sourceId, bytes: read.end.offset + read.pending, offset: read.end.offset, line: read.end.line });
    }
    if (entries.length > 0) {
      out.sequences.push(journalSequence(source.sourceId, entries, lastKeys.get(source.sourceId) ?? -Infinity));
      out.lines += entries.length;
    }
  }
  for (const name of known.keys()) if (!seen.has(name)) return { ...out, reason: `journal file ${name} removed` };
  return out;
}

const atOf = (j: JournalSequence) => (j.entries[0]!.line as { at: string }).at;

/**
 * Why the new journal lines and the first new snapshot file cannot go on top of what was
 * folded, or null when they can: a full read would have applied one of them earlier
 * (JournalMerge's order: by key, a file after the lines before its time, a resync's file
 * at its marker). Pure.
 */
export function journalOrderReason(
  state: MergeState,
  sequences: readonly JournalSequence[],
  firstFresh: { name: string; timeUs: number } | undefined,
  catalogued: (name: string) => boolean,
  passed: (name: string) => boolean,
): string | null {
  for (const j of sequences) {
    for (const file of j.markers.keys()) if (catalogued(file)) return `a resync in the journal of ${j.source} names ${file}, ingested before it`;
    const key = j.keys[0]!;
    if (key < state.fileBoundUs) return `journal lines of ${j.source} from ${atOf(j)} fall before the last ingested snapshot`;
    for (const s of state.sources) {
      if (s.source !== j.source && (key < s.lastKey || (key === s.lastKey && j.source < s.source))) {
        return `journal lines of ${j.source} from ${atOf(j)} fall before lines of ${s.source} already ingested`;
      }
    }
  }
  if (firstFresh) {
    const { name } = firstFresh;
    if (passed(name)) return `${name} is named by a resync already ingested`;
    let bound = firstFresh.timeUs;
    let markerSource: string | null = null;
    for (const j of sequences) {
      const line = j.markers.get(name);
      if (line === undefined) continue;
      bound = Math.min(bound, j.keys[line]!);
      markerSource = j.source;
      break;
    }
    for (const s of state.sources) {
      if (s.source !== markerSource && s.lastKey >= bound) return `${name} falls before journal lines of ${s.source} already ingested`;
    }
  }
  return null;
}

/**
 * A source's `watched` column: its watched namespaces as a JSON list, or, for a source of a
 * named cluster, `{"cluster", "namespaces"}` (an index from before clusters holds lists only).
 */
function encodeWatched(s: { cluster: string; watched: string[] }): string {
  return s.cluster === '' ? JSON.stringify(s.watched) : JSON.stringify({ cluster: s.cluster, namespaces: s.watched });
}

function decodeWatched(text: string): { cluster: string; watched: string[] } {
  const v = JSON.parse(text) as string[] | { cluster: string; namespaces: string[] };
  return Array.isArray(v) ? { cluster: '', watched: v } : { cluster: v.cluster, watched: v.namespaces };
}

/** Where the last ingest's merge stopped. */
export function loadMergeState(db: Db): MergeState {
  const rows = db.prepare('SELECT source, watched, last_key AS lastKey, open_start_us AS openStart, open_end_us AS openEnd FROM journal_sources ORDER BY source').all() as {
    source: string;
    watched: string;
    lastKey: number;
    openStart: number | null;
    openEnd: number | null;
  }[];
  const sources = rows.map((r) => ({
    source: r.source,
    ...decodeWatched(r.watched),
    lastKey: r.lastKey,
    open: r.openStart === null || r.openEnd === null ? null : { startUs: r.openStart, endUs: r.openEnd },
  }));
  const meta = (key: string) => db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  const bound = meta('merge_file_bound_us');
  return { sources, fileBoundUs: bound === undefined ? EMPTY_MERGE.fileBoundUs : Number(bound), appliedSinceFile: meta('merge_since_file') === '1' };
}

export function isPassedMarker(db: Db): (name: string) => boolean {
  const get = db.prepare('SELECT 1 FROM journal_markers WHERE snapshot = ?');
  return (name) => get.get(name) !== undefined;
}

/** Forgets every journal place: the fold starts over. */
export function clearJournals(db: Db): void {
  db.exec("DELETE FROM journal_files; DELETE FROM journal_sources; DELETE FROM journal_markers; DELETE FROM watched_stretches; DELETE FROM meta WHERE key IN ('merge_file_bound_us', 'merge_since_file')");
}

/** Keeps where reading and merging stopped, for the next ingest. */
export function saveJournals(db: Db, files: readonly JournalFileRow[], state: MergeState, passed: readonly string[], watched: readonly { source: string; startUs: number; endUs: number }[]): void {
  const file = db.prepare('INSERT OR REPLACE INTO journal_files (name, source, bytes, offset, line) VALUES (@name, @source, @bytes, @offset, @line)');
  for (const f of files) file.run(f);
  db.exec('DELETE FROM journal_sources');
  const source = db.prepare('INSERT INTO journal_sources (source, watched, last_key, open_start_us, open_end_us) VALUES (?, ?, ?, ?, ?)');
  // A source whose lines were all skipped has no key yet: it has nothing to keep.
  for (const s of state.sources) if (Number.isFinite(s.lastKey)) source.run(s.source, encodeWatched(s), s.lastKey, s.open?.startUs ?? null, s.open?.endUs ?? null);
  // A stretch goes on growing while its watcher stays connected: the same start, a later end.
  const stretch = db.prepare('INSERT OR REPLACE INTO watched_stretches (source, start_us, end_us) VALUES (?, ?, ?)');
  for (const w of watched) stretch.run(w.source, w.startUs, w.endUs);
  const marker = db.prepare('INSERT OR IGNORE INTO journal_markers (snapshot) VALUES (?)');
  for (const name of passed) marker.run(name);
  const put = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
  if (Number.isFinite(state.fileBoundUs)) put.run('merge_file_bound_us', String(state.fileBoundUs));
  put.run('merge_since_file', state.appliedSinceFile ? '1' : '0');
}

/** The watched stretches that overlap a window (coverage), in time order, each with the cluster its watcher followed. */
export function watchedStretches(db: Db, w: { startUs: number; endUs: number } | null): { startUs: number; endUs: number; cluster: string }[] {
  const rows = (
    w
      ? db.prepare('SELECT source, start_us AS startUs, end_us AS endUs FROM watched_stretches WHERE end_us > ? AND start_us < ? AND end_us > start_us ORDER BY start_us').all(w.startUs, w.endUs)
      : db.prepare('SELECT source, start_us AS startUs, end_us AS endUs FROM watched_stretches WHERE end_us > start_us ORDER BY start_us').all()
  ) as { source: string; startUs: number; endUs: number }[];
  if (rows.length === 0) return [];
  const clusters = new Map(
    (db.prepare('SELECT source, watched FROM journal_sources').all() as { source: string; watched: string }[]).map((r) => [r.source, decodeWatched(r.watched).cluster]),
  );
  return rows.map((r) => ({ startUs: r.startUs, endUs: r.endUs, cluster: clusters.get(r.source) ?? '' }));
}
