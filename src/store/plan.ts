import type { SnapshotFile } from '../snapshots/files.js';

/**
 * What an ingest must do, from the folder's listing and the catalogue. Pure.
 *
 * Reconstruction is a fold over the snapshots in time order, so a file can be appended
 * only after every file already ingested. A file that appears earlier than the last one
 * ingested, changed, or disappeared alters the fold from its time on: the index is then
 * rebuilt from the files.
 */

export interface CatalogueEntry {
  name: string;
  timeUs: number;
  bytes: number;
  mtimeMs: number;
  sha256: string | null;
  /** Why it could not be read, if so. */
  corrupt?: string | null;
  /** The error met reading it, if so. */
  detail?: string | null;
}

export interface IngestPlan {
  /** Files not in the catalogue that sort after everything in it: appended in order. */
  fresh: SnapshotFile[];
  /** Catalogued files whose size differs: changed for sure. */
  changed: string[];
  /** Catalogued files with the same size but another mtime: changed only if the checksum differs. */
  touched: { file: SnapshotFile; entry: CatalogueEntry }[];
  /** Catalogued files no longer in the folder. */
  removed: string[];
  /** New files that sort before the last catalogued one. */
  early: string[];
  /** Catalogued files that could not be opened and can be now (filled in by the ingest, which tries). */
  readable: string[];
}

/** Listing order: capture time, then name. */
export function compareFiles(a: { timeUs: number; name: string }, b: { timeUs: number; name: string }): number {
  return a.timeUs - b.timeUs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function planIngest(files: readonly SnapshotFile[], catalogue: ReadonlyMap<string, CatalogueEntry>): IngestPlan {
  let last: CatalogueEntry | null = null;
  for (const e of catalogue.values()) if (last === null || compareFiles(e, last) > 0) last = e;
  const plan: IngestPlan = { fresh: [], changed: [], touched: [], removed: [], early: [], readable: [] };
  const seen = new Set<string>();
  for (const f of files) {
    seen.add(f.name);
    const entry = catalogue.get(f.name);
    if (!entry) {
      if (last !== null && compareFiles(f, last) < 0) plan.early.push(f.name);
      else plan.fresh.push(f);
    } else if (entry.bytes !== (f.bytes ?? -1)) {
      plan.changed.push(f.name);
    } else if (entry.mtimeMs !== (f.mtimeMs ?? -1)) {
      plan.touched.push({ file: f, entry });
    }
  }
  for (const name of catalogue.keys()) if (!seen.has(name)) plan.removed.push(name);
  return plan;
}

/** Why the fold must start over, in words for the operator; null when appending is enough. */
export function rebuildReason(plan: Pick<IngestPlan, 'changed' | 'removed' | 'early'> & Partial<Pick<IngestPlan, 'readable'>>): string | null {
  const parts: string[] = [];
  const say = (names: string[], what: string) => {
    if (names.length === 0) return;
    parts.push(`${names.length} ${names.length === 1 ? 'file' : 'files'} ${what} (${names[0]}${names.length > 1 ? ', …' : ''})`);
  };
  say(plan.changed, 'changed');
  say(plan.removed, 'removed');
  say(plan.early, 'added before the last ingested snapshot');
  say(plan.readable ?? [], 'readable again');
  return parts.length ? parts.join(', ') : null;
}
