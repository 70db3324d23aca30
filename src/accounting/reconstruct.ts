import { bareName, clusterOf } from './clusters.js';
import type { Amounts, Attribution, GapPolicy, Lifetime, Micros, Observation, SnapshotDelta, SnapshotObservations } from './types.js';

/**
 * Reconstruction across snapshots (docs/accounting.md#reconstruction). Snapshots are fed in capture order;
 * every observation of one allocation is merged into a track. Pure and incremental, so a
 * caller can stream a corpus through it without holding it in memory.
 *
 * The work per snapshot grows with what changed, not with what is listed: an allocation
 * listed unchanged is not touched. A track listed as holding resources has, lazily, been
 * seen holding up to the latest snapshot; its `lastHoldingUs` is settled when it changes,
 * leaves the listing, or when results are read.
 */

type TrackState = 'none' | 'holding' | 'ended' | 'vanished';

export interface Track extends Attribution {
  key: string;
  amounts: Amounts;
  /** Earliest start seen: a task restarted in place reports a later start. */
  startUs: Micros | null;
  state: TrackState;
  /** S: the last snapshot that saw it holding resources (see listedHolding). */
  lastHoldingUs: Micros | null;
  /** The end reported by a terminal observation. */
  endUs: Micros | null;
  /** S': the covering snapshot that saw it terminal without an end, or did not list it. */
  nextUs: Micros | null;
  /** Whether S' listed it as terminal (ended after S' - G) rather than not at all (before). */
  listedTerminal: boolean;
  /** Kind of the snapshot that gave S', for the default GC window. */
  nextKind: 'native' | 'legacy' | null;
  /** Listed in the latest snapshot with a holding observation: S is that snapshot. */
  listedHolding: boolean;
  /** The observation it was last listed with. */
  last: Observation | null;
}

/**
 * Where a resumed reconstruction finds tracks it no longer keeps in memory (the index): an
 * allocation that left the listing long ago may be listed again.
 */
export interface TrackStore {
  load(key: string): Track | undefined;
}

/** A track as the index keeps it: the reconstruction's own state plus its place in the listing. */
export interface StoredTrack extends Track {
  /** Listed in the latest snapshot. */
  listed: boolean;
  /** Holding resources, and not listed by the latest snapshot because it did not cover the namespace. */
  unlistedHolding: boolean;
}

export class Reconstructor {
  private readonly tracks = new Map<string, Track>();
  /** Tracks listed in the latest snapshot. */
  private readonly listed = new Map<string, Track>();
  /** Tracks holding resources that the latest snapshot did not list because it did not cover their namespace. */
  private readonly unlistedHolding = new Set<Track>();
  private lastUs: Micros | null = null;
  /**
   * Per cluster, the time of its last snapshot or change: what a track listed as holding was
   * last seen at. Another cluster's snapshot or watcher says nothing of it (docs/accounting.md#clusters).
   */
  private readonly lastByCluster = new Map<string, Micros>();
  /** After a resume, the next snapshot is compared with the whole restored listing. */
  private wholeNext = false;

  constructor(private readonly store?: TrackStore) {}

  /**
   * Continues a reconstruction saved by `saved()`: the tracks that were listed or held
   * resources unlisted, and the time of the last snapshot applied. Others load on demand.
   * `whole`: the next snapshot comes from a fresh reader, listing everything (the default);
   * false when the caller's reader continues where it left off (it read the last file again).
   */
  resume(live: Iterable<StoredTrack>, lastUs: Micros, whole = true, lastByCluster: Readonly<Record<string, Micros>> = {}): void {
    for (const [cluster, us] of Object.entries(lastByCluster)) this.lastByCluster.set(cluster, us);
    for (const s of live) {
      const { listed, unlistedHolding, ...t } = s;
      this.tracks.set(t.key, t);
      if (listed) this.listed.set(t.key, t);
      if (unlistedHolding) this.unlistedHolding.add(t);
    }
    this.lastUs = lastUs;
    this.wholeNext = whole;
  }

  /** The time of the last snapshot or change applied; null before the first. */
  get latestUs(): Micros | null {
    return this.lastUs;
  }

  /** Each cluster's latest time (see lastByCluster), for a resume; empty while the history holds one cluster. */
  latestByCluster(): Record<string, Micros> {
    return this.lastByCluster.size > 1 ? Object.fromEntries(this.lastByCluster) : {};
  }

  /** The time of the last snapshot or change of a track's cluster. */
  private lastOf(t: Track): Micros | null {
    if (this.lastByCluster.size <= 1) return this.lastUs;
    return this.lastByCluster.get(clusterOf(t.key)) ?? this.lastUs;
  }

  /** How many allocations the latest snapshot listed. */
  get listedCount(): number {
    return this.listed.size;
  }

  /**
   * Adds a snapshot after changes that did not come from snapshots (a watcher's journal):
   * `present` is every allocation the snapshot lists, so what it does not list has gone,
   * whatever the snapshot before it listed.
   */
  applyWhole(d: SnapshotDelta, present: ReadonlySet<string>): void {
    const gone: string[] = [];
    for (const key of this.listed.keys()) if (!present.has(key)) gone.push(key);
    this.apply({ ...d, gone });
  }

  /**
   * Hands tracks to the index and drops from memory those that can change only by being
   * listed again (a store loads them back then). `all`: every track in memory, with S
   * settled for those still listed as holding (the end of an ingest); otherwise only the
   * ones dropped (a flush midway, which leaves the live ones for later).
   */
  flush(sink: (t: Track, flags: { listed: boolean; unlistedHolding: boolean; lastHoldingUs: Micros | null }) => void, all: boolean): void {
    for (const t of this.tracks.values()) {
      const listed = this.listed.get(t.key) === t;
      const unlistedHolding = this.unlistedHolding.has(t);
      const live = listed || unlistedHolding;
      if (!live) this.tracks.delete(t.key);
      else if (!all) continue;
      sink(t, { listed, unlistedHolding, lastHoldingUs: t.listedHolding ? this.lastOf(t) : t.lastHoldingUs });
    }
  }

  /** Adds a whole snapshot: every allocation it lists. */
  add(snap: SnapshotObservations): void {
    const present = new Set<string>();
    const changed: Observation[] = [];
    for (const o of snap.observations) {
      present.add(o.key);
      if (this.listed.get(o.key)?.last !== o) changed.push(o);
    }
    const gone: string[] = [];
    for (const key of this.listed.keys()) if (!present.has(key)) gone.push(key);
    const { observations: _, ...rest } = snap;
    this.apply({ ...rest, changed, gone });
  }

  /** Adds a snapshot given as its difference from the previous one. */
  apply(d: SnapshotDelta): void {
    if (this.wholeNext) {
      // The first snapshot after a resume comes whole, from a fresh reader: what it does not
      // list has gone since the saved listing.
      this.wholeNext = false;
      const present = new Set<string>();
      for (const o of d.changed) present.add(o.key);
      const gone = [...d.gone];
      for (const key of this.listed.keys()) if (!present.has(key)) gone.push(key);
      d = { ...d, gone };
    }
    const cluster = d.cluster ?? '';
    // The previous snapshot or change of this delta's cluster (one cluster: the previous one).
    // (None recorded yet: a resume of one cluster's fold, whose last time is lastUs.)
    const prevUs = this.lastByCluster.get(cluster) ?? (this.lastByCluster.size === 0 ? this.lastUs : null);
    const now = d.timeUs;

    for (const key of d.gone) {
      const t = this.listed.get(key);
      if (!t) continue;
      this.listed.delete(key);
      // Last seen holding at its own cluster's last snapshot, whichever cluster's this one is.
      this.settle(t, this.lastOf(t));
      if (t.state !== 'holding') continue;
      // Holding allocations that a covering snapshot no longer lists have ended before it.
      if (d.covered.has(t.namespace)) this.vanish(t, now, false, d.kind);
      else this.unlistedHolding.add(t);
    }
    this.lastUs = now;
    this.lastByCluster.set(cluster, now);

    for (const o of d.changed) this.observe(o, prevUs, now, d.kind);

    if (this.unlistedHolding.size > 0) {
      for (const t of this.unlistedHolding) {
        if (!d.covered.has(t.namespace)) continue;
        this.unlistedHolding.delete(t);
        this.vanish(t, now, false, d.kind);
      }
    }
  }

  /** A track stops being listed as holding: it was last seen holding at `prevUs`. */
  private settle(t: Track, prevUs: Micros | null): void {
    if (t.listedHolding) {
      t.lastHoldingUs = prevUs;
      t.listedHolding = false;
    }
  }

  private vanish(t: Track, now: Micros, listedTerminal: boolean, kind: 'native' | 'legacy'): void {
    t.state = 'vanished';
    t.nextUs = now;
    t.listedTerminal = listedTerminal;
    t.nextKind = kind;
  }

  private observe(o: Observation, prevUs: Micros | null, now: Micros, kind: 'native' | 'legacy'): void {
    let t = this.tracks.get(o.key);
    if (!t && this.store) {
      t = this.store.load(o.key);
      if (t) this.tracks.set(o.key, t);
    }
    if (!t) {
      t = {
        key: o.key, namespace: o.namespace, jobId: o.jobId, jobName: o.jobName, user: o.user, group: o.group,
        component: o.component, node: o.node, amounts: o.amounts, startUs: null, state: 'none',
        lastHoldingUs: null, endUs: null, nextUs: null, listedTerminal: false, nextKind: null, listedHolding: false, last: null,
      };
      this.tracks.set(o.key, t);
    } else {
      if (this.listed.get(o.key) === t) this.settle(t, prevUs);
      else this.unlistedHolding.delete(t);
      t.namespace = o.namespace;
      t.jobId = o.jobId;
      t.jobName = o.jobName ?? t.jobName;
      t.user = o.user ?? t.user;
      t.group = o.group ?? t.group;
      t.component = o.component ?? t.component;
      t.node = o.node ?? t.node;
      t.amounts = o.amounts;
    }
    this.listed.set(o.key, t);
    t.last = o;
    // An end the scheduler reported is final: a complete, failed or lost allocation never
    // runs again (a reschedule is another allocation). A later record that shows it holding
    // was taken before the end (a snapshot's list against a watcher's event).
    if (t.state === 'ended' && o.phase === 'holding') return;
    if (o.startUs !== null && (t.startUs === null || o.startUs < t.startUs)) t.startUs = o.startUs;

    if (o.phase === 'holding') {
      t.state = 'holding';
      t.listedHolding = true;
      t.lastHoldingUs = now;
      t.endUs = null;
      t.nextUs = null;
    } else if (o.phase === 'terminal') {
      if (o.endUs !== null) {
        t.state = 'ended';
        t.endUs = o.endUs;
      } else if (t.state === 'holding' || (t.state === 'none' && t.startUs !== null)) {
        this.vanish(t, now, true, kind);
      }
      // Already ended or vanished: the earlier, tighter knowledge stands.
    }
    // 'none' (pending, queued): listed, so not vanished, but holds nothing new.
  }

  /** The tracks that held resources at some point; allocations never started are left out. */
  tracksWithLifetime(): Track[] {
    const out: Track[] = [];
    for (const t of this.tracks.values()) {
      // Listed as holding in the latest snapshot: seen holding up to it.
      if (t.listedHolding) t.lastHoldingUs = this.lastOf(t);
      if (t.startUs !== null && t.state !== 'none') out.push(t);
    }
    return out;
  }

}

export interface EstimateOptions {
  gapPolicy: GapPolicy;
  /** Overrides the scheduler's GC window G; null picks the default per source (rule 3). */
  gcWindowUs: Micros | null;
}

const HOUR = 3_600_000_000;

/** Default G: 4 h for AI4OS files (job GC), 1 h for native Nomad (eval GC), 0 for Kubernetes. */
export function defaultGcWindowUs(track: Pick<Track, 'key' | 'nextKind'>): Micros {
  return gcWindowFor(bareName(track.key).startsWith('kubernetes:'), track.nextKind);
}

export function gcWindowFor(kubernetes: boolean, nextKind: Track['nextKind']): Micros {
  if (kubernetes) return 0;
  return nextKind === 'legacy' ? 4 * HOUR : HOUR;
}

/** Turns tracks into lifetimes: the estimated end plus the sure low and high bounds. */
export function estimateLifetimes(tracks: Iterable<Track>, opts: EstimateOptions): Lifetime[] {
  return [...lifetimesOf(tracks, opts)];
}

/** estimateLifetimes, one at a time: a report over years streams instead of holding them. */
export function* lifetimesOf(tracks: Iterable<Track>, opts: EstimateOptions): Generator<Lifetime> {
  const e: EndEstimate = { endUs: 0, lowEndUs: 0, highEndUs: 0, endKind: 'ended' };
  for (const t of tracks) {
    if (t.startUs === null) continue;
    const g = opts.gcWindowUs ?? defaultGcWindowUs(t);
    if (!estimateEnd(t.state, t.startUs, t.lastHoldingUs, t.endUs, t.nextUs, t.listedTerminal, g, opts.gapPolicy, e)) continue;
    yield {
      key: t.key, namespace: t.namespace, jobId: t.jobId, jobName: t.jobName, user: t.user, group: t.group,
      component: t.component, node: t.node, amounts: t.amounts, startUs: t.startUs,
      endUs: e.endUs, lowEndUs: e.lowEndUs, highEndUs: e.highEndUs, endKind: e.endKind,
    };
  }
}

export type EndEstimate = Pick<Lifetime, 'endUs' | 'lowEndUs' | 'highEndUs' | 'endKind'>;

/**
 * A track's estimated end and sure bounds (docs/accounting.md#reconstruction), written into `out`; false
 * for a track that held nothing. One function for objects and columns alike, so that the
 * index and the index-free path cannot disagree. `g` is the GC window that applies.
 */
export function estimateEnd(
  state: Track['state'],
  startUs: Micros,
  lastHoldingUs: Micros | null,
  endUs: Micros | null,
  nextUs: Micros | null,
  listedTerminal: boolean,
  g: Micros,
  policy: GapPolicy,
  out: EndEstimate,
): boolean {
  if (state === 'ended' && endUs !== null) {
    out.endUs = out.lowEndUs = out.highEndUs = Math.max(startUs, endUs);
    out.endKind = 'ended';
  } else if (state === 'holding' && lastHoldingUs !== null) {
    out.endUs = out.lowEndUs = out.highEndUs = Math.max(startUs, lastHoldingUs);
    out.endKind = 'open';
  } else if (state === 'vanished' && nextUs !== null) {
    const low = Math.max(startUs, lastHoldingUs ?? startUs);
    const high = Math.max(low, nextUs);
    out.lowEndUs = low;
    out.highEndUs = high;
    if (policy === 'last-seen') out.endUs = low;
    else if (policy === 'next') out.endUs = high;
    else if (listedTerminal) out.endUs = midpoint(Math.max(low, high - g), high);
    else out.endUs = midpoint(low, Math.max(low, high - g));
    out.endKind = 'vanished';
  } else {
    return false;
  }
  return true;
}

function midpoint(a: Micros, b: Micros): Micros {
  return a + Math.floor((b - a) / 2);
}

/**
 * The latest instant a track may have held resources under any gap policy: a period that
 * starts at or after it gets nothing from the track. Null for tracks that hold nothing.
 */
export function reachUs(t: Track): Micros | null {
  if (t.startUs === null) return null;
  if (t.state === 'ended' && t.endUs !== null) return Math.max(t.startUs, t.endUs);
  if (t.state === 'holding' && t.lastHoldingUs !== null) return Math.max(t.startUs, t.lastHoldingUs);
  if (t.state === 'vanished' && t.nextUs !== null) return Math.max(t.startUs, t.lastHoldingUs ?? t.startUs, t.nextUs);
  return null;
}
