import { Reconstructor } from '../accounting/reconstruct.js';
import { countSkips } from '../snapshots/catalogue.js';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { statFiles, type Listing, type SnapshotFile } from '../snapshots/files.js';
import { describeRecordSkips } from '../snapshots/skips.js';
import { SnapshotDecoder } from '../snapshots/observe.js';
import { readAll, type ReadOutcome } from '../snapshots/read-pool.js';
import { fileChecksum } from '../snapshots/read.js';
import { planIngest, rebuildReason, type CatalogueEntry } from './plan.js';
import type { Db } from './schema.js';
import { TrackTable } from './tracks.js';
import { journalsChanged, nothingToRetry } from './freshness.js';
import { JournalMerge, EMPTY_MERGE, type MergeState } from '../snapshots/journal-replay.js';
import { clearJournals, isPassedMarker, journalFiles, journalOrderReason, loadMergeState, readNewJournalLines, saveJournals, type NewJournalLines } from './journals.js';

/**
 * Ingest: bring the index up to date with the snapshot folder. New files are read once,
 * in time order, and folded into the saved reconstruction; a file that changed,
 * disappeared or arrived out of order makes the fold start over (see plan.ts).
 *
 * The whole ingest is one write transaction: a concurrent ingest waits for it and then
 * finds nothing left to do; readers keep seeing the last committed state (WAL); a crash
 * leaves the index as it was. Tracks are flushed to the table every few hundred files and
 * evicted from memory unless still listed, so memory does not grow with history.
 */

export interface IngestProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

export interface IngestOptions {
  /** Read every file again, whatever the catalogue says. */
  rebuild?: boolean;
  /** Receives one line per problem found in a newly read file. */
  warn: (line: string) => void;
  /** Receives a line when this process must wait for another ingest. */
  note?: (line: string) => void;
  progress?: (p: IngestProgress) => void;
  /** Reader threads; see PoolOptions. */
  threads?: number;
  /** Flush tracks to the table and evict them from memory every this many files. */
  flushEvery?: number;
  /** Tracks per segment (see segments.ts); tests make it small. */
  segmentTracks?: number;
  /** The folders listed, with their mtimes (see Listing): files of unchanged folders are not statted. */
  folders?: Listing['folders'];
  /** The listing's files without a capture time, remembered for reports that skip the listing. */
  unnamed?: readonly string[];
  /** The snapshot folder, whose watchers' journals (journal/) are folded in; none are without it. */
  dir?: string;
  /**
   * For captures kept elsewhere (a database): puts the files about to be read, or every
   * journal file in full, at their paths under `dir` first. A folder needs none.
   */
  fetch?: CaptureFetch;
}

export interface CaptureFetch {
  snapshots(files: readonly SnapshotFile[]): Promise<void>;
  /** The files were read: their copies may go. */
  release(files: readonly SnapshotFile[]): Promise<void>;
  journals(): Promise<void>;
}

/** Fetched captures are read this many at a time, so their copies never fill a disk. */
const FETCH_CHUNK = 256;

/** readAll, fetching the captures a chunk at a time first when they are kept elsewhere. */
async function* readFetched(files: readonly SnapshotFile[], opts: IngestOptions): AsyncGenerator<ReadOutcome> {
  const fetch = opts.fetch;
  if (!fetch) return yield* readAll('ingest', files, { threads: opts.threads });
  for (let i = 0; i < files.length; i += FETCH_CHUNK) {
    const chunk = files.slice(i, i + FETCH_CHUNK);
    await fetch.snapshots(chunk);
    yield* readAll('ingest', chunk, { threads: opts.threads });
    await fetch.release(chunk);
  }
}

export interface IngestResult {
  mode: 'none' | 'append' | 'rebuild';
  /** Why the fold started over. */
  reason: string | null;
  files: number;
  bytes: number;
  corrupt: number;
  seconds: number;
  /** Journal lines read. */
  lines: number;
}

/** Flush tracks to the table (and evict them from memory) every this many files. */
const FLUSH_EVERY = 64;

export async function ingest(db: Db, files: readonly SnapshotFile[], opts: IngestOptions): Promise<IngestResult> {
  const started = performance.now();
  // An ingest touches each page a few times, in order: a small page cache does, and it
  // keeps the peak memory of a long ingest down (reports get the larger cache back after).
  const cacheSize = db.pragma('cache_size', { simple: true }) as number;
  db.pragma('cache_size = -8192');
  try {
    return await ingestWithCache(db, files, opts, started);
  } finally {
    db.pragma(`cache_size = ${cacheSize}`);
  }
}

async function ingestWithCache(db: Db, files: readonly SnapshotFile[], opts: IngestOptions, started: number): Promise<IngestResult> {
  beginWrite(db, opts.note);
  try {
    const result = await ingestLocked(db, files, opts);
    const seconds = (performance.now() - started) / 1000;
    if (result.mode !== 'none') {
      db.prepare('INSERT INTO ingest_runs (finished_at, mode, files, bytes, corrupt, seconds, reason, lines) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
        new Date().toISOString(), result.mode, result.files, result.bytes, result.corrupt, seconds, result.reason, result.lines,
      );
    }
    db.exec('COMMIT');
    // Fold the write-ahead log back into the database so the index stays one compact file;
    // a reader still inside an older snapshot only makes this a partial checkpoint.
    if (result.mode !== 'none') db.pragma('wal_checkpoint(TRUNCATE)');
    return { ...result, seconds };
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** Takes the write lock; says so when another ingest holds it and we wait. */
function beginWrite(db: Db, note?: (line: string) => void): void {
  const timeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma('busy_timeout = 0');
  try {
    db.exec('BEGIN IMMEDIATE');
    return;
  } catch (e) {
    if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
  note?.(`waiting for another process to finish updating the index (up to ${Math.round(timeout / 1000)} s)`);
  db.exec('BEGIN IMMEDIATE');
}

export function loadCatalogue(db: Db): Map<string, CatalogueEntry> {
  const rows = db.prepare('SELECT name, time_us AS timeUs, bytes, mtime_ms AS mtimeMs, sha256, corrupt, detail FROM snapshots').all() as CatalogueEntry[];
  return new Map(rows.map((r) => [r.name, r]));
}

/**
 * Fills in sizes and mtimes: from the catalogue for files read before whose folder has not
 * changed (no file was renamed into it since), by stat for the others. An edit in place
 * that keeps the folder's mtime is left to `index verify`; corrupt files are always
 * statted, so that one being written in place is read again once it is complete.
 */
function knowSizes(db: Db, listed: readonly SnapshotFile[], catalogue: Map<string, CatalogueEntry>, folders: Listing['folders'] | undefined): void {
  if (folders) {
    const seen = new Map((db.prepare('SELECT name, mtime_ms AS mtimeMs FROM folders').all() as { name: string; mtimeMs: number }[]).map((f) => [f.name, f.mtimeMs]));
    const unchanged = new Set(folders.filter((f) => seen.get(f.name) === f.mtimeMs).map((f) => f.name));
    // When every folder moved (the usual case: one folder, a new file in it), all are statted.
    if (unchanged.size > 0) sizesFromCatalogue(listed, catalogue, unchanged);
  }
  statFiles(listed as SnapshotFile[]);
}

/** Sizes and mtimes from the catalogue, for the files read before in folders that did not move. */
function sizesFromCatalogue(listed: readonly SnapshotFile[], catalogue: Map<string, CatalogueEntry>, unchanged: Set<string>): void {
  for (const f of listed) {
    if (f.bytes !== undefined) continue;
    const entry = catalogue.get(f.name);
    const folder = dirname(f.name) === '.' ? '' : dirname(f.name);
    // A file `index verify` found changed has no checksum left: stat it.
    if (entry && !entry.corrupt && entry.sha256 !== null && unchanged.has(folder)) {
      f.bytes = entry.bytes;
      f.mtimeMs = entry.mtimeMs;
    }
  }
}

/**
 * Remembers folder mtimes, and the files without a capture time they held; a folder that
 * moved in the last seconds is not trusted (coarse clocks).
 */
function saveFolders(db: Db, folders: Listing['folders'] | undefined, unnamed: readonly string[] | undefined): void {
  if (!folders) return;
  db.exec('DELETE FROM folders');
  const put = db.prepare('INSERT INTO folders (name, mtime_ms) VALUES (?, ?)');
  const now = Date.now();
  for (const f of folders) put.run(f.name, now - f.mtimeMs > 2000 ? f.mtimeMs : -1);
  rememberUnnamed(db, unnamed);
}


/** Keeps the listing's unnamed files for unchangedSinceIngest; written only when they differ. */
function rememberUnnamed(db: Db, unnamed: readonly string[] | undefined): void {
  const value = unnamed ? JSON.stringify(unnamed) : undefined;
  if (db.prepare("SELECT value FROM meta WHERE key = 'unnamed'").pluck().get() === value) return;
  if (value === undefined) db.prepare("DELETE FROM meta WHERE key = 'unnamed'").run();
  else db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('unnamed', ?)").run(value);
}


/** The reason the reader gives a file it could not open or read (see read.ts). */
const UNREADABLE = 'unreadable file';

/** Whether a file was skipped because it could not be opened: the error names the call. */
const openFailed = (reason: string | null | undefined, detail: string | null | undefined) => reason === UNREADABLE && /, open '/.test(detail ?? '');

/**
 * Files skipped because they could not be opened (permissions, say) that open now: one
 * open attempt each, on every ingest, so that a `chmod` is noticed although it changes
 * neither size nor mtime. A file that opened but failed to read (an I/O error) is left
 * until it changes: a failing disk must not rebuild the index on every report.
 */
function readableAgain(listed: readonly SnapshotFile[], catalogue: Map<string, CatalogueEntry>, changed: readonly string[]): string[] {
  const out: string[] = [];
  const already = new Set(changed);
  for (const f of listed) {
    const entry = catalogue.get(f.name);
    if (!entry || !openFailed(entry.corrupt, entry.detail) || already.has(f.name)) continue;
    try {
      closeSync(openSync(f.path, 'r'));
      out.push(f.name);
    } catch {
      // Still closed to us: tried again next time.
    }
  }
  return out;
}

/**
 * Whether a report may skip the catalogue: no folder changed since the last ingest (so no
 * file was added, removed or renamed in), the same number of files is listed, and no
 * file is corrupt or marked by `index verify` (those are always statted again). The full
 * check would find nothing to do; on ten thousand files it costs tens of milliseconds.
 * A listing with sizes (`index update`) always takes the full check: it looks for edits in place.
 */
function nothingChanged(db: Db, listed: readonly SnapshotFile[], folders: Listing['folders'] | undefined, dir: string | undefined): boolean {
  if (!folders || listed.some((f) => f.bytes !== undefined)) return false;
  const seen = new Map((db.prepare('SELECT name, mtime_ms AS mtimeMs FROM folders').all() as { name: string; mtimeMs: number }[]).map((f) => [f.name, f.mtimeMs]));
  if (seen.size !== folders.length || folders.some((f) => seen.get(f.name) !== f.mtimeMs)) return false;
  if (db.prepare('SELECT count(*) FROM snapshots').pluck().get() !== listed.length) return false;
  return nothingToRetry(db) && !journalsChanged(db, dir);
}

const NOTHING = { mode: 'none', reason: null, files: 0, bytes: 0, corrupt: 0, lines: 0 } as const;

async function ingestLocked(db: Db, listed: readonly SnapshotFile[], opts: IngestOptions): Promise<Omit<IngestResult, 'seconds'>> {
  if (!opts.rebuild && nothingChanged(db, listed, opts.folders, opts.dir)) {
    rememberUnnamed(db, opts.unnamed);
    return NOTHING;
  }
  const catalogue = loadCatalogue(db);
  knowSizes(db, listed, catalogue, opts.folders);
  saveFolders(db, opts.folders, opts.unnamed);
  const plan = planIngest(listed, catalogue);
  plan.readable = readableAgain(listed, catalogue, plan.changed);
  // Same size, new mtime: a `touch`, or an edit that kept the size. The checksum decides.
  const retouch = db.prepare('UPDATE snapshots SET mtime_ms = ? WHERE name = ?');
  for (const { file, entry } of plan.touched) {
    if (entry.sha256 !== null && fileChecksum(file.path) === entry.sha256) retouch.run(file.mtimeMs ?? 0, file.name);
    else plan.changed.push(file.name);
  }
  let reason = opts.rebuild ? 'asked to rebuild' : rebuildReason(plan);
  // Journal lines since the last ingest, unless the fold starts over anyway (then all of them, below).
  let merge: MergeState = EMPTY_MERGE;
  let journal: NewJournalLines = { reason: null, sequences: [], files: [], lines: 0 };
  if (reason === null && opts.dir !== undefined) {
    merge = loadMergeState(db);
    journal = readNewJournalLines(opts.dir, journalFiles(db), merge, opts.warn);
    reason = journal.reason ?? journalOrderReason(merge, journal.sequences, plan.fresh[0], (name) => catalogue.has(name), isPassedMarker(db));
  } else if (reason === null && db.prepare('SELECT 1 FROM journal_files LIMIT 1').get() !== undefined) {
    reason = 'no snapshot folder given to read the journals from';
  }
  // With journals, the reader goes on from the last file read (read again here), so that
  // each file is compared with the one before it as a full read does: a journal line
  // between them may have changed what that file listed.
  const decoder = new SnapshotDecoder();
  const withJournals = merge.sources.length > 0 || journal.sequences.length > 0;
  if (reason === null && withJournals && (plan.fresh.length > 0 || journal.lines > 0)) {
    const unread = await primeDecoder(db, decoder, listed, opts.fetch);
    if (unread !== null) reason = `${unread} could not be read again`;
  }
  const tracks = new TrackTable(db, opts.segmentTracks);
  let toRead: readonly SnapshotFile[];
  const rec = new Reconstructor(tracks);
  if (reason !== null) {
    db.exec('DELETE FROM snapshots');
    tracks.clear();
    db.prepare("DELETE FROM meta WHERE key IN ('last_us', 'last_us_by_cluster')").run();
    clearJournals(db);
    merge = EMPTY_MERGE;
    if (opts.dir !== undefined) await opts.fetch?.journals();
    journal = opts.dir === undefined ? journal : readNewJournalLines(opts.dir, new Map(), merge, opts.warn);
    toRead = listed;
  } else {
    toRead = plan.fresh;
    if (toRead.length === 0 && journal.lines === 0) {
      // Lines may have been skipped, or a torn tail grown: keep where reading stopped.
      saveJournals(db, journal.files, merge, [], []);
      return NOTHING;
    }
    const lastUs = db.prepare("SELECT value FROM meta WHERE key = 'last_us'").pluck().get() as string | undefined;
    const byCluster = db.prepare("SELECT value FROM meta WHERE key = 'last_us_by_cluster'").pluck().get() as string | undefined;
    if (lastUs !== undefined) rec.resume(tracks.takeLiveTracks(), Number(lastUs), !withJournals, byCluster === undefined ? {} : (JSON.parse(byCluster) as Record<string, number>));
  }
  tracks.bulkLoad();

  const insert = db.prepare(
    `INSERT OR REPLACE INTO snapshots (name, time_us, captured_us, kind, bytes, mtime_ms, sha256, corrupt, detail, covered, failed, record_skips, allocations)
     VALUES (@name, @time_us, @captured_us, @kind, @bytes, @mtime_ms, @sha256, @corrupt, @detail, @covered, @failed, @record_skips, @allocations)`,
  );
  const lines = new JournalMerge(journal.sequences, rec, (file, skips) => opts.warn(describeRecordSkips(file, skips)), merge);
  const totalBytes = toRead.reduce((n, f) => n + (f.bytes ?? 0), 0);
  let done = 0;
  let bytes = 0;
  let corrupt = 0;
  for await (const out of readFetched(toRead, opts)) {
    const f = out.file;
    const base = { name: f.name, time_us: f.timeUs, bytes: f.bytes ?? 0, mtime_ms: f.mtimeMs ?? 0, sha256: out.sha256 ?? null };
    lines.file(f.name, f.timeUs, (afterLines) => {
      if (!out.ok) {
        corrupt++;
        const again = openFailed(out.reason, out.message) ? 'read again once it can be read' : 'read again only when it changes';
        opts.warn(`skipped ${f.name}: ${out.reason} (${out.message}); it is recorded in the index and ${again}`);
        insert.run({ ...base, captured_us: null, kind: null, corrupt: out.reason, detail: out.message, covered: null, failed: null, record_skips: null, allocations: null });
        return false;
      }
      const delta = decoder.decode(out.value, f.name, f.timeUs);
      if (delta.skips.length > 0) opts.warn(describeRecordSkips(f.name, delta.skips));
      // After journal lines, the file is compared with everything listed (as full-read.ts does).
      if (afterLines) rec.applyWhole(delta, decoder.listedKeys());
      else rec.apply(delta);
      insert.run({
        ...base,
        captured_us: delta.timeUs,
        kind: delta.kind,
        corrupt: null,
        detail: null,
        covered: JSON.stringify([...delta.covered].sort()),
        failed: delta.failedScopes.length ? JSON.stringify(delta.failedScopes) : null,
        record_skips: delta.skips.length ? JSON.stringify(countSkips(delta.skips)) : null,
        allocations: rec.listedCount,
      });
      return true;
    });
    done++;
    bytes += f.bytes ?? 0;
    if (done % (opts.flushEvery ?? FLUSH_EVERY) === 0) rec.flush(tracks.save, false);
    opts.progress?.({ files: done, totalFiles: toRead.length, bytes, totalBytes });
  }
  lines.finish();
  rec.flush(tracks.save, true);
  tracks.finish();
  if (opts.dir !== undefined) saveJournals(db, journal.files, lines.state(), lines.passed, lines.watchedBySource());
  const lastUs = rec.latestUs;
  if (lastUs !== null) db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_us', ?)").run(String(lastUs));
  // Several clusters: each one's last time too, what its listed tracks were last seen at.
  const byCluster = rec.latestByCluster();
  if (Object.keys(byCluster).length > 0) db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_us_by_cluster', ?)").run(JSON.stringify(byCluster));
  else db.prepare("DELETE FROM meta WHERE key = 'last_us_by_cluster'").run();
  return { mode: reason !== null ? 'rebuild' : 'append', reason, files: done, bytes, corrupt, lines: journal.lines };
}

/**
 * Decodes the last readable file ingested, without applying it: the decoder then stands
 * where a full read's stands after it. Returns the file's name when it cannot be read.
 */
async function primeDecoder(db: Db, decoder: SnapshotDecoder, listed: readonly SnapshotFile[], fetch: CaptureFetch | undefined): Promise<string | null> {
  const last = db.prepare('SELECT name FROM snapshots WHERE corrupt IS NULL ORDER BY time_us DESC, name DESC LIMIT 1').pluck().get() as string | undefined;
  if (last === undefined) return null;
  const file = listed.find((f) => f.name === last);
  if (!file) return last;
  await fetch?.snapshots([file]);
  for await (const out of readAll('observe', [file], { threads: 1 })) {
    if (!out.ok) return last;
    decoder.decode(out.value, file.name, file.timeUs);
  }
  return null;
}
