import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
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
  if (!nothingToRetry(db)) return null;
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
