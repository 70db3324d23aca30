import { join } from 'node:path';
import { folderCaptures, UnconfirmedWrite, type CaptureJournal, type CaptureSink, type JournalOpenOptions, type JournalRows } from '../snapshots/captures.js';
import { JOURNAL_DIR, JOURNAL_FORMAT, JOURNAL_VERSION, journalFileName, sourceId, type JournalEvent, type JournalHeader, type JournalSource } from '../snapshots/journal.js';
import { SpoolJournal, type Unconfirmed } from '../snapshots/spool-journal.js';
import { abortableSleep, backoffMs } from '../sources/watch.js';
import type { PostgresCaptures } from '../store/postgres/captures.js';
import { folderDirectory } from '../userdb/directory.js';
import type { Sighting } from '../userdb/store.js';
import { DataError } from '../util/errors.js';
import { formatTimestamp } from '../util/time.js';
import type { Forwarded } from './spool.js';

/**
 * Where `watch --store` writes (docs/store.md#the-spool): the store while it answers, the
 * spool while it cannot be reached. Every write (a journal batch, a list's document, the
 * owners it saw) goes through one queue, so nothing overtakes the switch either way. When a
 * write fails because the store went away, that write and all after it go to the spool, and
 * the store is tried again with a bounded backoff. Once it answers, the sink takes the
 * source's journal lock again, forwards what waits in the spool (history/spool.ts), and only
 * then writes to the store again: the store's hour file gets the lines it held, those the
 * spool held, and those that came after, in the order they came, each once.
 */

/** One connection to the store. */
export interface StoreLink {
  captures: PostgresCaptures;
  /** Forwards the spool over this connection (its journal lock, held, lets its own journal go). */
  forward(): Promise<Forwarded>;
  mergeSightings(sightings: Sighting[], at: string): Promise<void>;
  close(): Promise<void>;
}

export interface SpoolingOptions {
  spool: string;
  /** Connects again; throws what `away` recognizes while the store cannot be reached. */
  connect(): Promise<StoreLink>;
  /** Whether an error says the store cannot be reached (worth waiting out), not that it refused. */
  away(e: unknown): boolean;
  firstBackoffMs: number;
  maxBackoffMs: number;
  /** Progress and trouble, one line each (stderr). */
  note(line: string): void;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export class SpoolingCaptures implements CaptureSink {
  readonly stateDir = null;
  private readonly spoolSink: CaptureSink;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stopping = new AbortController();
  private reconnecting: Promise<void> | null = null;
  private journal: SpoolingJournal | null = null;

  /** `link`: the store as first reached, or null when it could not be (`why`). */
  constructor(
    private readonly o: SpoolingOptions,
    private link: StoreLink | null,
    why?: string,
  ) {
    this.spoolSink = folderCaptures(o.spool, o.note);
    if (link === null) this.saidAway(why ?? 'unknown');
  }

  /** Whether the store cannot be reached now (captures go to the spool). */
  get away(): boolean {
    return this.link === null;
  }

  where(name: string): string {
    return this.link ? this.link.captures.where(name) : join(this.o.spool, name);
  }

  /** Runs `work` after every write queued before it. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async lockSnapshots(waitMs: number): Promise<() => Promise<void>> {
    const link = this.link;
    if (link) {
      try {
        return await link.captures.lockSnapshots(waitMs);
      } catch (e) {
        if (!this.o.away(e)) throw e;
        await this.run(async () => this.lost(e, link));
      }
    }
    return this.spoolSink.lockSnapshots(waitMs);
  }

  writeSnapshot(name: string, bytes: Buffer, capturedAtUs: number): Promise<boolean> {
    return this.run(async () => {
      const link = this.link;
      if (link) {
        try {
          return await link.captures.writeSnapshot(name, bytes, capturedAtUs);
        } catch (e) {
          if (!this.o.away(e)) throw e;
          this.lost(e, link);
        }
      }
      return this.spoolSink.writeSnapshot(name, bytes, capturedAtUs);
    });
  }

  /** Records the owners a list saw: in the store, or beside the spooled captures (`<spool>/userdb`) for the forward to merge. */
  recordSightings(sightings: Sighting[], at: string): Promise<void> {
    return this.run(async () => {
      if (sightings.length === 0) return;
      const link = this.link;
      if (link) {
        try {
          return await link.mergeSightings(sightings, at);
        } catch (e) {
          if (!this.o.away(e)) throw e;
          this.lost(e, link);
        }
      }
      await folderDirectory(join(this.o.spool, 'userdb')).mergeSightings(sightings, at);
    });
  }

  async openJournal(opts: JournalOpenOptions): Promise<CaptureJournal> {
    if (this.journal) throw new Error('one journal per sink');
    const journal = new SpoolingJournal(this, this.o.spool, opts);
    this.journal = journal;
    const link = this.link;
    if (link) {
      let release: () => Promise<void>;
      try {
        release = await link.captures.lockJournal(opts.source, opts.lockWaitMs);
      } catch (e) {
        if (!this.o.away(e)) throw e;
        await this.run(async () => this.lost(e, link));
        return journal;
      }
      // What an earlier run left in the spool goes first.
      try {
        await this.rejoin(link, release, false);
      } catch (e) {
        if (!this.o.away(e) && !(e instanceof SpoolBusy)) throw e;
        await this.run(async () => this.lost(e, link));
      }
    } else {
      this.reconnect();
    }
    return journal;
  }

  async close(): Promise<void> {
    await this.settle();
    await this.queue;
    if (this.link === null && this.journal !== null) {
      this.o.note(`the store could not be reached until the end: what was journaled waits in the spool ${this.o.spool}; the next \`hourmeter watch --store\`, \`snapshot --store\` or \`store push\` that reaches the store forwards it`);
    }
    await this.link?.close();
    this.link = null;
  }

  /** Stops trying the store again (the watch is ending). */
  async settle(): Promise<void> {
    this.stopping.abort();
    await this.reconnecting;
  }

  /** Whether a failed write means the store went away. */
  isAway(e: unknown): boolean {
    return e instanceof UnconfirmedWrite || this.o.away(e);
  }

  /** The store went away (said once): later writes go to the spool, and the store is tried again. */
  lost(e: unknown, link = this.link): void {
    if (link === null || this.link !== link) return;
    this.link = null;
    void link.close().catch(() => undefined);
    this.journal?.detour();
    this.saidAway(messageOf(e));
    this.reconnect();
  }

  private saidAway(why: string): void {
    this.o.note(`the store cannot be reached (${why}); journal lines and lists wait in the spool ${this.o.spool} until it answers again`);
  }

  private reconnect(): void {
    if (this.reconnecting || this.stopping.signal.aborted || this.journal === null) return;
    this.reconnecting = this.tryAgain().finally(() => (this.reconnecting = null));
  }

  private async tryAgain(): Promise<void> {
    const journal = this.journal!;
    for (let failures = 1; ; failures++) {
      try {
        await abortableSleep(backoffMs(failures, this.o.firstBackoffMs, this.o.maxBackoffMs), this.stopping.signal);
      } catch {
        return;
      }
      let link: StoreLink;
      try {
        link = await this.o.connect();
      } catch (e) {
        if (this.o.away(e)) continue;
        return journal.fail(new DataError(`${messageOf(e)}; what was journaled meanwhile waits in the spool ${this.o.spool}`));
      }
      try {
        if (this.stopping.signal.aborted) throw new Error('stopped');
        const release = await link.captures.lockJournal(journal.source, journal.lockWaitMs);
        await this.rejoin(link, release, true);
        return;
      } catch (e) {
        await link.close().catch(() => undefined);
        if (this.stopping.signal.aborted) return;
        if (this.o.away(e) || e instanceof SpoolBusy) continue;
        return journal.fail(new DataError(`${messageOf(e)}; what was journaled meanwhile waits in the spool ${this.o.spool}`));
      }
    }
  }

  /**
   * Forwards the spool over `link`, holding the source's journal lock (`release` lets it go),
   * then writes to the store again; throws, writing on to the spool, when the forward fails.
   */
  private rejoin(link: StoreLink, release: () => Promise<void>, back: boolean): Promise<void> {
    const journal = this.journal!;
    return this.run(async () => {
      // The spool's file made durable, and its lock let go for the forward.
      journal.closeSpool();
      const r = await link.forward();
      for (const name of r.kept) this.o.note(`${join(this.o.spool, name)} stays in the spool: the store holds other bytes under its name (a capture is never rewritten); move it aside once checked`);
      for (const why of r.keptJournals) this.o.note(why);
      // Another process holds this journal in the spool (a push): its lines must go before ours.
      if (r.busy.includes(journal.id)) throw new SpoolBusy();
      this.link = link;
      journal.rejoin(link.captures.rows, release);
      if (back || r.files > 0 || r.lines > 0) {
        const what = [plural(r.lines, 'journal line'), plural(r.files, 'snapshot')].join(' and ');
        this.o.note(`${back ? 'the store answers again: ' : ''}forwarded ${what} from the spool ${this.o.spool} to the store`);
      }
    });
  }
}

/** The source's spooled journal is held by another process just now: try again later. */
class SpoolBusy extends Error {
  constructor() {
    super('another process is forwarding the spooled journal');
  }
}

/**
 * The watcher's journal through a SpoolingCaptures: lines are buffered and written at least
 * every second, each flush one batch, to the store's hour file (a header first each time the
 * file is opened, numbered on from the lines it holds) or to the spool's.
 */
class SpoolingJournal implements CaptureJournal {
  readonly id: string;
  readonly source: JournalSource;
  readonly lockWaitMs: number;
  private buffer: string[] = [];
  private rows: JournalRows | null = null;
  private release: (() => Promise<void>) | null = null;
  private fileName: string | null = null;
  private nextLine = 1;
  private spool: SpoolJournal | null = null;
  /** Each header is stamped later than the one before: a spooled file is found in the store by its header. */
  private lastHeaderMs = -Infinity;
  private failure: DataError | null = null;
  /** Set when a write failed for good (the spool's disk, or the store refusing): nothing more is written. */
  private broken = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sink: SpoolingCaptures,
    private readonly spoolDir: string,
    private readonly opts: JournalOpenOptions,
  ) {
    this.source = { ...opts.source };
    this.id = sourceId(opts.source);
    this.lockWaitMs = opts.lockWaitMs;
    this.timer = setInterval(() => this.tryFlush(), 1000);
    // A quiet stream must not keep the process alive for the journal's sake.
    this.timer.unref();
  }

  append(line: JournalEvent): void {
    this.usable();
    this.buffer.push(JSON.stringify(line));
  }

  flush(): void {
    this.usable();
    this.send();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.sink.settle();
    try {
      // Stopped by a store that refuses to take the journal back, the lines kept go to the spool still.
      if (!this.broken) this.send();
      await this.sink.run(async () => undefined);
    } finally {
      try {
        this.closeSpool();
      } finally {
        await this.release?.().catch(() => undefined);
      }
    }
    if (this.failure) throw this.failure;
  }

  /** The store went away: the next batches go to the spool. */
  detour(): void {
    const release = this.release;
    this.rows = null;
    this.release = null;
    this.fileName = null;
    void release?.().catch(() => undefined);
  }

  /** The store took the spool: the next batches go to it, the next one opening its hour file again. */
  rejoin(rows: JournalRows, release: () => Promise<void>): void {
    this.rows = rows;
    this.release = release;
    this.fileName = null;
  }

  closeSpool(): void {
    const spool = this.spool;
    this.spool = null;
    spool?.close();
  }

  /** Stops the journal: the watch ends with this error (exit 3); `broken`: nothing more can be written. */
  fail(e: DataError, broken = false): void {
    if (broken) this.broken = true;
    if (this.failure) return;
    this.failure = e;
    clearInterval(this.timer);
    this.opts.onError?.(e);
  }

  private send(): void {
    if (this.buffer.length === 0) return;
    const lines = this.buffer;
    this.buffer = [];
    const at = this.opts.now();
    this.sink
      .run(async () => {
        if (!this.broken) await this.write(lines, at);
      })
      .catch((e: unknown) => this.fail(e instanceof DataError ? e : new DataError(messageOf(e)), true));
  }

  private async write(lines: string[], at: Date): Promise<void> {
    const rows = this.rows;
    if (rows !== null) {
      const name = journalFileName(at);
      const file = `${JOURNAL_DIR}/${this.id}/${name}`;
      const batch = name === this.fileName ? lines : [this.header(at), ...lines];
      try {
        if (name !== this.fileName) {
          this.fileName = null;
          // A watcher restarted within the hour continues its file, as it appends to the folder's.
          this.nextLine = (await rows.lineCount(this.id, file)) + 1;
        }
        await rows.appendLines(this.id, file, this.nextLine, batch);
        this.fileName = name;
        this.nextLine += batch.length;
        return;
      } catch (e) {
        if (!this.sink.isAway(e)) throw new DataError(`cannot write ${file} in the store: ${messageOf(e)}; start the watcher again once the store takes writes`);
        const unconfirmed = e instanceof UnconfirmedWrite ? { file, line: this.nextLine, lines: batch } : null;
        this.sink.lost(e);
        return this.toSpool(lines, at, unconfirmed);
      }
    }
    return this.toSpool(lines, at, null);
  }

  private async toSpool(lines: string[], at: Date, unconfirmed: Omit<Unconfirmed, 'at' | 'count'> | null): Promise<void> {
    this.spool ??= await SpoolJournal.open(this.spoolDir, this.source, this.lockWaitMs);
    const { next } = this.spool.fileFor(at, () => this.header(at));
    // The note first: a note whose copy was never written is recognized, a copy without its note would not be.
    if (unconfirmed) this.spool.remember({ ...unconfirmed, at: next, count: lines.length });
    this.spool.append(lines);
  }

  private header(at: Date): string {
    const ms = Math.max(at.getTime(), this.lastHeaderMs + 1);
    this.lastHeaderMs = ms;
    const header: JournalHeader = { type: 'journal', at: formatTimestamp(ms * 1000), format: JOURNAL_FORMAT, version: JOURNAL_VERSION, source: { ...this.source } };
    return JSON.stringify(header);
  }

  private usable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('the journal is closed');
  }

  private tryFlush(): void {
    if (this.closed || this.failure) return;
    this.send();
  }
}
