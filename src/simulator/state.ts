/**
 * What the cluster API shows at an instant: the listed allocations with their client
 * status and task times, and the jobs still waiting for placement. Source-neutral, so the
 * snapshot renderers and a fake Nomad server can share it.
 */

import type { NativeResources, NativeStatus } from '../snapshots/format.js';
import type { Cluster, SimAlloc, SimJob } from './model.js';
import { DEFAULT_GC_MINUTES, type SnapshotFormat } from './options.js';

export interface AllocView {
  id: string;
  jobId: string;
  namespace: string;
  node: string;
  status: NativeStatus;
  createUs: number;
  /** The main task's StartedAt as reported now: the latest (re)start, null before the first. */
  startedAtUs: number | null;
  /** The main task's FinishedAt, once the server knows the allocation is terminal (never for lost). */
  finishedAtUs: number | null;
  modifyUs: number;
  restarts: number;
  resources: NativeResources;
  /** The generated allocation behind this view (for details such as devices and metadata). */
  alloc: SimAlloc;
}

export interface ClusterState {
  timeUs: number;
  /** In creation order, as Nomad lists them. */
  allocations: AllocView[];
  /** Jobs submitted but not yet placed, in submission order. */
  queued: SimJob[];
}

export interface StateOptions {
  /** How long terminal allocations stay listed. Default: the cluster's gcMinutes, else per format. */
  gcMinutes?: number;
  /** Picks the default GC window (native 60 min, legacy 240 min). Default native. */
  format?: SnapshotFormat;
}

export function gcWindowUs(cluster: Cluster, options: StateOptions = {}): number {
  const minutes = options.gcMinutes ?? cluster.options.gcMinutes ?? DEFAULT_GC_MINUTES[options.format ?? 'native'];
  return Math.round(minutes * 60_000_000);
}

export function isTerminal(status: string): boolean {
  return status === 'complete' || status === 'failed' || status === 'lost';
}

/** The allocation as the API reports it at t (t must lie in its listed lifetime). */
export function viewAt(a: SimAlloc, t: number): AllocView {
  let status: NativeStatus;
  if (t >= a.terminalUs) status = a.finalStatus;
  else if (a.unknown.some((u) => u.fromUs <= t && t < u.toUs)) status = 'unknown';
  else if (a.startUs !== null && t >= a.startUs) status = 'running';
  else status = 'pending';

  let startedAt: number | null = null;
  let restarts = 0;
  if (a.startUs !== null && t >= a.startUs) {
    startedAt = a.startUs;
    for (const r of a.restarts) {
      if (r.atUs <= t) restarts++;
      if (r.startedUs <= t) startedAt = r.startedUs;
    }
  }

  // ModifyTime follows the last change the server recorded.
  let modify = a.createUs;
  if (startedAt !== null) modify = Math.max(modify, startedAt);
  for (const u of a.unknown) {
    if (u.fromUs <= t) modify = Math.max(modify, u.fromUs);
    if (u.toUs <= t) modify = Math.max(modify, u.toUs);
  }
  if (t >= a.terminalUs) modify = Math.max(modify, a.terminalUs);

  return {
    id: a.id,
    jobId: a.job.id,
    namespace: a.job.namespace,
    node: a.node.name,
    status,
    createUs: a.createUs,
    startedAtUs: startedAt,
    finishedAtUs: t >= a.terminalUs && a.finalStatus !== 'lost' ? a.endUs : null,
    modifyUs: modify,
    restarts,
    resources: a.job.resources,
    alloc: a,
  };
}

/**
 * Sweeps the cluster forward in time: each call to `at` costs only the allocations listed
 * around that instant, so a year of snapshots never rescans the whole history.
 */
export class StateCursor {
  private nextAlloc = 0;
  private nextJob = 0;
  private active: SimAlloc[] = [];
  private waiting: SimJob[] = [];
  private last = -Infinity;

  constructor(
    private readonly cluster: Cluster,
    private readonly gcUs: number,
  ) {}

  at(t: number): ClusterState {
    if (t < this.last) throw new RangeError('StateCursor moves forward only');
    this.last = t;
    const allocs = this.cluster.allocations;
    while (this.nextAlloc < allocs.length) {
      const a = allocs[this.nextAlloc];
      if (!a || a.createUs > t) break;
      this.active.push(a);
      this.nextAlloc++;
    }
    // Garbage collection: a terminal allocation goes once the GC window has passed.
    this.active = this.active.filter((a) => t < a.terminalUs + this.gcUs);

    const jobs = this.cluster.jobs;
    while (this.nextJob < jobs.length) {
      const j = jobs[this.nextJob];
      if (!j || j.submitUs > t) break;
      this.waiting.push(j);
      this.nextJob++;
    }
    this.waiting = this.waiting.filter((j) => (j.allocs[0]?.createUs ?? Infinity) > t);

    return { timeUs: t, allocations: this.active.map((a) => viewAt(a, t)), queued: [...this.waiting] };
  }
}

/** One-off query; for many increasing instants use a StateCursor. */
export function clusterStateAt(cluster: Cluster, tUs: number, options: StateOptions = {}): ClusterState {
  return new StateCursor(cluster, gcWindowUs(cluster, options)).at(tUs);
}

/** AI4OS lists one record per job: its latest allocation (creation order decides). */
export function latestPerJob(state: ClusterState): AllocView[] {
  const byJob = new Map<string, AllocView>();
  for (const v of state.allocations) byJob.set(v.jobId, v);
  return [...byJob.values()];
}
