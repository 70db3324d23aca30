import { Reconstructor, type Track } from '../accounting/reconstruct.js';
import { DataError } from '../util/errors.js';
import { countSkips, UNNAMED, type FileSummary } from './catalogue.js';
import type { Listing } from './files.js';
import { readAll, type PoolOptions } from './pool.js';
import { SnapshotDecoder } from './observe.js';

/**
 * The index-free path: streams every snapshot file through the reconstruction, as the
 * index's ingest does, so both give the same lifetimes. Reconstruction merges all of an
 * allocation's observations (design.md rule 3), so it reads the whole history; a report
 * then takes its diagnostics from the files of its own period (see catalogue.ts).
 */

export interface ReadPolicy extends PoolOptions {
  /** Fail on the first corrupt file or bad record instead of skipping it. */
  strict: boolean;
  /** Receives one line per problem (for stderr). */
  warn: (line: string) => void;
}

export interface History {
  tracks: Track[];
  files: FileSummary[];
}

/** One line for the records skipped in a file: the first one's reason, and how many more. */
export function describeRecordSkips(file: string, skips: readonly { reason: string; detail?: string }[]): string {
  const first = skips[0]!;
  const more = skips.length > 1 ? ` and ${skips.length - 1} more` : '';
  return `skipped ${skips.length} record${skips.length > 1 ? 's' : ''} in ${file}: ${first.detail ?? first.reason}${more}`;
}

/** Reports each skipped file or record, or fails under --strict. */
export class SkipLedger {
  constructor(private readonly policy: ReadPolicy) {}

  file(file: string, reason: string, message: string): void {
    if (this.policy.strict) throw new DataError(`${file}: ${reason} (${message}); fix or move the file, or run without --strict to skip it`);
    this.policy.warn(`skipped ${file}: ${reason} (${message}); use --strict to fail instead`);
  }

  records(file: string, skips: { reason: string; detail?: string }[]): void {
    if (skips.length === 0) return;
    const first = skips[0]!;
    if (this.policy.strict) throw new DataError(`${file}: ${first.reason}${first.detail ? `: ${first.detail}` : ''}; fix the file, or run without --strict to skip such records`);
    this.policy.warn(`${describeRecordSkips(file, skips)}; use --strict to fail instead`);
  }

  unnamed(names: readonly string[]): void {
    for (const name of names) {
      this.policy.warn(`ignored ${name}: its name is not a capture time (YYYY-MM-DDTHH:MM:SSZ.json or the AI4OS YYYY-MM-DDTHH:MM:SS.json)`);
    }
  }
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
