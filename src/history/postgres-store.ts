import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { captureFetch, captureMark, listDocuments, refreshJournals } from '../store/postgres/capture-files.js';
import {
  canWriteIndex,
  captureMarkOf,
  copyIndex,
  copyState,
  indexIsEmpty,
  indexGeneration,
  journalsReadTo,
  lockIndex,
  openCopy,
  renewGeneration,
  setCaptureMark,
  setCopyState,
  trackChanges,
  writeBack,
} from '../store/postgres/index-replica.js';
import { requireSchema } from '../store/postgres/schema.js';
import { inTransaction } from '../store/postgres/transaction.js';
import type { Db } from '../store/schema.js';
import { SqliteHistoryStore } from './sqlite.js';
import type { AppendOptions, AppendResult, HistoryCatalogue, HistoryStore, HistoryView } from './store.js';

const NOTHING: AppendResult = { mode: 'none', reason: null, files: 0, bytes: 0, corrupt: 0, seconds: 0, lines: 0 };

/**
 * The PostgreSQL store (docs/store.md): the captures are rows, and the index derived from
 * them lives beside them in index_* tables. A process works on a copy of those tables in a
 * SQLite database of the index's own schema (in memory, or a file that serve's query
 * workers open), so reports run exactly the code the embedded store runs. When captures
 * arrived since the index was derived, the fold takes them in on a full copy, under a lock,
 * and writes back the rows it changed; a role that may not write the index (the reader)
 * folds them into its copy only.
 */
export class PostgresHistoryStore implements HistoryStore {
  private constructor(
    private readonly client: pg.Client,
    private readonly replica: SqliteHistoryStore,
    private readonly db: Db,
  ) {}

  /**
   * Connects the store to its copy of the index at `copyPath` (a file kept between runs, or
   * ':memory:'). The copy is taken again only when the store's index changed since (its
   * generation, renewed by every fold that writes it) or lacks tables asked for now, so a
   * warm report reads a local SQLite file as the embedded store does. `perAllocation`: copy
   * the allocations too, for reports that list each one.
   */
  static async open(client: pg.Client, opts: { copyPath?: string; keepSegments?: boolean; perAllocation?: boolean } = {}): Promise<PostgresHistoryStore> {
    await requireSchema(client);
    const path = opts.copyPath ?? ':memory:';
    const db = openCopy(path);
    try {
      const which = opts.perAllocation ? 'all' : 'read';
      const generation = await indexGeneration(client);
      const kept = copyState(db);
      if (generation === null || kept.generation !== generation || (which === 'all' && kept.tables !== 'all')) {
        await inTransaction(client, () => copyIndex(client, db, which), 'repeatable read, read only');
        setCopyState(db, which);
      }
      return new PostgresHistoryStore(client, new SqliteHistoryStore(db, path, opts.keepSegments), db);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  get view(): HistoryView {
    return this.replica.view;
  }

  get catalogue(): HistoryCatalogue {
    return this.replica.catalogue;
  }

  holdingByNamespace() {
    return this.replica.holdingByNamespace();
  }

  /** Whether this role may write the store's index (the README's writer may). */
  writable(): Promise<boolean> {
    return this.exclusive(() => canWriteIndex(this.client));
  }

  /** One connection serves one thing at a time: a fold, or a look at the journals. */
  private busy: Promise<unknown> = Promise.resolve();
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.busy.then(work, work);
    this.busy = run.catch(() => undefined);
    return run;
  }

  /**
   * Takes in the captures stored since the index was derived. The store lists its own
   * captures: `_listing` (a folder's) is not used.
   */
  append(_listing: unknown, o: AppendOptions): Promise<AppendResult> {
    return this.exclusive(() => this.appendNow(o));
  }

  private async appendNow(o: AppendOptions): Promise<AppendResult> {
    try {
      const mark = await captureMark(this.client);
      if (!o.rebuild && this.storedMark() === mark) return NOTHING;
      const writer = await canWriteIndex(this.client);
      // A writer reads what is committed once it holds the lock (a snapshot taken before it
      // would miss the fold it waited for); a reader, without the lock, one snapshot throughout.
      return await inTransaction(this.client, () => this.catchUp(writer, o), writer ? 'read committed' : 'repeatable read');
    } finally {
      o.progress?.done();
    }
  }

  /** Inside the transaction: the fold of what arrived, written back by a writer. */
  private async catchUp(writer: boolean, o: AppendOptions): Promise<AppendResult> {
    const started = performance.now();
    if (writer) await lockIndex(this.client, () => o.note?.('waiting for another process to finish updating the index in the store'));
    // Everything, as committed now: another process may have folded these captures meanwhile.
    await copyIndex(this.client, this.db, 'all');
    setCopyState(this.db, 'all');
    const now = await captureMark(this.client);
    if (!o.rebuild && this.storedMark() === now) {
      // Another process folded them: the copy changed all the same.
      return { ...NOTHING, mode: 'append', seconds: (performance.now() - started) / 1000 };
    }
    // A first fold writes every row: paged, rather than as a list of every key touched.
    const first = indexIsEmpty(this.db);
    if (!first) trackChanges(this.db);
    const result = await this.fold(now, o);
    if (writer) {
      // Other hosts' copies are now out of date.
      renewGeneration(this.db, randomUUID());
      await writeBack(this.client, this.db, first || result.mode === 'rebuild');
    } else {
      // This copy now holds what the store's index does not: it is no generation of the
      // store's, so the next process here copies again (and a writer folds for the store).
      renewGeneration(this.db, `unshared-${randomUUID()}`);
    }
    return { ...result, seconds: (performance.now() - started) / 1000 };
  }

  /** The fold over the stored captures, written out into a private folder as the fold reads them. */
  private async fold(mark: string, o: AppendOptions): Promise<AppendResult> {
    const dir = mkdtempSync(join(tmpdir(), 'hourmeter-fold-'));
    try {
      const files = await listDocuments(this.client, dir);
      const readTo = journalsReadTo(this.db);
      const fetch = await captureFetch(this.client, dir, readTo);
      const { ingest } = await import('../store/ingest.js');
      const result = await ingest(this.db, files, {
        rebuild: o.rebuild,
        dir,
        fetch,
        warn: o.warn,
        note: o.note,
        progress: o.progress ? (p) => o.progress!.update(p) : undefined,
      });
      setCaptureMark(this.db, mark);
      return result;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private storedMark(): string | undefined {
    return captureMarkOf(this.db);
  }

  private journalDir: string | null = null;
  private journalsSince: number | null = null;

  /**
   * The watchers' journals as files, for what counts their lines (serve's /metrics): a
   * private folder this store keeps up to date with the stored lines.
   */
  journalFolder(): Promise<string> {
    return this.exclusive(async () => {
      const dir = (this.journalDir ??= mkdtempSync(join(tmpdir(), 'hourmeter-journals-')));
      this.journalsSince = await refreshJournals(this.client, dir, this.journalsSince);
      return dir;
    });
  }

  close(): void {
    if (this.journalDir) rmSync(this.journalDir, { recursive: true, force: true });
    this.replica.close();
    void this.client.end().catch(() => undefined);
  }
}

