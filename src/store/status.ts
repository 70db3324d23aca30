import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Listing } from '../snapshots/files.js';
import { fileChecksum } from '../snapshots/read.js';
import { loadCatalogue } from './ingest.js';
import { planIngest } from './plan.js';
import { SCHEMA_VERSION, type Db } from './schema.js';
import { formatTimestamp, timestampText } from '../util/time.js';

/** What `index status` and `index verify` report, read from the index and the folder. */

export interface IndexStatus {
  path: string;
  schema_version: number;
  /** The database file plus its write-ahead log. */
  bytes: number;
  snapshots: { catalogued: number; corrupt: number; with_skipped_records: number; bytes: number; first: string | null; last: string | null };
  allocations: number;
  /** What the next ingest would do. */
  pending: { new: number; changed: number; removed: number; early: number };
  last_ingest: { finished_at: string; mode: string; files: number; bytes: number; corrupt: number; seconds: number; reason: string | null; lines: number } | null;
  /** Watchers' journal files read, and the lines read from them (headers aside). */
  journals: { files: number; lines: number };
  corrupt_files: { name: string; reason: string; detail: string | null }[];
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export function indexStatus(db: Db, path: string, listing: Listing): IndexStatus {
  const one = <T>(sql: string) => db.prepare(sql).get() as T;
  const snap = one<{ n: number; corrupt: number; skips: number; bytes: number | null; first: number | null; last: number | null }>(
    `SELECT count(*) AS n, count(corrupt) AS corrupt, count(record_skips) AS skips, sum(bytes) AS bytes,
            min(captured_us) AS first, max(captured_us) AS last FROM snapshots`,
  );
  const lastIngest = db.prepare('SELECT finished_at, mode, files, bytes, corrupt, seconds, reason, lines FROM ingest_runs ORDER BY id DESC LIMIT 1').get() as IndexStatus['last_ingest'] | undefined;
  const at = (us: number | null) => (us === null ? null : formatTimestamp(us));
  const plan = planIngest(listing.files, loadCatalogue(db));
  return {
    path,
    schema_version: SCHEMA_VERSION,
    bytes: fileSize(path) + fileSize(`${path}-wal`),
    snapshots: { catalogued: snap.n, corrupt: snap.corrupt, with_skipped_records: snap.skips, bytes: snap.bytes ?? 0, first: at(snap.first), last: at(snap.last) },
    allocations: (db.prepare('SELECT (SELECT count(*) FROM allocations) + (SELECT count(*) FROM live_allocations)').pluck().get() as number) ?? 0,
    pending: { new: plan.fresh.length, changed: plan.changed.length + plan.touched.length, removed: plan.removed.length, early: plan.early.length },
    // ingest_runs keeps Date's millisecond form; status speaks the report form.
    last_ingest: lastIngest ? { ...lastIngest, finished_at: timestampText(lastIngest.finished_at) ?? lastIngest.finished_at } : null,
    journals: { files: one<{ n: number }>('SELECT count(*) AS n FROM journal_files').n, lines: one<{ n: number }>('SELECT coalesce(sum(line), 0) AS n FROM journal_files').n },
    corrupt_files: db.prepare('SELECT name, corrupt AS reason, detail FROM snapshots WHERE corrupt IS NOT NULL ORDER BY time_us, name').all() as IndexStatus['corrupt_files'],
  };
}

export interface Verification {
  checked: number;
  /** Files whose bytes no longer match the checksum the index read. */
  mismatched: string[];
  missing: string[];
  /** Files in the folder the index has not read yet. */
  unindexed: number;
}

/**
 * Reads every catalogued file again and compares checksums: this catches an edit that kept
 * the size and the mtime, which a normal ingest cannot see. Files found changed are marked,
 * so the next ingest reads them again (and whatever depends on them).
 */
export function verifyIndex(db: Db, dir: string, listing: Listing): Verification {
  const rows = db.prepare('SELECT name, sha256 FROM snapshots ORDER BY time_us, name').all() as { name: string; sha256: string | null }[];
  const mark = db.prepare('UPDATE snapshots SET sha256 = NULL, mtime_ms = -1 WHERE name = ?');
  const out: Verification = { checked: 0, mismatched: [], missing: [], unindexed: 0 };
  for (const r of rows) {
    const sum = fileChecksum(join(dir, r.name));
    out.checked++;
    if (sum === null) out.missing.push(r.name);
    else if (r.sha256 !== null && sum !== r.sha256) out.mismatched.push(r.name);
  }
  if (out.mismatched.length > 0) db.transaction(() => out.mismatched.forEach((n) => mark.run(n)))();
  const known = new Set(rows.map((r) => r.name));
  out.unindexed = listing.files.filter((f) => !known.has(f.name)).length;
  return out;
}
