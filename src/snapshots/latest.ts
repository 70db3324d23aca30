import type { SnapshotObservations } from '../accounting/types.js';
import { DataError } from '../util/errors.js';
import { FormatError } from './detect.js';
import type { SnapshotFile } from './files.js';
import { SkipLedger } from './skips.js';
import { CorruptFileError, readSnapshot } from './read.js';

/**
 * Reading only the newest snapshot files, for the commands that look at "now" (`top`,
 * `check`): no index, no history, just the last file of the folder.
 */

export type FileRead = { ok: true; snapshot: SnapshotObservations } | { ok: false; reason: string; message: string };

/** One file's observations, or why it cannot be read. */
export function tryReadSnapshot(file: SnapshotFile): FileRead {
  try {
    return { ok: true, snapshot: readSnapshot(file) };
  } catch (e) {
    if (e instanceof CorruptFileError) return { ok: false, reason: e.reason, message: e.message };
    if (e instanceof FormatError) return { ok: false, reason: e.reason, message: e.message };
    throw e;
  }
}

export interface LatestSnapshot {
  file: SnapshotFile;
  snapshot: SnapshotObservations;
  /** Newer files that could not be read, newest first. */
  unreadable: { file: string; reason: string }[];
}

/**
 * The newest readable snapshot of a listing (sorted oldest first). A newer corrupt file is
 * warned about and passed over, or fails under `strict`; skipped records are reported the
 * same way. Throws DataError when no file can be read.
 */
export function readLatestReadable(files: readonly SnapshotFile[], policy: { strict: boolean; warn: (line: string) => void }): LatestSnapshot {
  const ledger = new SkipLedger(policy);
  const unreadable: LatestSnapshot['unreadable'] = [];
  for (let i = files.length - 1; i >= 0; i--) {
    const file = files[i]!;
    const read = tryReadSnapshot(file);
    if (!read.ok) {
      ledger.file(file.name, read.reason, read.message);
      unreadable.push({ file: file.name, reason: read.reason });
      continue;
    }
    ledger.records(file.name, read.snapshot.skips);
    if (unreadable.length > 0) policy.warn(`showing ${file.name}, the newest snapshot that could be read`);
    return { file, snapshot: read.snapshot, unreadable };
  }
  throw new DataError(`none of the ${files.length} snapshot files could be read (the newest, ${files[files.length - 1]!.name}: ${unreadable[0]!.reason})`);
}
