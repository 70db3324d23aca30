import type { Micros } from '../accounting/types.js';
import { Reconstructor, type ReconstructionDiagnostics, type Track } from '../accounting/reconstruct.js';
import { DataError } from '../util/errors.js';
import type { Listing, SnapshotFile } from './files.js';
import { readAll, type PoolOptions } from './pool.js';
import { SnapshotDecoder } from './observe.js';

/**
 * Streams the snapshot files that matter for a time window through the reconstruction.
 * Files are chosen by the time in their name: from the last snapshot at or before the
 * window's start (it tells what was running when the window opened) to the first one at
 * or after its end (it tells how allocations running at the end went on).
 */

export interface SkipCount {
  reason: string;
  count: number;
}

export interface ReadPolicy extends PoolOptions {
  /** Fail on the first corrupt file or bad record instead of skipping it. */
  strict: boolean;
  /** Receives one line per problem (for stderr). */
  warn: (line: string) => void;
}

export interface History {
  tracks: Track[];
  diagnostics: ReconstructionDiagnostics;
  skipped: SkipCount[];
}

export function selectFiles(files: readonly SnapshotFile[], window: { startUs: Micros; endUs: Micros } | null): SnapshotFile[] {
  if (!window || files.length === 0) return [...files];
  let first = 0;
  for (let i = 0; i < files.length; i++) if (files[i]!.timeUs <= window.startUs) first = i;
  let last = files.length - 1;
  for (let i = files.length - 1; i >= 0; i--) if (files[i]!.timeUs >= window.endUs) last = i;
  return files.slice(first, last + 1);
}

/** Counts skips by reason and reports each one, or fails under --strict. */
export class SkipLedger {
  private readonly counts = new Map<string, number>();
  constructor(private readonly policy: ReadPolicy) {}

  file(file: string, reason: string, message: string): void {
    if (this.policy.strict) throw new DataError(`${file}: ${reason} (${message}); fix or move the file, or run without --strict to skip it`);
    this.policy.warn(`skipped ${file}: ${reason} (${message}); use --strict to fail instead`);
    this.bump(reason, 1);
  }

  records(file: string, skips: { reason: string; detail?: string }[]): void {
    if (skips.length === 0) return;
    const first = skips[0]!;
    if (this.policy.strict) throw new DataError(`${file}: ${first.reason}: ${first.detail ?? ''}; fix the file, or run without --strict to skip such records`);
    const more = skips.length > 1 ? ` and ${skips.length - 1} more` : '';
    this.policy.warn(`skipped ${skips.length} record${skips.length > 1 ? 's' : ''} in ${file}: ${first.detail ?? first.reason}${more}; use --strict to fail instead`);
    for (const s of skips) this.bump(s.reason, 1);
  }

  bump(reason: string, n: number): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }

  list(): SkipCount[] {
    return [...this.counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => (a.reason < b.reason ? -1 : 1));
  }
}

export async function loadHistory(listing: Listing, window: { startUs: Micros; endUs: Micros } | null, policy: ReadPolicy): Promise<History> {
  const ledger = new SkipLedger(policy);
  for (const name of listing.unnamed) {
    policy.warn(`ignored ${name}: its name is not a capture time (YYYY-MM-DDTHH:MM:SSZ.json or the AI4OS YYYY-MM-DDTHH:MM:SS.json)`);
    ledger.bump('file name is not a capture time', 1);
  }
  const rec = new Reconstructor();
  const decoder = new SnapshotDecoder();
  for await (const out of readAll('observe', selectFiles(listing.files, window), policy)) {
    if (!out.ok) {
      ledger.file(out.file.name, out.reason, out.message);
      continue;
    }
    const delta = decoder.decode(out.value, out.file.name, out.file.timeUs);
    ledger.records(out.file.name, delta.skips);
    rec.apply(delta);
  }
  return { tracks: rec.tracksWithLifetime(), diagnostics: rec.diagnostics(), skipped: ledger.list() };
}
