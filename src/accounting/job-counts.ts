import { bareName, clusterLabel } from './clusters.js';
import { dayIndexOf, type DayGrid } from './daily.js';
import type { Micros, Observation, SnapshotDelta } from './types.js';

/**
 * Running and queued jobs as each snapshot listed them, and their daily averages: the job
 * counts of `summarize`. A job runs in a snapshot when one of its allocations holds
 * resources there (running, or disconnected); it is queued when the snapshot lists it as
 * waiting for placement. Counts are per namespace, for the namespaces a snapshot covers:
 * a namespace whose capture failed has no count in that snapshot, rather than a zero.
 * Pure.
 */

/** Per covered namespace: [running jobs, queued jobs]. */
export type NamespaceCounts = Record<string, [running: number, queued: number]>;

export interface SnapshotCounts {
  /** Capture time. */
  timeUs: Micros;
  namespaces: NamespaceCounts;
  /** The cluster captured ('' : the unnamed one). */
  cluster?: string;
}

/** Follows the snapshot deltas of one read, in file order, and counts each snapshot's jobs. */
export class JobCounter {
  /** What each listed allocation is: its job, and whether it holds resources. */
  private readonly listed = new Map<string, { job: string; namespace: string; holding: boolean }>();
  /** Holding allocations per (namespace, job). */
  private readonly holdingPerJob = new Map<string, number>();
  /** Jobs with a holding allocation, per namespace. */
  private readonly running = new Map<string, number>();

  apply(delta: SnapshotDelta): SnapshotCounts {
    for (const key of delta.gone) this.remove(key);
    for (const o of delta.changed) {
      this.remove(o.key);
      this.insert(o);
    }
    const queued = new Map<string, Set<string>>();
    for (const q of delta.queued) {
      let jobs = queued.get(q.namespace);
      if (!jobs) queued.set(q.namespace, (jobs = new Set()));
      jobs.add(q.jobId);
    }
    const namespaces: NamespaceCounts = {};
    // A snapshot covers one cluster: its namespaces are named bare, as reports name them (docs/accounting.md#clusters).
    for (const ns of [...delta.covered].sort()) namespaces[bareName(ns)] = [this.running.get(ns) ?? 0, queued.get(ns)?.size ?? 0];
    return { timeUs: delta.timeUs, namespaces, cluster: delta.cluster ?? '' };
  }

  private insert(o: Observation): void {
    const holding = o.phase === 'holding';
    this.listed.set(o.key, { job: o.jobId, namespace: o.namespace, holding });
    if (holding) this.bump(o.namespace, o.jobId, 1);
  }

  private remove(key: string): void {
    const old = this.listed.get(key);
    if (!old) return;
    this.listed.delete(key);
    if (old.holding) this.bump(old.namespace, old.job, -1);
  }

  private bump(namespace: string, job: string, by: 1 | -1): void {
    const id = `${namespace}\u0000${job}`;
    const n = (this.holdingPerJob.get(id) ?? 0) + by;
    if (n === 0) this.holdingPerJob.delete(id);
    else this.holdingPerJob.set(id, n);
    // The job starts or stops running when its count leaves or reaches zero.
    if ((by === 1 && n === 1) || (by === -1 && n === 0)) this.running.set(namespace, (this.running.get(namespace) ?? 0) + by);
  }
}

export interface DayCounts {
  /** Snapshots taken that day that covered the namespace. */
  snapshots: number;
  /** Averages over those snapshots; null when there was none (a gap, not a zero). */
  running: number | null;
  queued: number | null;
}

/**
 * Daily averages per namespace over the snapshots of each day (by capture time, in the
 * grid's time zone). Every namespace that some snapshot covered gets one entry per day.
 * Several clusters (docs/accounting.md#clusters): each cluster's average over its own
 * snapshots, summed per namespace name, as `stats --by namespace` sums its hours; `clusters`
 * (names as reports give them) keeps those clusters' snapshots only.
 */
export function countsPerDay(grid: DayGrid, snapshots: Iterable<SnapshotCounts>, clusters: readonly string[] = []): Map<string, DayCounts[]> {
  const n = grid.days.length;
  const only = clusters.length > 0 ? new Set(clusters) : null;
  const perCluster = new Map<string, Map<string, { snapshots: Uint32Array; running: Float64Array; queued: Float64Array }>>();
  for (const s of snapshots) {
    const d = dayIndexOf(grid, s.timeUs);
    if (d < 0) continue;
    const cluster = s.cluster ?? '';
    if (only && !only.has(clusterLabel(cluster))) continue;
    let byNs = perCluster.get(cluster);
    if (!byNs) perCluster.set(cluster, (byNs = new Map()));
    for (const [ns, [running, queued]] of Object.entries(s.namespaces)) {
      let t = byNs.get(ns);
      if (!t) byNs.set(ns, (t = { snapshots: new Uint32Array(n), running: new Float64Array(n), queued: new Float64Array(n) }));
      t.snapshots[d]!++;
      t.running[d]! += running;
      t.queued[d]! += queued;
    }
  }
  const out = new Map<string, DayCounts[]>();
  for (const byNs of perCluster.values()) {
    for (const [ns, t] of byNs) {
      const days = out.get(ns) ?? noCounts(n);
      out.set(
        ns,
        days.map((before, d) => {
          const k = t.snapshots[d]!;
          if (k === 0) return before;
          return { snapshots: before.snapshots + k, running: (before.running ?? 0) + t.running[d]! / k, queued: (before.queued ?? 0) + t.queued[d]! / k };
        }),
      );
    }
  }
  return out;
}

/** The entries of a namespace no snapshot covered, for `days` days. */
export function noCounts(days: number): DayCounts[] {
  return Array.from({ length: days }, () => ({ snapshots: 0, running: null, queued: null }));
}
