import type { Listing } from '../snapshots/files.js';
import type { Db } from './schema.js';

/**
 * Reads of the index's catalogue of snapshot files (the snapshots, folders and meta
 * tables), by name, for the history layer: the SQL stays here.
 */

export interface CatalogueSpan {
  /** File times (from the names) of the first and the last catalogued file, readable or not. */
  firstUs: number;
  lastUs: number;
}

export function catalogueSpan(db: Db): CatalogueSpan | null {
  const r = db.prepare('SELECT min(time_us) AS firstUs, max(time_us) AS lastUs FROM snapshots').get() as { firstUs: number | null; lastUs: number | null };
  return r.firstUs === null || r.lastUs === null ? null : { firstUs: r.firstUs, lastUs: r.lastUs };
}

export interface CatalogueRow {
  name: string;
  timeUs: number;
  bytes: number;
  mtimeMs: number;
}

/** Every catalogued file, in listing order (time, then name). */
export function catalogueFiles(db: Db): CatalogueRow[] {
  return db.prepare('SELECT name, time_us AS timeUs, bytes, mtime_ms AS mtimeMs FROM snapshots ORDER BY time_us, name').all() as CatalogueRow[];
}

/** The folders the last ingest listed, with their mtimes then. */
export function catalogueFolders(db: Db): Listing['folders'] {
  return db.prepare('SELECT name, mtime_ms AS mtimeMs FROM folders').all() as Listing['folders'];
}

export interface ReadableFiles {
  /** How many catalogued files could be read. */
  count: number;
  /** The latest capture time among them (the file time when the file names none); null for none. */
  latestUs: number | null;
}

export function readableFiles(db: Db): ReadableFiles {
  const r = db.prepare('SELECT max(coalesce(captured_us, time_us)) AS at, count(*) AS n FROM snapshots WHERE corrupt IS NULL').get() as { at: number | null; n: number };
  return { count: r.n, latestUs: r.at };
}

export interface LatestFile {
  /** Its capture time, or its file time when it names none. */
  capturedUs: number;
  /** How many scopes (namespaces) its capture failed. */
  failedScopes: number;
}

/** The last readable file by file time; null when none is. */
export function latestReadableFile(db: Db): LatestFile | null {
  const r = db.prepare('SELECT captured_us, time_us, failed FROM snapshots WHERE corrupt IS NULL ORDER BY time_us DESC LIMIT 1').get() as
    | { captured_us: number | null; time_us: number; failed: string | null }
    | undefined;
  if (!r) return null;
  return { capturedUs: r.captured_us ?? r.time_us, failedScopes: r.failed ? (JSON.parse(r.failed) as unknown[]).length : 0 };
}

/** Files that recorded a failed scope, or could not be read. */
export function failedFiles(db: Db): number {
  return db.prepare('SELECT count(*) FROM snapshots WHERE failed IS NOT NULL OR corrupt IS NOT NULL').pluck().get() as number;
}

/** The time of the last file ingested: it changes whenever an ingest adds one. */
export function lastIngestedMark(db: Db): string | undefined {
  return db.prepare("SELECT value FROM meta WHERE key = 'last_us'").pluck().get() as string | undefined;
}
