import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { JOURNAL_DIR, listJournals } from '../snapshots/journal.js';
import type { Db } from './schema.js';

/**
 * Whether the index is up to date with its snapshot folder, from what the last ingest
 * recorded: apart from ingest.ts, so that a report with nothing to ingest does not load the
 * ingest (the readers, decoders and reconstruction: about 15 ms of start-up).
 */

/** No file is corrupt or marked by `index verify`: such files are statted and read again. */
export function nothingToRetry(db: Db): boolean {
  return db.prepare('SELECT 1 FROM snapshots WHERE corrupt IS NOT NULL OR sha256 IS NULL LIMIT 1').get() === undefined;
}

/**
 * The files without a capture time, when a report may skip listing the folder: every folder
 * the last ingest listed still has the mtime it had then (so no file was added, removed or
 * renamed in, and no sub-folder appeared), and nothing is left for an ingest to retry (see
 * nothingChanged in ingest.ts). Null when the folder must be listed. On ten thousand files this is a
 * few stats instead of tens of milliseconds.
 */
export async function unchangedSinceIngest(db: Db, dir: string): Promise<string[] | null> {
  const folders = db.prepare('SELECT name, mtime_ms AS mtimeMs FROM folders').all() as { name: string; mtimeMs: number }[];
  const unnamed = db.prepare("SELECT value FROM meta WHERE key = 'unnamed'").pluck().get() as string | undefined;
  if (folders.length === 0 || unnamed === undefined || folders.some((f) => f.mtimeMs < 0)) return null;
  if (!nothingToRetry(db) || journalsChanged(db, dir)) return null;
  for (const f of folders) {
    try {
      // Relative names, and the absolute ones of linked files' folders (see Listing); stat follows links.
      if (Math.trunc((await stat(resolve(dir, f.name))).mtimeMs) !== f.mtimeMs) return null;
    } catch {
      return null;
    }
  }
  return JSON.parse(unnamed) as string[];
}

/**
 * Whether a watcher's journal has lines the last ingest did not read: a journal file is
 * new, gone, or has another size than when it was read. A growing file moves no folder's
 * mtime, so the files are statted (one per source and hour).
 */
export function journalsChanged(db: Db, dir: string | undefined): boolean {
  const known = new Map((db.prepare('SELECT name, bytes FROM journal_files').all() as { name: string; bytes: number }[]).map((r) => [r.name, r.bytes]));
  if (dir === undefined) return known.size > 0;
  let count = 0;
  for (const source of listJournals(dir)) {
    for (const file of source.files) {
      count++;
      const bytes = known.get(join(JOURNAL_DIR, source.sourceId, file.name));
      if (bytes === undefined) return true;
      try {
        if (statSync(file.path).size !== bytes) return true;
      } catch {
        return true;
      }
    }
  }
  return count !== known.size;
}
