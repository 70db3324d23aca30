import { Command, Option } from 'commander';
import type { SingleBar } from 'cli-progress';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { listSnapshots, statFiles, type Listing } from '../snapshots/files.js';
import { loadHistory, SkipLedger } from '../snapshots/history.js';
import { ingest, type IngestProgress, type IngestResult } from '../store/ingest.js';
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
  listing: Listing;
  view: HistoryView;
  close(): void;
}

/** Lists the folder, then ingests new files into the index (or reads them all) for a report. */
export async function openHistory(s: Settings, io: CliIO, dir: string): Promise<OpenedHistory> {
  const strict = s.flag('strict');
  const useIndex = s.has('index') ? s.flag('index') : true;
  // The index stats only the files it needs to (see ingest.ts); a full read wants sizes for all.
  const listing = await listSnapshots(dir, '--snapshots', { stat: !useIndex });
  if (listing.files.length === 0) {
    throw new UsageError(`--snapshots ${dir} holds no snapshot files (*.json named by capture time); run \`hourmeter snapshot\` first or point --snapshots elsewhere`);
  }
  const policy = { strict, warn: io.warn };
  const readFiles = async (): Promise<OpenedHistory> => {
    statFiles(listing.files);
    return { listing, view: filesView(await loadHistory(listing, policy)), close: () => {} };
  };
  if (!useIndex) return readFiles();
  let db: Db;
  try {
    db = openIndex(indexPath(s, dir));
  } catch (e) {
    // A read-only snapshot folder (say, a shared copy) still answers, only slower.
    if (!(e instanceof UsageError) || s.has('db')) throw e;
    io.warn(`${e.message.split(';')[0]}; reading the files directly (slower). Use --db to keep an index elsewhere`);
    return readFiles();
  }
  new SkipLedger(policy).unnamed(listing.unnamed);
  try {
    await updateIndex(db, listing, io);
    if (strict) refuseProblems(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return { listing, view: indexView(db), close: () => db.close() };
}

/** Ingests what is new, with a progress bar on a terminal. */
export async function updateIndex(db: Db, listing: Listing, io: CliIO, opts: { rebuild?: boolean } = {}): Promise<IngestResult> {
  const bar = progressBar();
  try {
    return await ingest(db, listing.files, { rebuild: opts.rebuild, folders: listing.folders, warn: io.warn, note: io.warn, progress: bar?.update });
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

/** A bar on stderr during long ingests, only when stderr is a terminal; null otherwise. */
function progressBar(): { update: (p: IngestProgress) => void; stop: () => void } | null {
  if (!process.stderr.isTTY) return null;
  let bar: SingleBar | null = null;
  let skip = false;
  const startedAt = Date.now();
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
        bar.start(p.totalFiles, 0, { mb: 0, rate: 0 });
      }
      const seconds = (Date.now() - startedAt) / 1000;
      bar.update(p.files, { mb: Math.round(p.bytes / 1e6), rate: seconds > 0 ? Math.round(p.bytes / 1e6 / seconds) : 0 });
    },
    stop: () => bar?.stop(),
  };
}
