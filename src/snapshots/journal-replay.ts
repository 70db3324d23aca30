import type { Reconstructor } from '../accounting/reconstruct.js';
import type { Micros, SnapshotDelta, Skip } from '../accounting/types.js';
import type { NativeAllocation } from './format.js';
import { readJournals, type JournalEntry, type JournalLine, type JournalProblem } from './journal.js';
import { observeNativeTuple } from './observe.js';

/**
 * A watcher's journal as the reconstruction reads it (docs/accounting.md#watched-history):
 * each allocation line is a listing that changes one allocation, and each line of a
 * connected watcher says every allocation listed as holding still held then. A resync marker
 * stands for its snapshot file, applied at the marker's place; a disconnection claims
 * nothing, so allocations gone by the next list end in the band from the watcher's last line
 * to that list. JournalReplay is pure: lines in, deltas out.
 */

/** One source's journal lines in order, each with the time it is applied at. */
export interface JournalSequence {
  source: string;
  entries: JournalEntry[];
  /**
   * Where each line falls among the other inputs: its time, never before the line before it
   * (payload times of consecutive events may step back a little; the order of the stream is
   * the order that holds).
   */
  keys: Micros[];
  /** Line index of each resync marker, by the snapshot file it names. */
  markers: Map<string, number>;
}

export function journalSequence(source: string, entries: JournalEntry[]): JournalSequence {
  const keys: Micros[] = [];
  const markers = new Map<string, number>();
  let last = -Infinity;
  entries.forEach((e, i) => {
    last = Math.max(last, e.atUs);
    keys.push(last);
    if (e.line.type === 'resynchronised') markers.set(e.line.snapshot, i);
  });
  return { source, entries, keys, markers };
}

/**
 * Every source's journal in the snapshot folder, as sequences, up to `untilUs`; problems
 * (bad lines, unknown versions) go to `report`.
 */
export function readJournalSequences(folder: string, report: (p: JournalProblem) => void, untilUs = Infinity): JournalSequence[] {
  const bySource = new Map<string, JournalEntry[]>();
  for (const read of readJournals(folder)) {
    for (const p of read.problems) report(p);
    const entries = bySource.get(read.sourceId) ?? [];
    for (const e of read.entries) if (e.line.type !== 'journal' && e.atUs <= untilUs) entries.push(e);
    bySource.set(read.sourceId, entries);
  }
  return [...bySource].map(([source, entries]) => journalSequence(source, entries));
}

/** A native record as a snapshot tuple (extract.ts NATIVE_FIELDS, then the resources). */
function tuple(a: NativeAllocation): unknown[] {
  const r = a.resources;
  return [a.id, a.namespace, a.job_id, a.job_name, a.user, a.group, a.component, a.node, a.status, a.start, a.end, a.modified, r.cpu_cores, r.cpu_mhz, r.memory_mib, r.disk_mib, r.gpu];
}

/** Turns one source's journal lines into deltas, keeping which namespaces it watches. */
export class JournalReplay {
  /** The namespaces the last resync listed, until the next disconnection; empty between. */
  private watched: ReadonlySet<string> = new Set();

  constructor(
    private readonly idKind: string,
    private readonly file: (entry: JournalEntry) => string,
  ) {}

  /** Whether the watcher is connected and complete (between a resync and a disconnection). */
  get connected(): boolean {
    return this.watched.size > 0;
  }

  /** The resync's list was applied: the journal is complete for its namespaces from here. */
  listed(namespaces: readonly string[]): void {
    this.watched = new Set(namespaces);
  }

  /**
   * The delta of a line applied at `timeUs` (its key), or null for a line that changes
   * nothing by itself: markers (a resync's snapshot is applied by the caller, who then
   * calls `listed`).
   */
  delta(entry: JournalEntry, timeUs: Micros): SnapshotDelta | null {
    const line: JournalLine = entry.line;
    const base = { file: this.file(entry), timeUs, failedScopes: [], queued: [], kind: 'native' as const, gone: [] };
    switch (line.type) {
      case 'resynchronised':
        // Complete only once its list is applied (see listed): a marker whose snapshot is
        // missing or unreadable claims nothing.
        this.watched = new Set();
        return null;
      case 'disconnected':
        this.watched = new Set();
        return null;
      case 'alive':
        return this.watched.size > 0 ? { ...base, covered: this.watched, changed: [], skips: [] } : null;
      case 'allocation': {
        const out = observeNativeTuple(tuple(line.allocation), this.idKind);
        const skips: Skip[] = 'skip' in out ? [{ reason: out.skip, file: base.file, detail: out.detail }] : [];
        return { ...base, covered: this.watched, changed: 'obs' in out ? [out.obs] : [], skips };
      }
      default:
        return null;
    }
  }
}

/** Where a watcher's list falls in its journal: the sequence and the marker's line. */
export interface Marker {
  seq: number;
  line: number;
  key: number;
}

/**
 * Journal lines interleaved with the snapshot files by time (docs/accounting.md#watched-history):
 * each source's lines in their own order, a resync marker's snapshot at the marker.
 */
export class JournalMerge {
  private readonly next: number[];
  private readonly replays: JournalReplay[];
  /** Whether journal lines changed the listing since the last file. */
  appliedSinceFile = false;
  /** Where each source was followed: from a resync's list to its last line before a disconnection. */
  private readonly stretches: { startUs: number; endUs: number }[][];

  constructor(
    private readonly journals: readonly JournalSequence[],
    private readonly rec: Pick<Reconstructor, 'apply'>,
    private readonly skipped: (file: string, skips: Skip[]) => void,
  ) {
    this.next = journals.map(() => 0);
    this.stretches = journals.map(() => []);
    this.replays = journals.map((j) => new JournalReplay('nomad', (e) => `${j.source} line ${e.lineNumber}`));
  }

  markerOf(file: string): Marker | null {
    for (let seq = 0; seq < this.journals.length; seq++) {
      const line = this.journals[seq]!.markers.get(file);
      if (line !== undefined && line >= this.next[seq]!) return { seq, line, key: this.journals[seq]!.keys[line]! };
    }
    return null;
  }

  /** Applies every line before `key` (and, for the sequence of `stop`, only those before its marker). */
  applyUntil(key: number, stop: Marker | null): void {
    this.journals.forEach((j, seq) => {
      const end = stop?.seq === seq ? stop.line : j.entries.length;
      while (this.next[seq]! < end && (stop?.seq === seq || j.keys[this.next[seq]!]! < key)) this.applyLine(seq);
    });
  }

  /** Goes past a marker whose snapshot was just applied (`listed`), or could not be read. */
  pass(marker: Marker, listed: boolean): void {
    const line = this.journals[marker.seq]!.entries[marker.line]!.line;
    this.applyLine(marker.seq);
    if (listed && line.type === 'resynchronised') {
      this.replays[marker.seq]!.listed(line.namespaces);
      this.stretches[marker.seq]!.push({ startUs: marker.key, endUs: marker.key });
    }
  }

  /** Where watchers followed the cluster, in time order (see Coverage in docs/accounting.md). */
  watched(): { startUs: number; endUs: number }[] {
    return this.stretches.flat().filter((w) => w.endUs > w.startUs).sort((a, b) => a.startUs - b.startUs);
  }

  fileApplied(): void {
    this.appliedSinceFile = false;
  }

  private applyLine(seq: number): void {
    const j = this.journals[seq]!;
    const i = this.next[seq]!++;
    const replay = this.replays[seq]!;
    const connected = replay.connected;
    const d = replay.delta(j.entries[i]!, j.keys[i]!);
    // A connected watcher's stretch reaches its latest line; a disconnection ends it.
    const open = this.stretches[seq]!.at(-1);
    if (connected && open && replay.connected) open.endUs = Math.max(open.endUs, j.keys[i]!);
    if (!d) return;
    if (d.skips.length) this.skipped(d.file, d.skips);
    this.rec.apply(d);
    this.appliedSinceFile = true;
  }
}
