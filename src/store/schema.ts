import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { DataError, UsageError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';

/**
 * The index's SQLite schema and its migrations. The version lives in `PRAGMA user_version`;
 * each migration moves one version up, in one transaction. The index is a cache of the
 * snapshot files, so a migration that would need data the old schema never kept may
 * clear the derived tables: the next ingest reads the files again.
 */

export type Db = Database.Database;

interface Migration {
  to: number;
  why: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    to: 1,
    why: 'catalogue of snapshot files and reconstructed allocation tracks',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- One row per snapshot file seen: the catalogue. Files are identified by their path
      -- under the snapshot folder; size, mtime and checksum tell when one changed.
      CREATE TABLE snapshots (
        name TEXT PRIMARY KEY,
        time_us INTEGER NOT NULL,
        captured_us INTEGER,
        kind TEXT,
        bytes INTEGER NOT NULL,
        mtime_ms INTEGER NOT NULL,
        sha256 TEXT,
        corrupt TEXT,
        detail TEXT,
        covered TEXT,
        failed TEXT,
        record_skips TEXT,
        allocations INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX snapshots_by_time ON snapshots (time_us, name);
      -- One row per allocation: its reconstruction state (accounting/reconstruct.ts).
      CREATE TABLE allocations (
        key TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        job_id TEXT NOT NULL,
        job_name TEXT,
        user TEXT,
        grp TEXT,
        component TEXT,
        node TEXT,
        cpu_milli INTEGER NOT NULL,
        cpu_mhz INTEGER NOT NULL,
        memory_bytes INTEGER NOT NULL,
        disk_bytes INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        start_us INTEGER,
        state TEXT NOT NULL,
        last_holding_us INTEGER,
        end_us INTEGER,
        next_us INTEGER,
        listed_terminal INTEGER NOT NULL,
        next_kind TEXT,
        listed_holding INTEGER NOT NULL,
        listed INTEGER NOT NULL,
        unlisted_holding INTEGER NOT NULL,
        -- The latest instant it may have held resources: periods starting later skip it.
        reach_us INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX allocations_by_reach ON allocations (reach_us) WHERE reach_us IS NOT NULL;
      CREATE INDEX allocations_live ON allocations (listed, unlisted_holding) WHERE listed = 1 OR unlisted_holding = 1;
    `,
  },
  {
    to: 2,
    why: 'a log of ingest runs, for `index status`',
    sql: `
      CREATE TABLE ingest_runs (
        id INTEGER PRIMARY KEY,
        finished_at TEXT NOT NULL,
        mode TEXT NOT NULL,
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        corrupt INTEGER NOT NULL,
        seconds REAL NOT NULL,
        reason TEXT
      );
    `,
  },
  {
    to: 3,
    why: 'folder mtimes, so a report stats only files that may have changed; a range index on (reach, start)',
    sql: `
      CREATE TABLE folders (name TEXT PRIMARY KEY, mtime_ms INTEGER NOT NULL) WITHOUT ROWID;
      DROP INDEX allocations_by_reach;
      CREATE INDEX allocations_by_range ON allocations (reach_us, start_us) WHERE reach_us IS NOT NULL;
    `,
  },
  {
    to: 4,
    why: 'tracks as columns in segments, and a dictionary of names, so reports read a year in milliseconds',
    sql: `
      -- A dictionary: namespaces, users, groups, job ids and resource flavours as small ids.
      CREATE TABLE names (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
      -- Tracks that held resources, packed as columns (accounting/columns.ts), a few
      -- thousand per row. Sealed segments (id > 0) hold tracks that can change only if
      -- listed again (their row is then blanked); live segments (id < 0) hold the rest and
      -- are rewritten by each ingest.
      CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        tracks INTEGER NOT NULL,
        min_start_us INTEGER NOT NULL,
        max_reach_us INTEGER NOT NULL,
        data BLOB NOT NULL
      );
      -- The sealed segment and row a track is packed in; NULL while live.
      ALTER TABLE allocations ADD COLUMN segment INTEGER;
      ALTER TABLE allocations ADD COLUMN slot INTEGER;
      -- Reports read segments now, not allocation rows by time: the reach and its index go.
      DROP INDEX allocations_by_range;
      ALTER TABLE allocations DROP COLUMN reach_us;
      -- Older indexes have no segments: read the files again.
      DELETE FROM allocations;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key = 'last_us';
    `,
  },
  {
    to: 5,
    why: 'segments carry each track\'s component, for reports by component (PrimeHub\'s monthly CSV)',
    sql: `
      -- The segment layout gained a column: read the files again.
      DELETE FROM segments;
      DELETE FROM names;
      DELETE FROM allocations;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key = 'last_us';
    `,
  },
  {
    to: 6,
    why: 'flavours numbered apart with their amounts, and the catalogue indexed for diagnostics, so warm reports skip parsing and lookups',
    sql: `
      -- The mixes of amounts allocations hold, numbered apart: segments point into it. One
      -- row, the amounts of every flavour packed as numbers (accounting/columns.ts), so a
      -- report reads thousands of flavours at once.
      CREATE TABLE flavours (id INTEGER PRIMARY KEY, amounts BLOB NOT NULL);
      -- A report's diagnostics read the capture times of the files it reads, and the few
      -- files with something to say, without visiting the table's rows.
      CREATE INDEX snapshots_read ON snapshots (time_us, name, captured_us) WHERE corrupt IS NULL;
      CREATE INDEX snapshots_problems ON snapshots (time_us, name) WHERE corrupt IS NOT NULL OR failed IS NOT NULL OR record_skips IS NOT NULL;
      -- Segments now point at flavours by the new ids: read the files again.
      DELETE FROM segments;
      DELETE FROM names;
      DELETE FROM allocations;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key IN ('last_us', 'unnamed');
    `,
  },
  {
    to: 7,
    why: 'records with an implausible amount (say 1e308 cores) are skipped now: an older index may hold one that breaks every report',
    sql: `
      -- Read the files again, so that such records are skipped and reported.
      DELETE FROM segments;
      DELETE FROM names;
      DELETE FROM flavours;
      DELETE FROM allocations;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key IN ('last_us', 'unnamed');
    `,
  },
  {
    to: 8,
    why: 'allocations and names keep their rows in insertion order, with the lookup by key or value as an index a rebuild makes once at the end; live tracks in a table of their own',
    sql: `
      -- Keys are random (allocation ids): a table ordered by them takes every insert at a
      -- random page. Rows now go in the order they are saved; a rebuild drops the lookup
      -- indexes and makes them again from sorted keys (see store/ingest.ts, bulkLoad).
      DROP TABLE allocations;
      CREATE TABLE allocations (
        key TEXT NOT NULL,
        namespace TEXT NOT NULL,
        job_id TEXT NOT NULL,
        job_name TEXT,
        user TEXT,
        grp TEXT,
        component TEXT,
        node TEXT,
        cpu_milli INTEGER NOT NULL,
        cpu_mhz INTEGER NOT NULL,
        memory_bytes INTEGER NOT NULL,
        disk_bytes INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        start_us INTEGER,
        state TEXT NOT NULL,
        last_holding_us INTEGER,
        end_us INTEGER,
        next_us INTEGER,
        listed_terminal INTEGER NOT NULL,
        next_kind TEXT,
        listed_holding INTEGER NOT NULL,
        listed INTEGER NOT NULL,
        unlisted_holding INTEGER NOT NULL,
        segment INTEGER,
        slot INTEGER
      );
      CREATE UNIQUE INDEX allocations_by_key ON allocations (key);
      -- The tracks still live (listed, or holding resources unlisted) apart: every ingest
      -- reads them all and writes them all again, a few hundred rows on a few pages, where
      -- rewriting their rows in place would touch a page of allocations each.
      DROP TABLE IF EXISTS live_allocations;
      CREATE TABLE live_allocations (
        key TEXT NOT NULL,
        namespace TEXT NOT NULL,
        job_id TEXT NOT NULL,
        job_name TEXT,
        user TEXT,
        grp TEXT,
        component TEXT,
        node TEXT,
        cpu_milli INTEGER NOT NULL,
        cpu_mhz INTEGER NOT NULL,
        memory_bytes INTEGER NOT NULL,
        disk_bytes INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        start_us INTEGER,
        state TEXT NOT NULL,
        last_holding_us INTEGER,
        end_us INTEGER,
        next_us INTEGER,
        listed_terminal INTEGER NOT NULL,
        next_kind TEXT,
        listed_holding INTEGER NOT NULL,
        listed INTEGER NOT NULL,
        unlisted_holding INTEGER NOT NULL,
        segment INTEGER,
        slot INTEGER
      );
      DROP TABLE names;
      CREATE TABLE names (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
      CREATE UNIQUE INDEX names_by_value ON names (value);
      -- The tables were emptied: read the files again.
      DELETE FROM segments;
      DELETE FROM flavours;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key IN ('last_us', 'unnamed');
    `,
  },
  {
    to: 9,
    why: "watchers' journals are folded in with the snapshot files, read on from where the last ingest stopped",
    sql: `
      -- One row per journal file read (journal/<source>/<hour>Z.jsonl): where reading
      -- stopped (after the last complete line) and the size then, which freshness compares.
      -- Made afresh, so that an index set back to an older version migrates again cleanly.
      DROP TABLE IF EXISTS journal_files;
      DROP TABLE IF EXISTS journal_sources;
      DROP TABLE IF EXISTS journal_markers;
      DROP TABLE IF EXISTS watched_stretches;
      CREATE TABLE journal_files (
        name TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        offset INTEGER NOT NULL,
        line INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Per source, where the merge of its lines stopped (snapshots/journal-replay.ts,
      -- MergeState): the namespaces it watches, as JSON, and the key of its last line.
      CREATE TABLE journal_sources (source TEXT PRIMARY KEY, watched TEXT NOT NULL, last_key INTEGER NOT NULL, open_start_us INTEGER, open_end_us INTEGER) WITHOUT ROWID;
      -- Where each watcher followed the cluster (coverage's watched stretches), the last one
      -- growing while the watcher stays connected (open_* above).
      CREATE TABLE watched_stretches (source TEXT NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER NOT NULL, PRIMARY KEY (source, start_us)) WITHOUT ROWID;
      -- Snapshot files a resync marker already placed: one arriving later means starting over.
      CREATE TABLE journal_markers (snapshot TEXT PRIMARY KEY) WITHOUT ROWID;
      -- The log of ingests gains the journal lines read (begun again: the index is rebuilt).
      DROP TABLE ingest_runs;
      CREATE TABLE ingest_runs (
        id INTEGER PRIMARY KEY,
        finished_at TEXT NOT NULL,
        mode TEXT NOT NULL,
        files INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        corrupt INTEGER NOT NULL,
        seconds REAL NOT NULL,
        reason TEXT,
        lines INTEGER NOT NULL DEFAULT 0
      );
      -- Older indexes folded the snapshots without the journals: read everything again.
      DELETE FROM segments;
      DELETE FROM flavours;
      DELETE FROM names;
      DELETE FROM allocations;
      DELETE FROM live_allocations;
      DELETE FROM snapshots;
      DELETE FROM folders;
      DELETE FROM meta WHERE key IN ('last_us', 'unnamed');
    `,
  },
];

/**
 * The lookup indexes a rebuild drops while it fills the tables and makes again at the end:
 * an index built from all its keys at once is a sort, where one kept up to date is a write
 * at a random page per row.
 */
export const BULK_INDEXES = [
  { name: 'allocations_by_key', sql: 'CREATE UNIQUE INDEX allocations_by_key ON allocations (key)' },
  { name: 'names_by_value', sql: 'CREATE UNIQUE INDEX names_by_value ON names (value)' },
] as const;

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.to;

export interface OpenOptions {
  /** Create the file if missing. */
  create: boolean;
  /** Migrate up to this version (tests build older indexes with it). */
  version?: number;
}

/** Opens (or creates) an index, in WAL mode, migrated to the current schema. */
export function openIndex(path: string, opts: OpenOptions = { create: true }): Db {
  if (opts.create) {
    try {
      makeFolder(dirname(path));
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'EROFS' ? 'the file system is read-only (EROFS)' : (e as Error).message;
      throw new UsageError(`cannot create the folder of the index ${path}: ${why}; use --db to keep the index elsewhere`);
    }
  }
  let db: Db;
  try {
    db = new Database(path, { fileMustExist: !opts.create });
    db.pragma('journal_mode = WAL');
  } catch (e) {
    throw new UsageError(`cannot open the index ${path}: ${(e as Error).message}; use --db to keep the index elsewhere, or --no-index to read the files directly`);
  }
  // WAL: readers never wait for the ingest's write transaction, and a crash loses at most it.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 600000');
  // Reports read many rows at random places of a file of tens of MB: map it, cache more.
  db.pragma('mmap_size = 1073741824');
  db.pragma('cache_size = -65536');
  try {
    migrate(db, path, opts.version ?? SCHEMA_VERSION);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

function migrate(db: Db, path: string, target: number): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new DataError(`the index ${path} has schema version ${current}, newer than this hourmeter's ${SCHEMA_VERSION}: upgrade hourmeter, or delete the index (it is a cache of the snapshot files and is rebuilt from them)`);
  }
  for (const m of MIGRATIONS) {
    if (m.to <= current || m.to > target) continue;
    db.transaction(() => {
      // Another process may have migrated since we looked.
      if ((db.pragma('user_version', { simple: true }) as number) >= m.to) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.to}`);
    }).immediate();
  }
}
