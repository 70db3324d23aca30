import { clusterOf } from '../accounting/clusters.js';
import { CADENCE_NEIGHBOURS } from '../accounting/coverage.js';
import type { Micros } from '../accounting/types.js';

/**
 * What a report says about the snapshots behind it, computed from one summary per file.
 * The index keeps these summaries in its catalogue and the index-free path makes them while
 * it reads, so both paths report the same diagnostics for the same period. Pure.
 */

/** A scope that failed in some snapshots of a report's window. */
export interface FailedScope {
  namespace: string;
  reason: string;
  snapshots: number;
  lastFile: string;
}

/** What a report says about the snapshots it read. */
export interface SnapshotDiagnostics {
  snapshots: number;
  firstUs: Micros | null;
  lastUs: Micros | null;
  largestGapUs: Micros;
  failedScopes: FailedScope[];
}

export const UNNAMED = 'file name is not a capture time';

export interface SkipCount {
  reason: string;
  count: number;
}

export interface FileSummary {
  /** Path relative to the snapshot folder. */
  name: string;
  /** Capture time from the file name. */
  timeUs: Micros;
  /** Capture time the file itself gives (native `captured_at`); the name's for legacy files. */
  capturedUs: Micros | null;
  /** Null when the file was read; otherwise why it was skipped. */
  corrupt: string | null;
  failedScopes: { namespace: string; reason: string }[];
  /** Records skipped in this file, by reason. */
  recordSkips: SkipCount[];
  /** The cluster its covered namespaces belong to ('' : unnamed); null when it covered none (see clusterOfCovered). */
  cluster?: string | null;
}

/** The cluster a snapshot sampled, from the namespaces it covered (all of one cluster); null when it covered none. */
export function clusterOfCovered(covered: Iterable<string>): string | null {
  for (const n of covered) return clusterOf(n);
  return null;
}

/**
 * The files that matter for a time window, chosen by the time in their name: from the last
 * snapshot at or before the window's start (what was running when it opened) to the first
 * one at or after its end (how allocations running at the end went on).
 */
export function selectFiles<F extends { timeUs: Micros }>(files: readonly F[], window: { startUs: Micros; endUs: Micros } | null): F[] {
  const { first, last } = windowRange(files, window);
  return files.slice(first, last + 1);
}

/** The indexes of selectFiles' first and last file. */
function windowRange(files: readonly { timeUs: Micros }[], window: { startUs: Micros; endUs: Micros } | null): { first: number; last: number } {
  if (!window || files.length === 0) return { first: 0, last: files.length - 1 };
  let first = 0;
  for (let i = 0; i < files.length; i++) if (files[i]!.timeUs <= window.startUs) first = i;
  let last = files.length - 1;
  for (let i = files.length - 1; i >= 0; i--) if (files[i]!.timeUs >= window.endUs) last = i;
  return { first, last };
}

/**
 * The files of a report's window, as its diagnostics need them: the capture times of the
 * files read, and the few files with something to say. The index reads these from two
 * narrow queries instead of a summary per file.
 */
export interface WindowFiles {
  /** The capture time (the file's own, else its name's) of each file read, in file order. */
  capturedUs: Micros[];
  /** The files that are corrupt, or had failed scopes or skipped records, in file order. */
  problems: FileSummary[];
  /**
   * Capture times of up to CADENCE_NEIGHBOURS readable files on either side of the window's
   * files: with them, the default max gap of coverage measures the usual interval even
   * when the window lies in a long gap.
   */
  nearbyUs: Micros[];
  /** Where watchers followed the cluster (journals), when the history has any, with the cluster each followed. */
  watched?: { startUs: Micros; endUs: Micros; cluster?: string }[];
  /** The cluster of each of capturedUs and nearbyUs (see FileSummary.cluster), when known: coverage is then per cluster. */
  clusters?: (string | null)[];
  nearbyClusters?: (string | null)[];
}

function hasProblem(f: FileSummary): boolean {
  return f.corrupt !== null || f.failedScopes.length > 0 || f.recordSkips.length > 0;
}

/** The window's files (see selectFiles) in the form diagnostics read. */
export function windowFiles(all: readonly FileSummary[], window: { startUs: Micros; endUs: Micros } | null): WindowFiles {
  const { first, last } = windowRange(all, window);
  const files = all.slice(first, last + 1);
  const read = (fs: readonly FileSummary[]) => fs.filter((f) => f.corrupt === null);
  const before = read(all.slice(0, first)).slice(-CADENCE_NEIGHBOURS);
  const after = read(all.slice(last + 1)).slice(0, CADENCE_NEIGHBOURS);
  const inWindow = read(files);
  const timeOf = (f: FileSummary) => f.capturedUs ?? f.timeUs;
  const clusterOfFile = (f: FileSummary) => f.cluster ?? null;
  return {
    capturedUs: inWindow.map(timeOf),
    problems: files.filter(hasProblem),
    nearbyUs: [...before, ...after].map(timeOf),
    clusters: inWindow.map(clusterOfFile),
    nearbyClusters: [...before, ...after].map(clusterOfFile),
  };
}

/** How many files a window holds, corrupt ones included. */
export function fileCount(files: WindowFiles): number {
  return files.capturedUs.length + files.problems.filter((f) => f.corrupt !== null).length;
}

/** Snapshots read, their span and largest gap, failed scopes and skips, over a window's files. */
export function windowDiagnostics(
  files: WindowFiles,
  /** JSON files whose name is not a capture time, listed but never read. */
  unnamed = 0,
): { diagnostics: SnapshotDiagnostics; skipped: SkipCount[] } {
  const skips = new Map<string, number>();
  const bump = (reason: string, n: number) => skips.set(reason, (skips.get(reason) ?? 0) + n);
  if (unnamed > 0) bump(UNNAMED, unnamed);
  const captured = files.capturedUs;
  let largestGapUs = 0;
  for (let i = 1; i < captured.length; i++) largestGapUs = Math.max(largestGapUs, captured[i]! - captured[i - 1]!);
  const failed = new Map<string, FailedScope>();
  for (const f of files.problems) {
    if (f.corrupt !== null) {
      bump(f.corrupt, 1);
      continue;
    }
    for (const s of f.recordSkips) bump(s.reason, s.count);
    for (const s of f.failedScopes) {
      const id = `${s.namespace}\u0000${s.reason}`;
      const entry = failed.get(id);
      if (entry) {
        entry.snapshots++;
        entry.lastFile = f.name;
      } else {
        failed.set(id, { namespace: s.namespace, reason: s.reason, snapshots: 1, lastFile: f.name });
      }
    }
  }
  const diagnostics = {
    snapshots: captured.length,
    firstUs: captured[0] ?? null,
    lastUs: captured[captured.length - 1] ?? null,
    largestGapUs,
    failedScopes: [...failed.values()],
  };
  return { diagnostics, skipped: sortSkips(skips) };
}

export function sortSkips(counts: Map<string, number>): SkipCount[] {
  return [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => (a.reason < b.reason ? -1 : 1));
}

/** Records skipped in one decoded file, counted by reason. */
export function countSkips(skips: readonly { reason: string }[]): SkipCount[] {
  const m = new Map<string, number>();
  for (const s of skips) m.set(s.reason, (m.get(s.reason) ?? 0) + 1);
  return sortSkips(m);
}
