import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { JobCounter, type SnapshotCounts } from '../accounting/job-counts.js';
import type { Micros } from '../accounting/types.js';
import { statFiles, type SnapshotFile } from './files.js';
import { SnapshotDecoder } from './observe.js';
import { readAll, type PoolOptions } from './read-pool.js';
import { replaceFile } from './write.js';

/**
 * Running and queued jobs per snapshot file, for `summarize`. The index keeps lifetimes,
 * not what each snapshot listed, so the files of the period are read for these counts. A
 * small cache beside the index remembers each file's counts (keyed by its size and mtime),
 * so later runs read only new files: snapshot files are never rewritten.
 */

/** 2: each file's counts name its cluster. */
const CACHE_VERSION = 2;

interface CacheEntry {
  bytes: number;
  mtimeMs: number;
  /** Null for a file that could not be read (the report's diagnostics say why). */
  counts: SnapshotCounts | null;
}

interface CacheFile {
  version: number;
  /** The snapshot folder the names are relative to. */
  folder: string;
  files: Record<string, CacheEntry>;
}

export interface CountsOptions extends PoolOptions {
  /** Where the cache lives; null reads every file of the window each time. */
  cachePath: string | null;
  /** The snapshot folder. */
  folder: string;
}

export interface CountsResult {
  counts: SnapshotCounts[];
  /** Files read now (not answered by the cache). */
  read: number;
  /** Why the cache could not be saved, if it could not. */
  cacheProblem: string | null;
}

/** The files whose capture time (by name) falls in [startUs, endUs), give or take a second. */
export function filesInWindow(files: readonly SnapshotFile[], w: { startUs: Micros; endUs: Micros }): SnapshotFile[] {
  // Names carry whole seconds of the capture time; the day is taken from the file's own time.
  return files.filter((f) => f.timeUs >= w.startUs - 1_000_000 && f.timeUs < w.endUs + 1_000_000);
}

function loadCache(path: string | null, folder: string): CacheFile {
  const empty: CacheFile = { version: CACHE_VERSION, folder, files: {} };
  if (path === null || !existsSync(path)) return empty;
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as CacheFile;
    if (c?.version !== CACHE_VERSION || c.folder !== folder || typeof c.files !== 'object' || c.files === null) return empty;
    return c;
  } catch {
    // A damaged cache is only a slower run: the files are read again.
    return empty;
  }
}

/** Job counts of the given files, in their order, reading only those the cache does not know. */
export async function snapshotCounts(files: SnapshotFile[], opts: CountsOptions): Promise<CountsResult> {
  const folder = resolve(opts.folder);
  statFiles(files);
  const cache = loadCache(opts.cachePath, folder);
  const fresh = (f: SnapshotFile) => {
    const e = cache.files[f.name];
    return e !== undefined && e.bytes === f.bytes && e.mtimeMs === f.mtimeMs;
  };
  const toRead = files.filter((f) => !fresh(f));
  if (toRead.length > 0) {
    const decoder = new SnapshotDecoder();
    const counter = new JobCounter();
    for await (const out of readAll('observe', toRead, opts)) {
      const { name, timeUs } = out.file;
      const counts = out.ok ? counter.apply(decoder.decode(out.value, name, timeUs)) : null;
      cache.files[name] = { bytes: out.file.bytes ?? 0, mtimeMs: out.file.mtimeMs ?? 0, counts };
    }
  }
  let cacheProblem: string | null = null;
  if (toRead.length > 0 && opts.cachePath !== null) {
    try {
      mkdirSync(dirname(opts.cachePath), { recursive: true });
      replaceFile(opts.cachePath, JSON.stringify(cache));
    } catch (e) {
      cacheProblem = (e as Error).message;
    }
  }
  const counts: SnapshotCounts[] = [];
  for (const f of files) {
    const c = cache.files[f.name]?.counts;
    if (c) counts.push(c);
  }
  return { counts, read: toRead.length, cacheProblem };
}
