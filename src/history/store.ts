import type { Listing } from '../snapshots/files.js';
import type { CatalogueRow, CatalogueSpan, LatestFile, ReadableFiles } from '../store/catalogue.js';
import type { IngestProgress, IngestResult } from '../store/ingest.js';
import type { NamespaceHolding } from '../store/tracks.js';
import type { HistoryView } from '../store/view.js';

/**
 * The history of snapshots, as a store keeps it: the seam between everything that reads or
 * extends the history (reports, quota, the API, `hourmeter index`) and where it is kept.
 *
 * SQLite, one file beside the snapshots, is the embedded default (sqlite.ts). A second store,
 * such as a PostgreSQL database shared by several machines, plugs in by implementing this
 * interface over its own tables, its SQL kept in store/ as SQLite's is; callers do not change.
 * Whatever the store, it is a cache of the snapshot files: it must answer exactly what a full
 * read of them does (snapshots/full-read.ts), as test/unit/store.test.ts checks of SQLite.
 */
export interface HistoryStore {
  /**
   * Takes in what the captures in the listing saw and the store has not: new files are read
   * in time order and folded into the saved lifetimes; a file that changed, disappeared or
   * arrived before the last one makes the store start over from the files.
   */
  append(listing: Listing, options: AppendOptions): Promise<AppendResult>;
  /** The tracks and file summaries for a span (HistoryView.read), and what else reports read. */
  readonly view: HistoryView;
  /** The catalogue: which snapshot files the store has taken in, and what it found in them. */
  readonly catalogue: HistoryCatalogue;
  /** What the allocations listed in the latest snapshot hold, per namespace. */
  holdingByNamespace(): NamespaceHolding[];
  /**
   * A store that holds the captures itself: a folder with the watchers' journals as files,
   * kept up to date (the snapshot folder serves for one that does not).
   */
  journalFolder?(): Promise<string>;
  close(): void;
}

export type AppendProgress = IngestProgress;
export type AppendResult = IngestResult;

/**
 * Where an append reports how far it got; the terminal's progress bar is one (in cli/), a
 * server's log could be another. Told `done` once the append ends, however it ends.
 */
export interface ProgressSink {
  update(p: AppendProgress): void;
  done(): void;
}

export interface AppendOptions {
  /** The snapshot folder: its watchers' journals (journal/) are taken in with the files. */
  dir: string;
  /** Read every file again, whatever the catalogue says. */
  rebuild?: boolean;
  /** Receives one line per problem found in a newly read file. */
  warn: (line: string) => void;
  /** Receives a line when this process must wait for another one's append. */
  note?: (line: string) => void;
  progress?: ProgressSink | null;
}

/** The first file or record that --strict refuses, as the store recorded it. */
export interface StoredProblem {
  name: string;
  corrupt: string | null;
  detail: string | null;
  /** JSON of the skipped records' counts (SkipCount[]), or null. */
  recordSkips: string | null;
}

export interface HistoryCatalogue {
  /** The file times of the first and the last file taken in; null when there is none. */
  span(): CatalogueSpan | null;
  /** Every file taken in, in listing order (time, then name). */
  files(): CatalogueRow[];
  /** The folders the last append listed, with their mtimes then. */
  folders(): Listing['folders'];
  /**
   * The files without a capture time, when no folder the last append listed has changed
   * since (so a report may skip listing the folder); null when it must be listed.
   */
  unchangedSince(dir: string): Promise<string[] | null>;
  firstProblem(): StoredProblem | undefined;
  readable(): ReadableFiles;
  /** The last readable file; null when none is. */
  latest(): LatestFile | null;
  /** How many files recorded a failed scope or could not be read. */
  failures(): number;
  /** A mark that changes whenever an append takes in a file: what answers may be cached by. */
  mark(): string | undefined;
}

export type { HistoryView, Window, WindowData } from '../store/view.js';
export type { CatalogueRow, CatalogueSpan, LatestFile, NamespaceHolding, ReadableFiles };
