import { basename, join } from 'node:path';
import { checkFolder, listSnapshots, parseSnapshotName, statFiles, type Listing } from '../snapshots/files.js';
import { SkipLedger, type ReadPolicy } from '../snapshots/skips.js';
import { filesView } from '../store/view.js';
import type pg from 'pg';
import { DataError, UsageError } from '../util/errors.js';
import { openIndexStore } from './sqlite.js';
import type { HistoryCatalogue, HistoryStore, HistoryView, ProgressSink } from './store.js';

/**
 * Where reports get their history: the store (the index beside the snapshots, by default),
 * brought up to date first, or a full read of the files. Both give the same numbers; the
 * index answers in milliseconds once built.
 */

/** Where the index lives unless --db says otherwise. */
export function defaultIndexPath(dir: string): string {
  return join(dir, '.hourmeter', 'index.sqlite');
}

export interface OpenOptions {
  /** The snapshot folder. */
  dir: string;
  /** The index, or null to read the files directly (--no-index). */
  index: {
    path: string;
    /** Chosen by the operator (--db): an index that cannot be opened is then an error, not a reason to read the files. */
    chosen: boolean;
  } | null;
  strict: boolean;
  warn: (line: string) => void;
  /** A sink for the progress of the append, if one is made. */
  progress?: () => ProgressSink | null;
  /**
   * The PostgreSQL store, in place of the folder and its index: how to connect, and whether
   * the report lists each allocation (HistoryView.allocations needs more of the index).
   */
  store?: { connect(): Promise<pg.Client>; copyPath: string; perAllocation?: boolean } | null;
}

export interface OpenedHistory {
  /**
   * The snapshot files, oldest first. When no folder changed since the last ingest they
   * come from the index's catalogue instead of a listing, built on first use.
   */
  readonly listing: Listing;
  /** The capture times of the first and the last file. */
  readonly span: { firstUs: number; lastUs: number };
  /** JSON files whose name carries no capture time (see Listing). */
  readonly unnamed: readonly string[];
  /** False when no folder had moved since the last ingest, so the folder was not listed. */
  readonly listed: boolean;
  view: HistoryView;
  close(): void;
}

/** Lists the snapshot folder; a folder without snapshot files is a usage error. */
export async function listFiles(dir: string, opts: { stat?: boolean; warn?: (line: string) => void } = {}): Promise<Listing> {
  const listing = await listSnapshots(dir, '--snapshots', opts);
  if (listing.files.length === 0) throw noFiles(dir);
  return listing;
}

const noFiles = (dir: string) =>
  new UsageError(`--snapshots ${dir} holds no snapshot files (*.json named by capture time); run \`hourmeter snapshot\` first or point --snapshots elsewhere`);

/** Reads every listed file, without a store: the same view a store gives, only slower. */
export async function readWithoutStore(listing: Listing, policy: ReadPolicy, dir: string, untilUs = Infinity): Promise<HistoryView> {
  statFiles(listing.files);
  // Loaded here: a report from an index that is up to date needs none of the readers.
  const { loadHistory } = await import('../snapshots/full-read.js');
  const { readJournalSequences } = await import('../snapshots/journal-replay.js');
  // A replay of the past (untilUs) reads the journal lines of that past only.
  const journals = readJournalSequences(dir, (p) => policy.warn(`${p.file} line ${p.line}: ${p.reason}; the line is skipped`), untilUs);
  return filesView(await loadHistory(listing, policy, journals));
}

/** Lists the folder, then brings the store up to date (or reads the files) for a report. */
export async function openHistory(o: OpenOptions): Promise<OpenedHistory> {
  if (o.store) return openStored(o, o.store);
  const policy = { strict: o.strict, warn: o.warn };
  // The index stats only the files it needs to (see ingest.ts); a full read wants sizes for all.
  const list = () => listFiles(o.dir, { stat: o.index === null, warn: o.warn });
  const readFiles = async (listing: Listing): Promise<OpenedHistory> => ({
    listing,
    span: spanOf(listing),
    unnamed: listing.unnamed,
    listed: true,
    view: await readWithoutStore(listing, policy, o.dir),
    close: () => {},
  });
  if (o.index === null) return readFiles(await list());
  // Before the index, which would otherwise create the folder it lives in.
  await checkFolder(o.dir);
  let store: HistoryStore;
  try {
    store = openIndexStore(o.index.path);
  } catch (e) {
    // A read-only snapshot folder (say, a shared copy) still answers, only slower.
    if (!(e instanceof UsageError) || o.index.chosen) throw e;
    o.warn(`${e.message.split(';')[0]}; reading the files directly (slower). Use --db to keep an index elsewhere`);
    return readFiles(await list());
  }
  try {
    // No folder moved since the last ingest: the catalogue stands for the listing.
    const remembered = await store.catalogue.unchangedSince(o.dir);
    let listing = remembered === null ? await list() : null;
    const unnamed = listing?.unnamed ?? remembered ?? [];
    new SkipLedger(policy).unnamed(unnamed);
    if (listing) await store.append(listing, { dir: o.dir, warn: o.warn, note: o.warn, progress: o.progress?.() });
    if (o.strict) refuseProblems(store.catalogue);
    const span = listing ? spanOf(listing) : store.catalogue.span();
    if (!span) throw noFiles(o.dir);
    return {
      get listing() {
        return (listing ??= catalogueListing(store.catalogue, o.dir, unnamed));
      },
      span,
      unnamed,
      listed: remembered === null,
      view: store.view,
      close: () => store.close(),
    };
  } catch (e) {
    store.close();
    throw e;
  }
}

/** The history from the PostgreSQL store, its index brought up to date with the captures stored. */
async function openStored(o: OpenOptions, how: NonNullable<OpenOptions['store']>): Promise<OpenedHistory> {
  const { PostgresHistoryStore } = await import('./postgres-store.js');
  const client = await how.connect();
  let store: HistoryStore;
  try {
    store = await PostgresHistoryStore.open(client, { perAllocation: how.perAllocation, copyPath: how.copyPath });
  } catch (e) {
    await client.end().catch(() => undefined);
    throw storeError(e);
  }
  try {
    await store.append({ files: [], unnamed: [], folders: [] }, { dir: '', warn: o.warn, note: o.warn, progress: o.progress?.() }).catch((e) => {
      throw storeError(e);
    });
    if (o.strict) refuseProblems(store.catalogue);
    const span = store.catalogue.span();
    if (!span) throw new UsageError('the store holds no snapshots yet: capture with `hourmeter snapshot --store`, or load a folder with `hourmeter store import DIR`');
    let listing: Listing | null = null;
    return {
      get listing() {
        return (listing ??= catalogueListing(store.catalogue, '', []));
      },
      span,
      unnamed: [],
      listed: false,
      view: store.view,
      close: () => store.close(),
    };
  } catch (e) {
    store.close();
    throw e;
  }
}

/** A database's refusal or a schema to migrate, said as the data problem it is (exit 3). */
function storeError(e: unknown): Error {
  if (e instanceof UsageError || e instanceof DataError) return e;
  const code = (e as { code?: string }).code;
  const hint = code === '42501' ? ': the role lacks a privilege the README\'s grants give (see "hourmeter store")' : '';
  return new DataError(`the PostgreSQL store: ${(e as Error).message}${hint}`);
}

export function spanOf(listing: Listing): OpenedHistory['span'] {
  return { firstUs: listing.files[0]!.timeUs, lastUs: listing.files[listing.files.length - 1]!.timeUs };
}

/** The listing the last ingest saw, rebuilt from the catalogue and the folders it recorded. */
function catalogueListing(catalogue: HistoryCatalogue, dir: string, unnamed: readonly string[]): Listing {
  // The catalogue holds only files whose names parsed when they were listed.
  const files = catalogue.files().map((r) => ({ ...r, ...parseSnapshotName(basename(r.name))!, path: join(dir, r.name) }));
  return { files, unnamed: [...unnamed], folders: catalogue.folders() };
}

/** Under --strict, a file or record the store skipped fails the report, as a direct read would. */
function refuseProblems(catalogue: HistoryCatalogue): void {
  const p = catalogue.firstProblem();
  if (!p) return;
  const ledger = new SkipLedger({ strict: true, warn: () => {} });
  if (p.corrupt !== null) ledger.file(p.name, p.corrupt, p.detail ?? '');
  ledger.records(p.name, JSON.parse(p.recordSkips ?? '[]') as { reason: string }[]);
}
