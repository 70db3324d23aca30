import { closeSync, fsyncSync, linkSync, openSync, readdirSync, statSync, unlinkSync, writeSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataError } from '../util/errors.js';
import { alive } from './lock.js';

/**
 * Atomic, durable writes. The content goes to a temporary file in the same folder (named so
 * that readers skip it), is fsynced, then appears under its final name in one step. A
 * snapshot is never rewritten: if the name exists, the write fails instead.
 */

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

/** The final name and the writer's pid of a temp file named by tempPath; null for any other name. */
export function parseTempName(base: string): { target: string; pid: number } | null {
  const m = /^\.(.+)\.(\d+)\.tmp$/.exec(base);
  return m ? { target: m[1]!, pid: Number(m[2]) } : null;
}

/** A temp file this old is left over whoever has its pid now: a write takes seconds. */
const ABANDONED_MS = 3_600_000;

/**
 * Removes the temp files a killed writer left in `dir`: only those of final names that
 * `ours` accepts, and only when their writer is gone (or they are older than an hour, since
 * a pid is reused). The caller holds the lock under which such files are written. Returns
 * the names removed; a folder that cannot be read has none.
 */
export function removeLeftoverTemps(dir: string, ours: (target: string) => boolean, nowMs: number): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    const temp = parseTempName(name);
    if (!temp || temp.pid === process.pid || !ours(temp.target)) continue;
    const path = join(dir, name);
    try {
      if (alive(temp.pid) && nowMs - statSync(path).mtimeMs < ABANDONED_MS) continue;
      unlinkSync(path);
      removed.push(name);
    } catch {
      /* gone already, or not ours to remove */
    }
  }
  return removed;
}

function writeTemp(tmp: string, data: Buffer): void {
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  // The new directory entry must be durable too; some file systems refuse to fsync a folder.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}

function ioError(what: string, path: string, e: unknown): DataError {
  const err = e as NodeJS.ErrnoException;
  const hint = err.code === 'ENOSPC' ? 'the disk is full' : err.code === 'EACCES' || err.code === 'EROFS' || err.code === 'EPERM' ? 'the folder is not writable' : err.message;
  return new DataError(`${what} ${path}: ${hint} (${err.code ?? 'error'}); earlier files are untouched`);
}

/** Writes a new file that must not exist yet (snapshots). Returns false if the name is taken. */
export function writeNewFile(path: string, content: string | Buffer, opts: { gzip?: boolean } = {}): boolean {
  const tmp = tempPath(path);
  let data = typeof content === 'string' ? Buffer.from(content) : content;
  if (opts.gzip) data = gzipSync(data);
  try {
    writeTemp(tmp, data);
    try {
      // link() never replaces an existing file, unlike rename().
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    fsyncDir(dirname(path));
    return true;
  } catch (e) {
    throw ioError('cannot write', path, e);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
  }
}

/** Replaces a file atomically (indexes, caches, the user database: never snapshots). */
export function replaceFile(path: string, content: string): void {
  const tmp = tempPath(path);
  try {
    writeTemp(tmp, Buffer.from(content));
    renameSync(tmp, path);
    fsyncDir(dirname(path));
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw ioError('cannot write', path, e);
  }
}
