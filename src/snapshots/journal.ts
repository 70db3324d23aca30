import { closeSync, fdatasyncSync, fstatSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Micros } from '../accounting/types.js';
import { clusterNameProblem } from '../accounting/clusters.js';
import { DataError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';
import { BadTimeError, formatTimestamp, parseInstant } from '../util/time.js';
import { acquireLock } from './lock.js';
import type { NativeAllocation } from './format.js';

/**
 * Journals (docs/snapshot-format.md#journals): every change a watcher receives, one JSON
 * line each, appended to files under `journal/<source-id>/` rotated by the UTC hour of the
 * watcher's clock. Files are only ever appended to; a line torn by a crash is left in place
 * and readers skip it.
 */

export const JOURNAL_FORMAT = 'hourmeter.journal';
export const JOURNAL_VERSION = 1;
/** The folder of journals, inside the snapshot folder. */
export const JOURNAL_DIR = 'journal';

export interface JournalSource {
  kind: string;
  address: string;
  region: string | null;
  /** The cluster its lines belong to (docs/accounting.md#clusters); absent in journals written before clusters. */
  cluster?: string;
}

export interface JournalHeader {
  type: 'journal';
  at: string;
  format: typeof JOURNAL_FORMAT;
  version: typeof JOURNAL_VERSION;
  source: JournalSource;
}

export interface ConnectedLine {
  type: 'connected';
  at: string;
}

export interface ResynchronisedLine {
  type: 'resynchronised';
  at: string;
  index: number;
  /** The snapshot file written from the list, relative to the snapshot folder. */
  snapshot: string;
  namespaces: string[];
}

export interface AllocationLine {
  type: 'allocation';
  at: string;
  index: number;
  event: string;
  allocation: NativeAllocation;
}

export interface AliveLine {
  type: 'alive';
  at: string;
  index: number;
}

export interface DisconnectedLine {
  type: 'disconnected';
  at: string;
  reason: string;
}

/** A line a watcher appends; the header is the writer's own. */
export type JournalEvent = ConnectedLine | ResynchronisedLine | AllocationLine | AliveLine | DisconnectedLine;
export type JournalLine = JournalHeader | JournalEvent;

/**
 * The folder name of a source's journal: kind, host and port (the scheme's default port
 * when the address names none), with every character outside `[A-Za-z0-9._-]` made `-`.
 * `{kind: 'nomad', address: 'http://127.0.0.1:4646'}` is `nomad-127.0.0.1-4646`.
 */
export function sourceId(source: { kind: string; address: string }): string {
  const address = source.address.includes('://') ? source.address : `http://${source.address}`;
  let host: string;
  let port: string;
  try {
    const url = new URL(address);
    host = url.hostname;
    port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  } catch {
    throw new DataError(`cannot name the journal of ${source.kind} at ${JSON.stringify(source.address)}: not an address; give one such as http://127.0.0.1:4646`);
  }
  return `${source.kind}-${host}-${port}`.replace(/[^A-Za-z0-9._-]/g, '-');
}

/** The kind of source a journal folder's name says (`kubernetes-10.0.0.1-443` is `kubernetes`): the identity space of its allocations. */
export function sourceKind(id: string): string {
  return id.slice(0, Math.max(0, id.indexOf('-'))) || id;
}

/** The file of the UTC hour of `at`: `2026-12-05T18Z.jsonl`. */
export function journalFileName(at: Date): string {
  return `${at.toISOString().slice(0, 13)}Z.jsonl`;
}

const FILE_NAME = /^(\d{4}-\d{2}-\d{2}T\d{2})Z\.jsonl$/;

/** A failed write or open said plainly: which file, why, and what to do about it. */
function storageError(path: string, e: unknown): DataError {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DataError(`cannot write ${path}: the disk is full (${err.code}); free space there and start the watcher again`);
    case 'EROFS':
      return new DataError(`cannot write ${path}: the file system is read-only (EROFS); mount it read-write, or use a snapshot folder on a writable one`);
    case 'EACCES':
    case 'EPERM':
      return new DataError(`cannot write ${path}: permission denied (${err.code}); let the watcher's user write there, or use another snapshot folder`);
    default:
      return new DataError(`cannot write ${path}: ${err.message}`);
  }
}

export interface JournalWriterOptions {
  /** The snapshot folder; the journal goes to its `journal/<source-id>/`. */
  folder: string;
  source: JournalSource;
  /** The watcher's clock: it names the files and times the headers. */
  now: () => Date;
  /** How long a second writer of the same source waits for the lock (default 10 s). */
  lockWaitMs?: number;
  /** Buffered lines are written at least this often (default 1 s). */
  flushEveryMs?: number;
  /** Told of a failed timed flush; the error is also thrown by the next append, flush or close. */
  onError?: (e: DataError) => void;
}

/**
 * Appends lines to a source's journal. Lines are buffered and written with one write(2)
 * per flush, to a file opened for appending: a process killed with -9 loses the lines of
 * the last second at most, and can tear only the last line it wrote.
 */
export class JournalWriter {
  private buffer: string[] = [];
  private fd: number | null = null;
  private fileName: string | null = null;
  private failure: DataError | null = null;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onExit = () => this.tryFlush();

  private constructor(
    /** The journal folder of the source, `<folder>/journal/<source-id>`. */
    readonly dir: string,
    private readonly source: JournalSource,
    private readonly now: () => Date,
    private readonly release: () => void,
    flushEveryMs: number,
    private readonly onError: ((e: DataError) => void) | undefined,
  ) {
    this.timer = setInterval(() => this.tryFlush(), flushEveryMs);
    // A quiet stream must not keep the process alive for the journal's sake.
    this.timer.unref();
    process.on('exit', this.onExit);
  }

  /** Opens the journal of `source` in `folder`, taking its lock (waiting a bounded time). */
  static async open(opts: JournalWriterOptions): Promise<JournalWriter> {
    const dir = join(opts.folder, JOURNAL_DIR, sourceId(opts.source));
    try {
      makeFolder(dir);
    } catch (e) {
      throw storageError(dir, e);
    }
    const lockWaitMs = opts.lockWaitMs ?? 10_000;
    let release: () => void;
    try {
      release = await acquireLock(join(dir, '.lock'), lockWaitMs, `another watcher is writing the journal ${dir}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw storageError(join(dir, '.lock'), e);
      throw e;
    }
    return new JournalWriter(dir, { ...opts.source }, opts.now, release, opts.flushEveryMs ?? 1000, opts.onError);
  }

  /** The file written last, or null before the first write. */
  get currentFile(): string | null {
    return this.fileName === null ? null : join(this.dir, this.fileName);
  }

  /** Buffers one line; it is written by the next flush. */
  append(line: JournalEvent): void {
    this.usable();
    this.buffer.push(JSON.stringify(line) + '\n');
  }

  /** Writes the buffered lines now, to the file of the current hour. */
  flush(): void {
    this.usable();
    if (this.buffer.length === 0) return;
    try {
      this.write();
    } catch (e) {
      // What was written stays; a restarted writer ends a torn line before its header.
      this.failure = e instanceof DataError ? e : storageError(this.dir, e);
      this.stop();
      throw this.failure;
    }
    this.buffer = [];
  }

  /** Flushes, makes the file durable, and releases the lock; throws if a write failed. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === null) this.flush();
    } catch {
      /* kept in this.failure, thrown below once the lock is released */
    } finally {
      this.closed = true;
      this.stop();
      try {
        this.closeFile();
      } catch {
        /* kept in this.failure */
      }
      this.release();
    }
    if (this.failure) throw this.failure;
  }

  private write(): void {
    const at = this.now();
    const name = journalFileName(at);
    let prefix = '';
    if (name !== this.fileName) {
      this.closeFile();
      prefix = this.openFile(name, at);
    }
    const data = Buffer.from(prefix + this.buffer.join(''));
    let off = 0;
    try {
      while (off < data.length) off += writeSync(this.fd!, data, off, data.length - off);
    } catch (e) {
      throw storageError(join(this.dir, name), e);
    }
  }

  private usable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('the journal is closed');
  }

  private tryFlush(): void {
    if (this.closed || this.failure) return;
    try {
      this.flush();
    } catch (e) {
      if (e instanceof DataError) this.onError?.(e);
      else throw e;
    }
  }

  private stop(): void {
    clearInterval(this.timer);
    process.off('exit', this.onExit);
  }

  /**
   * Opens an hour's file for appending and returns what must precede the lines: the
   * header, after a newline when a killed writer left the file without one at its end.
   */
  private openFile(name: string, at: Date): string {
    const path = join(this.dir, name);
    try {
      // Appending (O_APPEND) only ever adds at the end; reading is for the last byte.
      this.fd = openSync(path, 'a+', 0o644);
      this.fileName = name;
      const size = fstatSync(this.fd).size;
      const last = Buffer.alloc(1);
      const torn = size > 0 && readSync(this.fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
      const header: JournalHeader = { type: 'journal', at: formatTimestamp(at.getTime() * 1000), format: JOURNAL_FORMAT, version: JOURNAL_VERSION, source: this.source };
      return (torn ? '\n' : '') + JSON.stringify(header) + '\n';
    } catch (e) {
      throw storageError(path, e);
    }
  }

  private closeFile(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fdatasyncSync(fd);
    } catch (e) {
      const failure = storageError(join(this.dir, this.fileName!), e);
      this.failure ??= failure;
      throw failure;
    } finally {
      closeSync(fd);
    }
  }
}

/* ---------------------------------------------------------------- reading */

/** One hour's file of a source's journal. */
export interface JournalFile {
  path: string;
  /** The file name, `2026-12-05T18Z.jsonl`. */
  name: string;
  /** The start of its hour. */
  hourUs: Micros;
}

export interface SourceJournal {
  /** The folder name, see sourceId. */
  sourceId: string;
  dir: string;
  /** In time order. */
  files: JournalFile[];
  /** Other files in the folder (not dot files), which are not journal files. */
  others: string[];
}

/** Every source's journal in a snapshot folder, by source id; none when there is no `journal/`. */
export function listJournals(folder: string): SourceJournal[] {
  const root = join(folder, JOURNAL_DIR);
  let ids: string[];
  try {
    ids = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DataError(`cannot list ${root}: ${(e as Error).message}`);
  }
  return ids.sort().map((id) => {
    const dir = join(root, id);
    const files: JournalFile[] = [];
    const others: string[] = [];
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const m = FILE_NAME.exec(name);
      const hourUs = m ? parseInstant(`${m[1]}:00:00Z`) : null;
      if (hourUs === null) others.push(name);
      else files.push({ path: join(dir, name), name, hourUs });
    }
    // Names of one fixed width sort by time.
    return { sourceId: id, dir, files, others };
  });
}

/** Where reading a file stopped: a byte offset at the start of a line, and the lines before it. */
export interface JournalPosition {
  offset: number;
  line: number;
}

export interface JournalEntry {
  line: JournalLine;
  /** `line.at` in microseconds. */
  atUs: Micros;
  /** 1-based. */
  lineNumber: number;
  /** The position after this line: reading on from here gives the lines after it. */
  end: JournalPosition;
  /**
   * The cluster of the header before it in this read ('' : the unnamed cluster); undefined
   * when the read began after the file's header (a resumed read goes on with the cluster it had).
   */
  cluster?: string;
}

/** A line that was not read, or a part of a file that was skipped; never fatal. */
export interface JournalProblem {
  file: string;
  line: number;
  reason: string;
}

export interface JournalRead {
  file: string;
  /** The valid lines, in file order (headers included). */
  entries: JournalEntry[];
  problems: JournalProblem[];
  /** Lines torn by a killed writer and ended by the next one: skipped silently. */
  torn: number;
  /** Complete lines were read up to here; start the next read of the file from it. */
  end: JournalPosition;
  /** Bytes after `end` that do not end with a newline yet (being written, or torn). */
  pending: number;
}

/** Why a parsed line is not a valid journal line, or null when it is. */
function lineProblem(v: unknown): string | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string') return 'no "type"';
  if (typeof o.at !== 'string') return '"at" is missing or not a string';
  const isIndex = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  const isText = (x: unknown) => typeof x === 'string' && x !== '';
  switch (o.type) {
    case 'journal': {
      const s = o.source as Record<string, unknown> | null;
      if (s === null || typeof s !== 'object' || !isText(s.kind) || !(s.address === null || typeof s.address === 'string') || !(s.region === null || typeof s.region === 'string')) {
        return 'journal header: "source" must be {kind, address, region}';
      }
      if (s.cluster !== undefined && s.cluster !== null && s.cluster !== '' && (typeof s.cluster !== 'string' || clusterNameProblem(s.cluster) !== null)) {
        return `journal header: "source.cluster" ${JSON.stringify(s.cluster)} is not a cluster name (${clusterNameProblem(String(s.cluster))})`;
      }
      return null;
    }
    case 'connected':
      return null;
    case 'resynchronised':
      if (!isIndex(o.index)) return 'resynchronised: "index" must be an integer ≥ 0';
      if (!isText(o.snapshot)) return 'resynchronised: "snapshot" must name a file';
      if (!Array.isArray(o.namespaces) || !o.namespaces.every((n) => isText(n))) return 'resynchronised: "namespaces" must be a list of names';
      return null;
    case 'allocation': {
      if (!isIndex(o.index)) return 'allocation: "index" must be an integer ≥ 0';
      if (!isText(o.event)) return 'allocation: "event" must be an event type';
      const a = o.allocation as Record<string, unknown> | null;
      if (a === null || typeof a !== 'object' || Array.isArray(a)) return 'allocation: "allocation" must be an allocation record';
      for (const field of ['id', 'namespace', 'job_id', 'status'] as const) if (!isText(a[field])) return `allocation: the record lacks "${field}"`;
      if (a.resources === null || typeof a.resources !== 'object') return 'allocation: the record lacks "resources"';
      return null;
    }
    case 'alive':
      return isIndex(o.index) ? null : 'alive: "index" must be an integer ≥ 0';
    case 'disconnected':
      return typeof o.reason === 'string' ? null : 'disconnected: "reason" must be a string';
    default:
      return `unknown line type ${JSON.stringify(o.type).slice(0, 40)}`;
  }
}

function readRest(path: string, offset: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const data = Buffer.alloc(Math.max(0, size - offset));
    let got = 0;
    while (got < data.length) {
      const n = readSync(fd, data, got, data.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return data.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads one journal file from `from` (the start, or where an earlier read ended). Invalid
 * lines are reported and skipped; a line that is not JSON right before a header is one a
 * killed writer tore, and is skipped silently. A header of another format or version stops
 * the read there (reported): what follows is for a newer hourmeter. So does a file that
 * does not start with a header.
 */
export function readJournalFile(path: string, from: JournalPosition = { offset: 0, line: 0 }): JournalRead {
  const result: JournalRead = { file: path, entries: [], problems: [], torn: 0, end: { ...from }, pending: 0 };
  let data: Buffer;
  try {
    if (from.offset > 0) {
      // Resuming is only right at the start of a line of the same file.
      const before = readRest(path, from.offset - 1);
      if (before.length === 0 || before[0] !== 0x0a) {
        result.problems.push({ file: path, line: from.line, reason: `the file no longer matches what was read before (no line ends at byte ${from.offset}); read it again from the start` });
        return result;
      }
      data = before.subarray(1);
    } else {
      data = readRest(path, 0);
    }
  } catch (e) {
    result.problems.push({ file: path, line: from.line, reason: `cannot read the file: ${(e as Error).message}` });
    return result;
  }
  let pos = 0;
  let lineNumber = from.line;
  // A line that is not JSON, kept until the next line says whether it was torn.
  let unparsed: JournalProblem | null = null;
  let seenHeader = from.offset > 0;
  let cluster: string | undefined;
  for (;;) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) break;
    const text = data.toString('utf8', pos, nl);
    lineNumber++;
    const end: JournalPosition = { offset: from.offset + nl + 1, line: lineNumber };
    let value: unknown;
    let parsed = true;
    try {
      value = JSON.parse(text);
    } catch {
      parsed = false;
    }
    const isHeader = parsed && (value as { type?: unknown } | null)?.type === 'journal';
    if (unparsed) {
      if (isHeader) result.torn++;
      else result.problems.push(unparsed);
      unparsed = null;
    }
    if (!parsed) {
      unparsed = { file: path, line: lineNumber, reason: 'not valid JSON; the line is skipped' };
      pos = nl + 1;
      result.end = end;
      continue;
    }
    if (!seenHeader && !isHeader) {
      result.problems.push({ file: path, line: lineNumber, reason: 'the file does not start with a journal header; it is skipped' });
      return result;
    }
    if (isHeader) {
      const h = value as Record<string, unknown>;
      if (h.format !== JOURNAL_FORMAT || h.version !== JOURNAL_VERSION) {
        // Stop before the header: a newer hourmeter can read on from here.
        result.problems.push({
          file: path,
          line: lineNumber,
          reason: `unsupported journal format ${JSON.stringify(h.format)} version ${JSON.stringify(h.version)} (this hourmeter reads ${JOURNAL_FORMAT} version ${JOURNAL_VERSION}; upgrade hourmeter); the rest of the file is skipped`,
        });
        return result;
      }
      seenHeader = true;
    }
    const problem = lineProblem(value);
    let atUs: Micros | null = null;
    if (problem === null) {
      try {
        atUs = parseInstant((value as { at: string }).at);
      } catch (e) {
        if (!(e instanceof BadTimeError)) throw e;
      }
    }
    if (problem !== null || atUs === null) {
      result.problems.push({ file: path, line: lineNumber, reason: `${problem ?? `"at" is not a time: ${JSON.stringify((value as { at: string }).at)}`}; the line is skipped` });
    } else {
      if ((value as JournalLine).type === 'journal') cluster = ((value as JournalHeader).source.cluster as string | null | undefined) || '';
      result.entries.push(cluster === undefined ? { line: value as JournalLine, atUs, lineNumber, end } : { line: value as JournalLine, atUs, lineNumber, end, cluster });
    }
    pos = nl + 1;
    result.end = end;
  }
  if (unparsed) result.problems.push(unparsed);
  result.pending = data.length - pos;
  return result;
}

/** Every file of every source's journal in `folder`, read whole, in order. */
export function* readJournals(folder: string): Generator<JournalRead & { sourceId: string }> {
  for (const source of listJournals(folder)) {
    for (const file of source.files) yield { sourceId: source.sourceId, ...readJournalFile(file.path) };
  }
}
