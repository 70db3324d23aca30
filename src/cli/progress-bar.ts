import type { SingleBar } from 'cli-progress';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import type { ProgressSink } from '../history/store.js';

/** An ingest this large draws a progress bar; a cron's few new files do not. */
const LONG_INGEST = { files: 100, bytes: 256e6 };

/** The signals that end a run early: Ctrl-C, and a polite kill. */
const INTERRUPTS = ['SIGINT', 'SIGTERM'] as const;

/** A bar on stderr during long ingests, only when stderr is a terminal; null otherwise. */
export function progressBar(what = 'ingesting snapshots'): ProgressSink | null {
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
          format: `${what} [{bar}] {value}/{total} files, {mb} MB, {rate} MB/s, eta {eta_formatted}`,
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
    done: () => {
      for (const signal of INTERRUPTS) process.removeListener(signal, interrupted);
      bar?.stop();
    },
  };
}
