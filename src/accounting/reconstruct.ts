import type { Amounts, Attribution, GapPolicy, Lifetime, Micros, SnapshotObservations } from './types.js';

/**
 * Reconstruction across snapshots (design.md rule 3). Snapshots are fed in capture order;
 * every observation of one allocation is merged into a track. Pure and incremental, so a
 * caller can stream a corpus through it without holding it in memory.
 */

type TrackState = 'none' | 'holding' | 'ended' | 'vanished';

export interface Track extends Attribution {
  key: string;
  amounts: Amounts;
  /** Earliest start seen: a task restarted in place reports a later start. */
  startUs: Micros | null;
  state: TrackState;
  /** S: the last snapshot that saw it holding resources. */
  lastHoldingUs: Micros | null;
  /** The end reported by a terminal observation. */
  endUs: Micros | null;
  /** S': the covering snapshot that saw it terminal without an end, or did not list it. */
  nextUs: Micros | null;
  /** Whether S' listed it as terminal (ended after S' - G) rather than not at all (before). */
  listedTerminal: boolean;
  /** Kind of the snapshot that gave S', for the default GC window. */
  nextKind: 'native' | 'legacy' | null;
  /** Index of the last snapshot that listed it, to detect absence cheaply. */
  lastListed: number;
}

export interface FailedScope {
  namespace: string;
  reason: string;
  snapshots: number;
  lastFile: string;
}

export interface ReconstructionDiagnostics {
  snapshots: number;
  firstUs: Micros | null;
  lastUs: Micros | null;
  largestGapUs: Micros;
  failedScopes: FailedScope[];
}

export class Reconstructor {
  private readonly tracks = new Map<string, Track>();
  /** Tracks currently holding resources, per namespace: the candidates for vanishing. */
  private readonly holding = new Map<string, Set<Track>>();
  private readonly failed = new Map<string, FailedScope>();
  private count = 0;
  private firstUs: Micros | null = null;
  private lastUs: Micros | null = null;
  private largestGapUs = 0;

  add(snap: SnapshotObservations): void {
    const index = this.count++;
    if (this.lastUs !== null) this.largestGapUs = Math.max(this.largestGapUs, snap.timeUs - this.lastUs);
    this.firstUs ??= snap.timeUs;
    this.lastUs = snap.timeUs;

    for (const o of snap.observations) {
      let t = this.tracks.get(o.key);
      if (!t) {
        t = {
          key: o.key, namespace: o.namespace, jobId: o.jobId, jobName: o.jobName, user: o.user, group: o.group,
          component: o.component, node: o.node, amounts: o.amounts, startUs: null, state: 'none',
          lastHoldingUs: null, endUs: null, nextUs: null, listedTerminal: false, nextKind: null, lastListed: index,
        };
        this.tracks.set(o.key, t);
      } else {
        if (t.namespace !== o.namespace) this.holdingSet(t.namespace).delete(t);
        t.namespace = o.namespace;
        t.jobId = o.jobId;
        t.jobName = o.jobName ?? t.jobName;
        t.user = o.user ?? t.user;
        t.group = o.group ?? t.group;
        t.component = o.component ?? t.component;
        t.node = o.node ?? t.node;
        t.amounts = o.amounts;
        t.lastListed = index;
      }
      if (o.startUs !== null && (t.startUs === null || o.startUs < t.startUs)) t.startUs = o.startUs;

      if (o.phase === 'holding') {
        t.state = 'holding';
        t.lastHoldingUs = snap.timeUs;
        t.endUs = null;
        t.nextUs = null;
        this.holdingSet(t.namespace).add(t);
      } else if (o.phase === 'terminal') {
        this.holdingSet(t.namespace).delete(t);
        if (o.endUs !== null) {
          t.state = 'ended';
          t.endUs = o.endUs;
        } else if (t.state === 'holding' || (t.state === 'none' && t.startUs !== null)) {
          t.state = 'vanished';
          t.nextUs = snap.timeUs;
          t.listedTerminal = true;
          t.nextKind = snap.kind;
        }
        // Already ended or vanished: the earlier, tighter knowledge stands.
      }
      // 'none' (pending, queued): listed, so not vanished, but holds nothing new.
    }

    // Holding allocations that a covering snapshot no longer lists have ended before it.
    for (const ns of snap.covered) {
      const set = this.holding.get(ns);
      if (!set) continue;
      for (const t of set) {
        if (t.lastListed === index) continue;
        set.delete(t);
        t.state = 'vanished';
        t.nextUs = snap.timeUs;
        t.listedTerminal = false;
        t.nextKind = snap.kind;
      }
    }

    for (const f of snap.failedScopes) {
      const id = `${f.namespace}\u0000${f.reason}`;
      const entry = this.failed.get(id);
      if (entry) {
        entry.snapshots++;
        entry.lastFile = snap.file;
      } else {
        this.failed.set(id, { namespace: f.namespace, reason: f.reason, snapshots: 1, lastFile: snap.file });
      }
    }
  }

  private holdingSet(ns: string): Set<Track> {
    let s = this.holding.get(ns);
    if (!s) this.holding.set(ns, (s = new Set()));
    return s;
  }

  /** The tracks that held resources at some point; allocations never started are left out. */
  tracksWithLifetime(): Track[] {
    const out: Track[] = [];
    for (const t of this.tracks.values()) if (t.startUs !== null && t.state !== 'none') out.push(t);
    return out;
  }

  diagnostics(): ReconstructionDiagnostics {
    return {
      snapshots: this.count,
      firstUs: this.firstUs,
      lastUs: this.lastUs,
      largestGapUs: this.largestGapUs,
      failedScopes: [...this.failed.values()],
    };
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
  if (track.key.startsWith('kubernetes:')) return 0;
  return track.nextKind === 'legacy' ? 4 * HOUR : HOUR;
}

/** Turns tracks into lifetimes: the estimated end plus the sure low and high bounds. */
export function estimateLifetimes(tracks: Iterable<Track>, opts: EstimateOptions): Lifetime[] {
  const out: Lifetime[] = [];
  for (const t of tracks) {
    if (t.startUs === null) continue;
    const base = {
      key: t.key, namespace: t.namespace, jobId: t.jobId, jobName: t.jobName, user: t.user, group: t.group,
      component: t.component, node: t.node, amounts: t.amounts, startUs: t.startUs,
    };
    if (t.state === 'ended' && t.endUs !== null) {
      const end = Math.max(t.startUs, t.endUs);
      out.push({ ...base, endUs: end, lowEndUs: end, highEndUs: end, endKind: 'ended' });
    } else if (t.state === 'holding' && t.lastHoldingUs !== null) {
      const end = Math.max(t.startUs, t.lastHoldingUs);
      out.push({ ...base, endUs: end, lowEndUs: end, highEndUs: end, endKind: 'open' });
    } else if (t.state === 'vanished' && t.nextUs !== null) {
      const s = Math.max(t.startUs, t.lastHoldingUs ?? t.startUs);
      const s2 = Math.max(s, t.nextUs);
      const g = opts.gcWindowUs ?? defaultGcWindowUs(t);
      let end: Micros;
      if (opts.gapPolicy === 'last-seen') end = s;
      else if (opts.gapPolicy === 'next') end = s2;
      else if (t.listedTerminal) end = midpoint(Math.max(s, s2 - g), s2);
      else end = midpoint(s, Math.max(s, s2 - g));
      out.push({ ...base, endUs: end, lowEndUs: s, highEndUs: s2, endKind: 'vanished' });
    }
  }
  return out;
}

function midpoint(a: Micros, b: Micros): Micros {
  return a + Math.floor((b - a) / 2);
}
