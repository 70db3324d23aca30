import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DataError } from '../util/errors.js';
import { isStorageFailure, makeFolder } from '../util/folders.js';
import { parseSnapshotName } from './files.js';
import type { NativeSnapshot } from './format.js';
import { JournalWriter, type JournalEvent, type JournalSource } from './journal.js';
import { acquireLock } from './lock.js';
import { removeLeftoverTemps, writeNewFile } from './write.js';

/**
 * Where `snapshot` and `watch` put what they capture: the snapshot folder (the default), or
 * a store's rows. Whatever the sink, it holds exactly what the folder would: a snapshot
 * document is the bytes of the file under the file's path in the folder, a journal line is
 * a line of `journal/<source>/<hour>Z.jsonl` under that path and its line number, so that
 * `hourmeter store import` of the folder and a capture straight into the store give the
 * same rows. Captures are never rewritten, and one writer at a time holds the snapshot lock
 * and each source's journal lock.
 */
export interface SnapshotSink {
  /** Where a snapshot document of this name is kept, for messages. */
  where(name: string): string;
  /** The folder for the capture's own state (the Nomad meta cache), or null when the sink keeps none. */
  readonly stateDir: string | null;
  /** Takes the snapshot lock, waiting up to `waitMs`; returns its release. */
  lockSnapshots(waitMs: number): Promise<() => Promise<void>>;
  /** Stores a snapshot document under `name`, timed by its name; false when the name is taken. */
  writeSnapshot(name: string, bytes: Buffer, capturedAtUs: number): Promise<boolean>;
  close(): Promise<void>;
  /** Set when the store could not be reached, and this sink is the spool folder in its place: why. */
  readonly spooledBecause?: string;
}

/** A sink a watcher writes to as well: the folder's, or the store's with its spool (history/spooling.ts). */
export interface CaptureSink extends SnapshotSink {
  /** Opens a source's journal, taking its lock (waiting up to `lockWaitMs`). */
  openJournal(opts: JournalOpenOptions): Promise<CaptureJournal>;
}

export interface JournalOpenOptions {
  source: JournalSource;
  /** The watcher's clock: it names the hour files and times the headers. */
  now: () => Date;
  lockWaitMs: number;
  /** Told of a failed timed flush; the error is also thrown by the next append, flush or close. */
  onError?: (e: DataError) => void;
}

/** What a watcher appends its lines to; JournalWriter is the folder's. */
export interface CaptureJournal {
  append(line: JournalEvent): void;
  flush(): void;
  /** Writes what is buffered and releases the lock; throws if a write failed. */
  close(): void | Promise<void>;
}

/**
 * Writes a native snapshot under the name of its capture time, to the second; returns the
 * name. Two captures in the same second: the second keeps its milliseconds rather than
 * overwrite the first.
 */
export async function writeSnapshotDocument(sink: SnapshotSink, snap: NativeSnapshot, opts: { gzip: boolean; folder?: string }): Promise<string> {
  const text = Buffer.from(JSON.stringify(snap));
  const bytes = opts.gzip ? gzipSync(text) : text;
  const ext = `.json${opts.gzip ? '.gz' : ''}`;
  // A cluster named with --cluster keeps its snapshots in a sub-folder of its own.
  const under = opts.folder ? `${opts.folder}/` : '';
  for (const base of [`${snap.captured_at.slice(0, 19)}Z${ext}`, `${snap.captured_at.slice(0, 23)}Z${ext}`]) {
    if (await sink.writeSnapshot(under + base, bytes, parseSnapshotName(base)!.timeUs)) return under + base;
  }
  throw new DataError(`${sink.where(`${under}${snap.captured_at.slice(0, 23)}Z${ext}`)} already exists; snapshots are never overwritten`);
}

/** The snapshot folder as a sink: today's files, lock files and journals. */
export function folderCaptures(dir: string, warn: (line: string) => void): CaptureSink {
  const stateDir = join(dir, '.hourmeter');
  return {
    where: (name) => join(dir, name),
    stateDir,
    async lockSnapshots(waitMs) {
      try {
        makeFolder(stateDir);
      } catch (e) {
        // A full or read-only disk is said plainly, naming the path (main.ts).
        if (isStorageFailure(e)) throw e;
        throw new DataError(`cannot create ${stateDir}: ${(e as Error).message}`);
      }
      const release = await acquireLock(join(stateDir, 'snapshot.lock'), waitMs);
      // Under the lock no other run writes snapshots: a temp file is an interrupted run's.
      for (const name of removeLeftoverTemps(dir, (n) => parseSnapshotName(n) !== null, Date.now())) warn(`removed ${join(dir, name)}, a temp file left by an interrupted run`);
      return async () => release();
    },
    writeSnapshot: async (name, bytes) => {
      // A cluster's sub-folder is made on its first snapshot.
      if (name.includes('/')) makeFolder(dirname(join(dir, name)));
      return writeNewFile(join(dir, name), bytes);
    },
    openJournal: (o) => JournalWriter.open({ folder: dir, source: o.source, now: o.now, lockWaitMs: o.lockWaitMs, onError: o.onError }),
    close: async () => {},
  };
}

/** The rows of a store's journal lines, as a watcher writes them (history/spooling.ts). */
export interface JournalRows {
  /** How many lines the file holds: a reopened file is numbered on from there. */
  lineCount(source: string, file: string): Promise<number>;
  /**
   * Adds the lines, numbered from `firstLineNumber`, all or none; rejects with
   * UnconfirmedWrite when the connection was lost after the commit was sent.
   */
  appendLines(source: string, file: string, firstLineNumber: number, lines: string[]): Promise<void>;
}

/** A write whose commit was sent but never confirmed: the store may hold it, or not. */
export class UnconfirmedWrite extends Error {
  constructor(cause: unknown) {
    super((cause as Error)?.message ?? String(cause), { cause });
  }
}

