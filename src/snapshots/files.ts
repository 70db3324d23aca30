import { statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { UsageError } from '../util/errors.js';
import { parseInstant } from '../util/time.js';

/**
 * Finding snapshot files. Folders are scanned recursively (AI4OS keeps sub-folders),
 * skipping dot-folders such as `.hourmeter/`, temp files of atomic writes and non-JSON
 * files. The capture time in the file name lets a report skip files before opening them.
 */

export interface SnapshotFile {
  path: string;
  /** Path relative to the snapshot folder, for messages. */
  name: string;
  /** Capture time from the file name (UTC), in microseconds. */
  timeUs: number;
  /** `Z` in the name marks a native file; a bare time is the AI4OS legacy naming. */
  namedAs: 'native' | 'legacy';
  gzip: boolean;
  /** Size on disk, when known. */
  bytes?: number;
  /** Last modification, in ms since the epoch, when known: the index notices a changed file by it. */
  mtimeMs?: number;
}

export interface Listing {
  files: SnapshotFile[];
  /**
   * Each folder scanned (relative path, '' for the top) with its mtime, read before its
   * entries: a folder whose mtime has not moved had no file renamed into it since.
   */
  folders: { name: string; mtimeMs: number }[];
  /** JSON files whose name carries no capture time; reported, never read. */
  unnamed: string[];
}

const NAME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(Z?)\.json(\.gz)?$/;

export function parseSnapshotName(base: string): Pick<SnapshotFile, 'timeUs' | 'namedAs' | 'gzip'> | null {
  const m = NAME.exec(base);
  if (!m) return null;
  let timeUs: number | null;
  try {
    timeUs = parseInstant(`${m[1]}Z`);
  } catch {
    return null;
  }
  if (timeUs === null) return null;
  return { timeUs, namedAs: m[2] === 'Z' ? 'native' : 'legacy', gzip: m[3] === '.gz' };
}

function isSkippable(base: string): boolean {
  return base.startsWith('.') || base.endsWith('.tmp') || base.endsWith('~');
}

/** Stats the files whose size and mtime are not known yet. */
export function statFiles(files: SnapshotFile[]): void {
  for (const f of files) {
    if (f.bytes !== undefined && f.mtimeMs !== undefined) continue;
    try {
      const st = statSync(f.path);
      f.bytes = st.size;
      f.mtimeMs = Math.trunc(st.mtimeMs);
    } catch {
      // Gone since the folder was read: the reader reports it as unreadable.
      f.bytes = 0;
      f.mtimeMs = 0;
    }
  }
}

/** Fails with a usage error unless the snapshot folder exists and is a folder. */
export async function checkFolder(dir: string, flag = '--snapshots'): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new UsageError(`${flag} ${dir}: no such folder; point ${flag} at the folder that holds the snapshot files`);
  }
  if (!info.isDirectory()) throw new UsageError(`${flag} ${dir} is not a folder; point ${flag} at the folder that holds the snapshot files`);
}

/**
 * Lists a snapshot folder. With `stat: false` file sizes and mtimes are left for the
 * caller to fill in (see statFiles): the index needs them only for files it has not read,
 * and statting years of files would cost a short report most of its time.
 */
export async function listSnapshots(dir: string, flag = '--snapshots', opts: { stat?: boolean } = {}): Promise<Listing> {
  await checkFolder(dir, flag);
  const files: SnapshotFile[] = [];
  const unnamed: string[] = [];
  const folders: Listing['folders'] = [];
  const walk = async (folder: string): Promise<void> => {
    const rel = relative(dir, folder);
    folders.push({ name: rel, mtimeMs: Math.trunc((await stat(folder)).mtimeMs) });
    // Names relative to the snapshot folder, built once per folder (path.relative per file
    // costs a noticeable part of listing ten thousand files).
    const nameOf = (base: string) => (rel === '' ? base : `${rel}${sep}${base}`);
    const entries = await readdir(folder, { withFileTypes: true });
    for (const entry of entries) {
      if (isSkippable(entry.name)) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        await walk(path);
      } else if (entry.isFile() && /\.json(\.gz)?$/.test(entry.name)) {
        const parsed = parseSnapshotName(entry.name);
        if (parsed) files.push({ path, name: nameOf(entry.name), ...parsed });
        else unnamed.push(nameOf(entry.name));
      }
    }
  };
  await walk(dir);
  files.sort((a, b) => a.timeUs - b.timeUs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  unnamed.sort();
  if (opts.stat !== false) statFiles(files);
  return { files, unnamed, folders };
}
