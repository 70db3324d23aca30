import { Reconstructor, type Track } from '../accounting/reconstruct.js';
import { clusterOfCovered, countSkips, UNNAMED, type FileSummary } from './catalogue.js';
import type { Listing } from './files.js';
import { readAll } from './read-pool.js';
import { SnapshotDecoder } from './observe.js';
import { JournalMerge, type JournalSequence } from './journal-replay.js';
import { SkipLedger, type ReadPolicy } from './skips.js';

/**
 * The index-free path: streams every snapshot file through the reconstruction, as the
 * index's ingest does, so both give the same lifetimes. Reconstruction merges all of an
 * allocation's observations (docs/accounting.md#reconstruction), so it reads the whole history; a report
 * then takes its diagnostics from the files of its own period (see catalogue.ts).
 */

export interface History {
  tracks: Track[];
  files: FileSummary[];
  /** Where watchers followed the cluster (their journals), in time order. */
  watched: { startUs: number; endUs: number }[];
}

export { UNNAMED };

export async function loadHistory(listing: Listing, policy: ReadPolicy, journals: readonly JournalSequence[] = []): Promise<History> {
  const ledger = new SkipLedger(policy);
  ledger.unnamed(listing.unnamed);
  const rec = new Reconstructor();
  const decoder = new SnapshotDecoder();
  const files: FileSummary[] = [];
  const replay = new JournalMerge(journals, rec, (file, skips) => ledger.records(file, skips));
  for await (const out of readAll('observe', listing.files, policy)) {
    const { name, timeUs } = out.file;
    // Journal lines before the file go first; a watcher's own list waits for its marker.
    replay.file(name, timeUs, (afterLines) => {
      if (!out.ok) {
        ledger.file(name, out.reason, out.message);
        files.push({ name, timeUs, capturedUs: null, corrupt: out.reason, failedScopes: [], recordSkips: [] });
        return false;
      }
      const delta = decoder.decode(out.value, name, timeUs);
      ledger.records(name, delta.skips);
      // After journal lines, the file is compared with everything listed, not with the file before it.
      if (afterLines) rec.applyWhole(delta, decoder.listedKeys());
      else rec.apply(delta);
      files.push({ name, timeUs, capturedUs: delta.timeUs, corrupt: null, failedScopes: delta.failedScopes, recordSkips: countSkips(delta.skips), cluster: clusterOfCovered(delta.covered) });
      return true;
    });
  }
  replay.finish();
  return { tracks: rec.tracksWithLifetime(), files, watched: replay.watched() };
}
