import { qualify } from '../accounting/clusters.js';
import type { Reconstructor } from '../accounting/reconstruct.js';
import type { Interval } from '../accounting/coverage.js';
import type { Micros, SnapshotDelta, Skip } from '../accounting/types.js';
import type { NativeAllocation } from './format.js';
import { readJournals, sourceKind, type JournalEntry, type JournalLine, type JournalProblem } from './journal.js';
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

/** `afterKey`: the key of the source's last line read before these (an index reads on from there). */
export function journalSequence(source: string, entries: JournalEntry[], afterKey: Micros = -Infinity): JournalSequence {
  const keys: Micros[] = [];
  const markers = new Map<string, number>();
  let last = afterKey;
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
  private watched: ReadonlySet<string>;

  constructor(
    private readonly idKind: string,
    private readonly file: (entry: JournalEntry) => string,
    /** The namespaces watched where an earlier replay stopped (see JournalMerge's state), qualified by their cluster. */
    watched: readonly string[] = [],
    /** The cluster of the lines, as the last header read said ('' : unnamed); a header changes it. */
    public cluster = '',
  ) {
    this.watched = new Set(watched);
  }

  /** The namespaces watched now, sorted. */
  get watchedNamespaces(): string[] {
    return [...this.watched].sort();
  }

  /** Whether the watcher is connected and complete (between a resync and a disconnection). */
  get connected(): boolean {
    return this.watched.size > 0;
  }

  /** The resync's list was applied: the journal is complete for its namespaces from here. */
  listed(namespaces: readonly string[]): void {
    this.watched = new Set(namespaces.map((n) => qualify(this.cluster, n)));
  }

  /**
   * The delta of a line applied at `timeUs` (its key), or null for a line that changes
   * nothing by itself: markers (a resync's snapshot is applied by the caller, who then
   * calls `listed`).
   */
  delta(entry: JournalEntry, timeUs: Micros): SnapshotDelta | null {
    const line: JournalLine = entry.line;
    if (entry.cluster !== undefined) this.cluster = entry.cluster;
    const base = { file: this.file(entry), timeUs, failedScopes: [], queued: [], kind: 'native' as const, gone: [], cluster: this.cluster };
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
        const out = observeNativeTuple(tuple(line.allocation), this.idKind, this.cluster);
        const skips: Skip[] = 'skip' in out ? [{ reason: out.skip, file: base.file, detail: out.detail }] : [];
        return { ...base, covered: this.watched, changed: 'obs' in out ? [out.obs] : [], skips };
      }
      default:
        return null;
    }
  }
}

/** Where a watcher's list falls in its journal: the sequence and the marker's line. */
interface Marker {
  seq: number;
  line: number;
  key: number;
}

/** Where a merge stopped, so that a later one reads on (the index keeps it between ingests). */
export interface MergeState {
  /**
   * Per source: the namespaces it watches, the key of its last line applied, and the stretch
   * it was followed in, when still open (connected).
   */
  sources: { source: string; cluster: string; watched: string[]; lastKey: Micros; open: Interval | null }[];
  /** The latest place a snapshot file was applied at: its time, or its marker's. */
  fileBoundUs: Micros;
  /** Whether journal lines changed the listing since the last file. */
  appliedSinceFile: boolean;
}

export const EMPTY_MERGE: MergeState = { sources: [], fileBoundUs: -Infinity, appliedSinceFile: false };

/**
 * Journal lines interleaved with the snapshot files by time (docs/accounting.md#watched-history):
 * the lines of all sources by key (each source's in its own order; equal keys in source
 * order), a snapshot file after the lines before its time, a resync marker's snapshot at
 * the marker. One implementation for the full read and the index, which resumes it from
 * `state()` with the lines read since.
 */
export class JournalMerge {
  private readonly next: number[];
  private readonly replays: JournalReplay[];
  /** Sources of an earlier merge without new lines: their state is carried over. */
  private readonly idle: MergeState['sources'];
  private readonly lastKeys: Micros[];
  private fileBoundUs: Micros;
  /** Resync markers passed, by the snapshot file they name. */
  readonly passed: string[] = [];
  /** Whether journal lines changed the listing since the last file. */
  private appliedSinceFile: boolean;
  /**
   * Where each source was followed in this merge: from a resync's list to its last line
   * before a disconnection; the first may go on one a resumed merge left open.
   */
  private readonly stretches: Interval[][];

  constructor(
    private readonly journals: readonly JournalSequence[],
    private readonly rec: Pick<Reconstructor, 'apply'>,
    private readonly skipped: (file: string, skips: Skip[]) => void,
    resume: MergeState = EMPTY_MERGE,
  ) {
    const before = new Map(resume.sources.map((s) => [s.source, s]));
    this.next = journals.map(() => 0);
    this.replays = journals.map((j) => new JournalReplay(sourceKind(j.source), (e) => `${j.source} line ${e.lineNumber}`, before.get(j.source)?.watched, before.get(j.source)?.cluster));
    this.lastKeys = journals.map((j) => before.get(j.source)?.lastKey ?? -Infinity);
    // A stretch still open when the last merge stopped goes on with this one's lines.
    this.stretches = journals.map((j) => {
      const open = before.get(j.source)?.open;
      return open ? [{ ...open }] : [];
    });
    const active = new Set(journals.map((j) => j.source));
    this.idle = resume.sources.filter((s) => !active.has(s.source));
    this.fileBoundUs = resume.fileBoundUs;
    this.appliedSinceFile = resume.appliedSinceFile;
  }

  private markerOf(file: string): Marker | null {
    for (let seq = 0; seq < this.journals.length; seq++) {
      const line = this.journals[seq]!.markers.get(file);
      if (line !== undefined && line >= this.next[seq]!) return { seq, line, key: this.journals[seq]!.keys[line]! };
    }
    return null;
  }

  /**
   * Applies every line before `key`, in key order across sources (for the sequence of
   * `stop`, only those before its marker, whatever their key).
   */
  private applyUntil(key: number, stop: Marker | null): void {
    for (;;) {
      let best = -1;
      let bestKey = Infinity;
      this.journals.forEach((j, seq) => {
        const i = this.next[seq]!;
        const open = stop?.seq === seq ? i < stop.line : i < j.entries.length && j.keys[i]! < key;
        if (open && (best < 0 || j.keys[i]! < bestKey)) {
          best = seq;
          bestKey = j.keys[i]!;
        }
      });
      if (best < 0) return;
      this.applyLine(best);
    }
  }

  /**
   * One snapshot file at its place: the lines before it, then the file (`apply`, told
   * whether journal lines came since the last file, so that it is compared with everything
   * listed; it says whether the file could be read), then its marker, if a watcher wrote it.
   */
  file(name: string, timeUs: Micros, apply: (afterLines: boolean) => boolean): void {
    const marker = this.markerOf(name);
    const bound = marker ? marker.key : timeUs;
    this.applyUntil(bound, marker);
    this.fileBoundUs = Math.max(this.fileBoundUs, bound);
    const read = apply(this.appliedSinceFile);
    if (read) this.appliedSinceFile = false;
    if (marker) this.pass(marker, read);
  }

  /** Applies the lines after the last file. */
  finish(): void {
    this.applyUntil(Infinity, null);
  }

  /** Where the merge stands, for a later one to resume (after `finish`). */
  state(): MergeState {
    const sources = [
      ...this.idle,
      ...this.journals.map((j, seq) => ({
        source: j.source,
        cluster: this.replays[seq]!.cluster,
        watched: this.replays[seq]!.watchedNamespaces,
        lastKey: this.lastKeys[seq]!,
        open: this.replays[seq]!.connected ? (this.stretches[seq]!.at(-1) ?? null) : null,
      })),
    ].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    return { sources, fileBoundUs: this.fileBoundUs, appliedSinceFile: this.appliedSinceFile };
  }

  /** Goes past a marker whose snapshot was just applied (`listed`), or could not be read. */
  private pass(marker: Marker, listed: boolean): void {
    const line = this.journals[marker.seq]!.entries[marker.line]!.line;
    this.applyLine(marker.seq);
    if (listed && line.type === 'resynchronised') {
      this.replays[marker.seq]!.listed(line.namespaces);
      this.stretches[marker.seq]!.push({ startUs: marker.key, endUs: marker.key });
    }
  }

  /** Where watchers followed the cluster in this merge, in time order, with the cluster each followed (see Coverage in docs/accounting.md). */
  watched(): (Interval & { cluster: string })[] {
    return this.watchedBySource()
      .filter((w) => w.endUs > w.startUs)
      .map(({ source: _, ...w }) => w)
      .sort((a, b) => a.startUs - b.startUs);
  }

  /** The stretches this merge opened or went on with, per source and its cluster (the index keeps them). */
  watchedBySource(): (Interval & { source: string; cluster: string })[] {
    return this.journals.flatMap((j, seq) => this.stretches[seq]!.map((w) => ({ source: j.source, cluster: this.replays[seq]!.cluster, ...w })));
  }

  private applyLine(seq: number): void {
    const j = this.journals[seq]!;
    const i = this.next[seq]!++;
    this.lastKeys[seq] = j.keys[i]!;
    const entry = j.entries[i]!;
    if (entry.line.type === 'resynchronised') this.passed.push(entry.line.snapshot);
    const replay = this.replays[seq]!;
    const connected = replay.connected;
    const d = replay.delta(entry, j.keys[i]!);
    // A connected watcher's stretch reaches its latest line; a disconnection ends it. A
    // watch opened again (Kubernetes goes on from its resourceVersion) vouches for nothing
    // until a line arrives on it: that may be a 410.
    const open = this.stretches[seq]!.at(-1);
    if (connected && open && replay.connected && entry.line.type !== 'connected') open.endUs = Math.max(open.endUs, j.keys[i]!);
    if (!d) return;
    if (d.skips.length) this.skipped(d.file, d.skips);
    this.rec.apply(d);
    this.appliedSinceFile = true;
  }
}
