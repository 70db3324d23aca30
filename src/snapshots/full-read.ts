import { Reconstructor, type Track } from '../accounting/reconstruct.js';
import { countSkips, UNNAMED, type FileSummary } from './catalogue.js';
import type { Listing } from './files.js';
import { readAll } from './read-pool.js';
import { SnapshotDecoder } from './observe.js';
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
}

export { UNNAMED };

export async function loadHistory(listing: Listing, policy: ReadPolicy): Promise<History> {
  const ledger = new SkipLedger(policy);
  ledger.unnamed(listing.unnamed);
  const rec = new Reconstructor();
  const decoder = new SnapshotDecoder();
  const files: FileSummary[] = [];
  for await (const out of readAll('observe', listing.files, policy)) {
    const { name, timeUs } = out.file;
    if (!out.ok) {
      ledger.file(name, out.reason, out.message);
      files.push({ name, timeUs, capturedUs: null, corrupt: out.reason, failedScopes: [], recordSkips: [] });
      continue;
    }
    const delta = decoder.decode(out.value, name, timeUs);
    ledger.records(name, delta.skips);
    rec.apply(delta);
    files.push({ name, timeUs, capturedUs: delta.timeUs, corrupt: null, failedScopes: delta.failedScopes, recordSkips: countSkips(delta.skips) });
  }
  return { tracks: rec.tracksWithLifetime(), files };
}
