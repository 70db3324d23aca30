import { Command, Option } from 'commander';
import type { SingleBar } from 'cli-progress';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { checkFolder, listSnapshots, parseSnapshotName, statFiles, type Listing } from '../snapshots/files.js';
import { SkipLedger } from '../snapshots/skips.js';
import { unchangedSinceIngest } from '../store/freshness.js';
import type { IngestProgress, IngestResult } from '../store/ingest.js';
import { openIndex, type Db } from '../store/schema.js';
import { filesView, firstProblem, indexView, type HistoryView } from '../store/view.js';
import { UsageError } from '../util/errors.js';
import type { CliIO } from './io.js';
import type { Settings } from './options.js';

/**
 * Where reports get their history: the index beside the snapshots, brought up to date
 * first (the default), or a full read of the files with `--no-index`. Both give the same
 * numbers; the index answers in milliseconds once built.
 */

export function addDbOption(cmd: Command): Command {
  return cmd.addOption(new Option('--db <file>', 'the index (default: <snapshots>/.hourmeter/index.sqlite)').env('HOURMETER_DB'));
}

export function addIndexOptions(cmd: Command): Command {
  return addDbOption(cmd).addOption(new Option('--no-index', 'read the snapshot files directly instead of the index (slower; same numbers)'));
}

export function indexPath(s: Settings, dir: string): string {
  return s.string('db') ?? join(dir, '.hourmeter', 'index.sqlite');
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

/** Lists the folder, then ingests new files into the index (or reads them all) for a report. */
export async function openHistory(s: Settings, io: CliIO, dir: string): Promise<OpenedHistory> {
  const strict = s.flag('strict');
  const useIndex = s.has('index') ? s.flag('index') : true;
  const policy = { strict, warn: io.warn };
  // The index stats only the files it needs to (see ingest.ts); a full read wants sizes for all.
  const list = () => listFiles(dir, { stat: !useIndex, warn: io.warn });
  const readFiles = async (listing: Listing): Promise<OpenedHistory> => {
    statFiles(listing.files);
    // Loaded here: a report from an index that is up to date needs none of the readers.
    const { loadHistory } = await import('../snapshots/full-read.js');
    return { listing, span: spanOf(listing), unnamed: listing.unnamed, listed: true, view: filesView(await loadHistory(listing, policy)), close: () => {} };
  };
  if (!useIndex) return readFiles(await list());
  // Before the index, which would otherwise create the folder it lives in.
  await checkFolder(dir);
  let db: Db;
  try {
    db = openIndex(indexPath(s, dir));
  } catch (e) {
    // A read-only snapshot folder (say, a shared copy) still answers, only slower.
    if (!(e instanceof UsageError) || s.has('db')) throw e;
    io.warn(`${e.message.split(';')[0]}; reading the files directly (slower). Use --db to keep an index elsewhere`);
    return readFiles(await list());
  }
  try {
    // No folder moved since the last ingest: the catalogue stands for the listing.
    const remembered = await unchangedSinceIngest(db, dir);
    let listing = remembered === null ? await list() : null;
    const unnamed = listing?.unnamed ?? remembered ?? [];
    new SkipLedger(policy).unnamed(unnamed);
    if (listing) await updateIndex(db, listing, io);
    if (strict) refuseProblems(db);
    const span = listing ? spanOf(listing) : catalogueSpan(db);
    if (!span) throw noFiles(dir);
    return {
      get listing() {
        return (listing ??= catalogueListing(db, dir, unnamed));
      },
      span,
      unnamed,
      listed: remembered === null,
      view: indexView(db),
      close: () => db.close(),
    };
  } catch (e) {
    db.close();
    throw e;
  }
}

export function spanOf(listing: Listing): OpenedHistory['span'] {
  return { firstUs: listing.files[0]!.timeUs, lastUs: listing.files[listing.files.length - 1]!.timeUs };
}

function catalogueSpan(db: Db): OpenedHistory['span'] | null {
  const r = db.prepare('SELECT min(time_us) AS firstUs, max(time_us) AS lastUs FROM snapshots').get() as { firstUs: number | null; lastUs: number | null };
  return r.firstUs === null || r.lastUs === null ? null : { firstUs: r.firstUs, lastUs: r.lastUs };
}

/** The listing the last ingest saw, rebuilt from the catalogue and the folders it recorded. */
function catalogueListing(db: Db, dir: string, unnamed: readonly string[]): Listing {
  const rows = db.prepare('SELECT name, time_us AS timeUs, bytes, mtime_ms AS mtimeMs FROM snapshots ORDER BY time_us, name').all() as {
    name: string;
    timeUs: number;
    bytes: number;
    mtimeMs: number;
  }[];
  // The catalogue holds only files whose names parsed when they were listed.
  const files = rows.map((r) => ({ ...r, ...parseSnapshotName(basename(r.name))!, path: join(dir, r.name) }));
  const folders = db.prepare('SELECT name, mtime_ms AS mtimeMs FROM folders').all() as Listing['folders'];
  return { files, unnamed: [...unnamed], folders };
}

/** Ingests what is new, with a progress bar on a terminal. */
export async function updateIndex(db: Db, listing: Listing, io: CliIO, opts: { rebuild?: boolean } = {}): Promise<IngestResult> {
  const { ingest } = await import('../store/ingest.js');
  const bar = progressBar();
  try {
    return await ingest(db, listing.files, { rebuild: opts.rebuild, folders: listing.folders, unnamed: listing.unnamed, warn: io.warn, note: io.warn, progress: bar?.update });
  } finally {
    bar?.stop();
  }
}

/** Under --strict, a file or record the index skipped fails the report, as a direct read would. */
function refuseProblems(db: Db): void {
  const p = firstProblem(db);
  if (!p) return;
  const ledger = new SkipLedger({ strict: true, warn: () => {} });
  if (p.corrupt !== null) ledger.file(p.name, p.corrupt, p.detail ?? '');
  ledger.records(p.name, JSON.parse(p.recordSkips ?? '[]') as { reason: string }[]);
}

/** An ingest this large draws a progress bar; a cron's few new files do not. */
const LONG_INGEST = { files: 100, bytes: 256e6 };

/** The signals that end a run early: Ctrl-C, and a polite kill. */
const INTERRUPTS = ['SIGINT', 'SIGTERM'] as const;

/** A bar on stderr during long ingests, only when stderr is a terminal; null otherwise. */
function progressBar(): { update: (p: IngestProgress) => void; stop: () => void } | null {
  if (!process.stderr.isTTY) return null;
  let bar: SingleBar | null = null;
  let skip = false;
  const startedAt = Date.now();
  // The bar hides the cursor and turns line wrap off: an interrupted run puts both back
  // before it exits, as the shell expects (128 + the signal: 130 for Ctrl-C). Nothing is
  // lost: the ingest is one SQLite transaction, so the index stays as the last complete
  // ingest left it and the next run reads these files again.
  const interrupted = (signal: NodeJS.Signals) => {
    bar?.stop();
    process.exit(128 + constants.signals[signal]);
  };
  return {
    update: (p) => {
      if (skip) return;
      if (!bar) {
        if (p.totalFiles < LONG_INGEST.files && p.totalBytes < LONG_INGEST.bytes) {
          skip = true;
          return;
        }
        // Loaded only for a bar actually drawn, so that short reports start faster.
        const { SingleBar: Bar } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
        bar = new Bar({
          stream: process.stderr,
          format: 'ingesting snapshots [{bar}] {value}/{total} files, {mb} MB, {rate} MB/s, eta {eta_formatted}',
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        });
        for (const signal of INTERRUPTS) process.once(signal, interrupted);
        bar.start(p.totalFiles, 0, { mb: 0, rate: 0 });
      }
      const seconds = (Date.now() - startedAt) / 1000;
      bar.update(p.files, { mb: Math.round(p.bytes / 1e6), rate: seconds > 0 ? Math.round(p.bytes / 1e6 / seconds) : 0 });
    },
    stop: () => {
      for (const signal of INTERRUPTS) process.removeListener(signal, interrupted);
      bar?.stop();
    },
  };
}
