import type { Listing } from '../snapshots/files.js';
import { catalogueFiles, catalogueFolders, catalogueSpan, failedFiles, lastIngestedMark, latestReadableFile, readableFiles } from '../store/catalogue.js';
import { unchangedSinceIngest } from '../store/freshness.js';
import { openIndex, type Db, type OpenOptions } from '../store/schema.js';
import type { IndexStatus, Verification } from '../store/status.js';
import { holdingByNamespace } from '../store/tracks.js';
import { firstProblem, indexView, type HistoryView } from '../store/view.js';
import type { AppendOptions, AppendResult, HistoryCatalogue, HistoryStore } from './store.js';

export type { IndexStatus, Verification };

/**
 * The embedded history store: the SQLite index, one file (by default beside the snapshots,
 * see open.ts). Besides the HistoryStore it answers `hourmeter index status` and `verify`,
 * which look at this file itself.
 */
export class SqliteHistoryStore implements HistoryStore {
  private viewOnce: HistoryView | null = null;
  readonly catalogue: HistoryCatalogue;

  constructor(
    private readonly db: Db,
    readonly path: string,
    /** Keep segments decoded between reports (a long-lived reader; see SegmentCache). */
    private readonly keepSegments = false,
  ) {
    this.catalogue = {
      span: () => catalogueSpan(db),
      files: () => catalogueFiles(db),
      folders: () => catalogueFolders(db),
      unchangedSince: (dir) => unchangedSinceIngest(db, dir),
      firstProblem: () => firstProblem(db),
      readable: () => readableFiles(db),
      latest: () => latestReadableFile(db),
      failures: () => failedFiles(db),
      mark: () => lastIngestedMark(db),
    };
  }

  get view(): HistoryView {
    return (this.viewOnce ??= indexView(this.db, { keepSegments: this.keepSegments }));
  }

  async append(listing: Listing, o: AppendOptions): Promise<AppendResult> {
    // Loaded here: a report from an index that is up to date needs none of the readers.
    const { ingest } = await import('../store/ingest.js');
    try {
      return await ingest(this.db, listing.files, {
        rebuild: o.rebuild,
        folders: listing.folders,
        unnamed: listing.unnamed,
        dir: o.dir,
        warn: o.warn,
        note: o.note,
        progress: o.progress ? (p) => o.progress!.update(p) : undefined,
      });
    } finally {
      o.progress?.done();
      // PRAGMA data_version does not move for this connection's own writes: segments kept
      // decoded (see SegmentCache) are dropped with the view.
      if (this.keepSegments) this.viewOnce = null;
    }
  }

  holdingByNamespace() {
    return holdingByNamespace(this.db);
  }

  /** What `index status` prints: the catalogue, the file's size, what the next append would do. */
  // Loaded when asked: status plans an ingest, and the ingest's modules would slow every report's start.
  async status(listing: Listing): Promise<IndexStatus> {
    const { indexStatus } = await import('../store/status.js');
    return indexStatus(this.db, this.path, listing);
  }

  /** Reads every catalogued file again and compares checksums (see verifyIndex). */
  async verify(dir: string, listing: Listing): Promise<Verification> {
    const { verifyIndex } = await import('../store/status.js');
    return verifyIndex(this.db, dir, listing);
  }

  close(): void {
    this.db.close();
  }
}

/** Opens (or creates, by default) the index at `path`, migrated to the current schema. */
export function openIndexStore(path: string, opts: OpenOptions & { keepSegments?: boolean } = { create: true }): SqliteHistoryStore {
  return new SqliteHistoryStore(openIndex(path, opts), path, opts.keepSegments);
}
