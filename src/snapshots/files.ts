import { statSync } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { UsageError } from '../util/errors.js';
import { parseInstant } from '../util/time.js';

/**
 * Finding snapshot files. Folders are scanned recursively (AI4OS keeps sub-folders),
 * skipping dot-folders such as `.hourmeter/`, temp files of atomic writes and non-JSON
 * files. Symbolic links to files and folders are followed; each folder and file is listed
 * once, under a path without links when it has one. The capture time in the file name lets
 * a report skip files before opening them.
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
   * entries: a folder whose mtime has not moved had no file renamed into it since. A linked
   * folder is named by its link, with its target's mtime; the folder holding a linked file's
   * target is named by its absolute real path. A dangling link is there with mtime -1, never
   * trusted: its target may appear without any folder moving; so is a folder that could not be listed.
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

const JSON_FILE = /\.json(\.gz)?$/;

/** What join(folder, name) puts before name, for any name without a separator. */
function joinedPrefix(folder: string): string {
  return join(folder, 'x').slice(0, -1);
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
 * and statting years of files would cost a short report most of its time. Linked files are
 * always statted: their folder's mtime says nothing about their target.
 *
 * Links are followed after the folders without links, so that a file reachable both ways
 * keeps its plain name; folders are known by device and inode, so that a link to an
 * ancestor or a second link to the same folder is not walked again. A dangling link, and a
 * sub-folder that cannot be listed, are skipped with a warning through `warn`.
 */
export async function listSnapshots(dir: string, flag = '--snapshots', opts: { stat?: boolean; warn?: (line: string) => void } = {}): Promise<Listing> {
  await checkFolder(dir, flag);
  const files: SnapshotFile[] = [];
  const unnamed: string[] = [];
  const folders: Listing['folders'] = [];
  const walked = new Set<string>();
  /** Real paths of the files listed, so that a linked file whose target is listed counts once. */
  const realFiles = new Set<string>();
  const links: { path: string; name: string; base: string }[] = [];
  // Names relative to the snapshot folder, built once per folder (path.relative per file
  // costs a noticeable part of listing ten thousand files).
  const nameIn = (rel: string) => (base: string) => (rel === '' ? base : `${rel}${sep}${base}`);
  const add = (path: string, name: string, base: string, size?: { bytes: number; mtimeMs: number }) => {
    const parsed = parseSnapshotName(base);
    if (parsed) files.push({ path, name, ...parsed, ...size });
    else unnamed.push(name);
  };
  const walk = async (folder: string, rel: string): Promise<void> => {
    const info = await stat(folder);
    const id = `${info.dev}:${info.ino}`;
    if (walked.has(id)) return;
    walked.add(id);
    const seen = { name: rel, mtimeMs: Math.trunc(info.mtimeMs) };
    folders.push(seen);
    const real = await realpath(folder);
    const nameOf = nameIn(rel);
    // join() normalizes its whole result: per file of a year that costs more than the
    // readdir. An entry's name has no separator, so the folder's joined prefix will do.
    const inFolder = joinedPrefix(folder);
    const inReal = joinedPrefix(real);
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (e) {
      if (rel === '') throw e;
      // A sub-folder closed to us (permissions): listed again each time, read once it opens.
      seen.mtimeMs = -1;
      opts.warn?.(`ignored the folder ${rel}: it cannot be listed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); its files are read once it can be`);
      return;
    }
    // In name order, so that which of two links to one folder is walked does not depend on the file system.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (isSkippable(entry.name)) continue;
      const path = inFolder + entry.name;
      if (entry.isDirectory()) {
        await walk(path, nameOf(entry.name));
      } else if (entry.isFile() && JSON_FILE.test(entry.name)) {
        add(path, nameOf(entry.name), entry.name);
        realFiles.add(inReal + entry.name);
      } else if (entry.isSymbolicLink()) {
        links.push({ path, name: nameOf(entry.name), base: entry.name });
      }
    }
  };
  await walk(dir, '');
  const linkedFiles: { link: (typeof links)[number]; bytes: number; mtimeMs: number }[] = [];
  // Linked folders may hold more links: the queue grows while it is walked.
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    let target;
    try {
      target = await stat(link.path);
    } catch (e) {
      folders.push({ name: link.name, mtimeMs: -1 });
      const to = await readlink(link.path).catch(() => '?');
      opts.warn?.(`ignored ${link.name}: a symbolic link to ${to}, which does not resolve (${(e as NodeJS.ErrnoException).code ?? 'error'}); restore its target or remove the link`);
      continue;
    }
    if (target.isDirectory()) await walk(link.path, link.name);
    else if (target.isFile() && JSON_FILE.test(link.base)) linkedFiles.push({ link, bytes: target.size, mtimeMs: Math.trunc(target.mtimeMs) });
  }
  const watched = new Set(folders.map((f) => f.name));
  for (const { link, bytes, mtimeMs } of linkedFiles) {
    const real = await realpath(link.path);
    if (realFiles.has(real)) continue;
    realFiles.add(real);
    add(link.path, link.name, link.base, { bytes, mtimeMs });
    // The target's folder moves when the target is replaced: the index must notice.
    const home = dirname(real);
    if (!watched.has(home)) {
      watched.add(home);
      folders.push({ name: home, mtimeMs: Math.trunc((await stat(home)).mtimeMs) });
    }
  }
  files.sort((a, b) => a.timeUs - b.timeUs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  unnamed.sort();
  if (opts.stat !== false) statFiles(files);
  return { files, unnamed, folders };
}
