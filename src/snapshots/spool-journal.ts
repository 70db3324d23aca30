import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DataError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';
import { journalFileName, JOURNAL_DIR, sourceId, type JournalSource } from './journal.js';
import { acquireLock } from './lock.js';
import { replaceFile } from './write.js';

/**
 * A watcher's journal in the spool (docs/store.md#the-spool): while the store cannot be
 * reached, `watch --store` appends its lines to `journal/<source>/<hour>Z.jsonl` in the spool
 * folder, as a watcher appends to a snapshot folder's, a header each time it opens a file,
 * under the same lock file. Unlike the folder's writer it takes lines already written as JSON
 * (a batch the store did not take goes on as it was) and knows the number of each line, for
 * the notes of unconfirmed batches.
 */

/**
 * A batch sent to the store whose commit was never confirmed (the connection died after
 * COMMIT was sent): the store may hold it or not. Its lines went on into the spool, so the
 * forward skips that copy when the store holds the batch.
 */
export interface Unconfirmed {
  /** The hour file in the store, `journal/<source>/<hour>Z.jsonl`, and the number its first line was sent as. */
  file: string;
  line: number;
  /** The batch as sent (a header first when it opened the file). */
  lines: string[];
  /** Where the copy starts in the spooled file, and how many lines it has (the batch less its header). */
  at: number;
  count: number;
}

/** Where the notes of a spooled file are kept: a dot file beside it, which readers of the folder pass over. */
export const unconfirmedPath = (path: string): string => join(dirname(path), `.${basename(path)}.unconfirmed`);

/** The notes of a spooled file; none when it has none (or they cannot be read: nothing is skipped then). */
export function readUnconfirmed(path: string): Unconfirmed[] {
  const notes = unconfirmedPath(path);
  if (!existsSync(notes)) return [];
  try {
    const parsed = JSON.parse(readFileSync(notes, 'utf8')) as unknown;
    return Array.isArray(parsed) ? (parsed as Unconfirmed[]) : [];
  } catch {
    return [];
  }
}

/** The complete lines of a spooled file (without their newlines); a last line still being written is left out. */
export function spooledLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

/** Removes a spooled file that the store now holds, then its notes (in this order: notes without their file are ignored). */
export function removeSpooled(path: string): void {
  rmSync(path, { force: true });
  rmSync(unconfirmedPath(path), { force: true });
}

/** The lock a writer of the source's spooled journal holds, as the folder's JournalWriter does. */
export const spoolLockPath = (folder: string, id: string): string => join(folder, JOURNAL_DIR, id, '.lock');

export class SpoolJournal {
  private fd: number | null = null;
  private name: string | null = null;
  private lines = 0;

  private constructor(
    /** `<spool>/journal/<source-id>`. */
    readonly dir: string,
    private readonly release: () => void,
  ) {}

  /** Opens the source's journal in the spool folder, taking its lock (waiting up to `lockWaitMs`). */
  static async open(folder: string, source: JournalSource, lockWaitMs: number): Promise<SpoolJournal> {
    const id = sourceId(source);
    const dir = join(folder, JOURNAL_DIR, id);
    try {
      makeFolder(dir);
    } catch (e) {
      throw new DataError(`cannot create ${dir}: ${(e as Error).message}`);
    }
    const release = await acquireLock(spoolLockPath(folder, id), lockWaitMs, `another process is writing or forwarding the spooled journal ${dir}`);
    return new SpoolJournal(dir, release);
  }

  /**
   * Makes the file of `at`'s hour the one written, opening it (and writing `header()` first)
   * when it is not; returns its path and the number the next line written gets.
   */
  fileFor(at: Date, header: () => string): { path: string; next: number } {
    const name = journalFileName(at);
    if (name !== this.name) {
      this.closeFile();
      const path = join(this.dir, name);
      this.fd = this.failing(path, () => openSync(path, 'a+', 0o644));
      this.name = name;
      const existing = this.failing(path, () => readAll(this.fd!));
      let count = 0;
      for (let i = existing.indexOf(0x0a); i >= 0; i = existing.indexOf(0x0a, i + 1)) count++;
      // A line a killed writer tore is ended first: it stays a line of its own, which readers skip.
      const torn = existing.length > 0 && existing[existing.length - 1] !== 0x0a;
      this.lines = count + (torn ? 1 : 0);
      this.write((torn ? '\n' : '') + header() + '\n');
      this.lines++;
    }
    return { path: join(this.dir, this.name!), next: this.lines + 1 };
  }

  /** Appends lines (JSON, without newlines) to the file fileFor made current. */
  append(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.write(lines.map((l) => `${l}\n`).join(''));
    this.lines += lines.length;
  }

  /** Adds a note to the current file's notes, durably, before its lines are written. */
  remember(note: Unconfirmed): void {
    const path = join(this.dir, this.name!);
    replaceFile(unconfirmedPath(path), JSON.stringify([...readUnconfirmed(path), note]));
  }

  /** Makes what was written durable and releases the lock. */
  close(): void {
    try {
      this.closeFile();
    } finally {
      this.release();
    }
  }

  private write(text: string): void {
    const path = join(this.dir, this.name!);
    const data = Buffer.from(text);
    this.failing(path, () => {
      let off = 0;
      while (off < data.length) off += writeSync(this.fd!, data, off, data.length - off);
    });
  }

  private closeFile(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      this.failing(join(this.dir, this.name!), () => fdatasyncSync(fd));
    } finally {
      closeSync(fd);
    }
  }

  private failing<T>(path: string, work: () => T): T {
    try {
      return work();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOSPC' || code === 'EDQUOT' ? `the disk is full (${code}); free space there` : (e as Error).message;
      throw new DataError(`cannot write the spool's ${path}: ${why}; the watcher stops, and what it journaled so far waits in the spool`);
    }
  }
}

function readAll(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const data = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, data, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  return data.subarray(0, got);
}
