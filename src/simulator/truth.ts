/**
 * Ground truth: the interval during which each allocation really held its resources,
 * whether the written snapshots could have seen it at all, and from which start.
 */

import type { Amounts, Lifetime } from '../accounting/types.js';
import type { Cluster, SimAlloc } from './model.js';
import type { SnapshotFormat } from './options.js';
import { StateCursor, gcWindowUs, isTerminal, latestPerJob, type AllocView, type ClusterState } from './state.js';

const MIB = 1_048_576;

export interface TruthLifetime extends Lifetime {
  /** Some written snapshot saw it holding resources with a start, or terminal with start and end. */
  observable: boolean;
  /**
   * The earliest main-task start a written snapshot listed; later than `startUs` when the
   * task restarted in place before any snapshot saw it. Null when none listed a start.
   */
  seenStartUs: number | null;
}

export interface Truth {
  horizonUs: number;
  format: SnapshotFormat;
  /** Every allocation that held resources before the horizon, in creation order. */
  all: TruthLifetime[];
  observable: TruthLifetime[];
  /**
   * The observable allocations as the snapshots showed them, from `seenStartUs`: all a
   * report can count, and what its sure band bounds.
   */
  seen: TruthLifetime[];
}

/** What the written snapshots showed, gathered one snapshot at a time, in time order. */
export interface Observed {
  /** Allocations some listed record lets a reader reconstruct. */
  allocs: Set<SimAlloc>;
  /** The first start listed per allocation (a task's StartedAt only moves later). */
  firstStartUs: Map<SimAlloc, number>;
}

export function emptyObserved(): Observed {
  return { allocs: new Set(), firstStartUs: new Map() };
}

export interface TruthOptions {
  /** Observability depends on what each format shows. Default native. */
  format?: SnapshotFormat;
  /** GC window used for the snapshots. Default: per format (see state.ts). */
  gcMinutes?: number;
}

export function amountsOf(a: SimAlloc): Amounts {
  const r = a.job.resources;
  return {
    cpuMilli: r.cpu_cores * 1000,
    cpuMhz: r.cpu_mhz,
    memoryBytes: r.memory_mib * MIB,
    diskBytes: r.disk_mib * MIB,
    gpu: r.gpu,
  };
}

/** [start, end) the allocation held resources, unclipped; null if it never started. */
export function trueInterval(a: SimAlloc): { startUs: number; endUs: number } | null {
  if (a.startUs === null) return null;
  // A lost allocation's end is bounded by the moment the server gave up on it.
  const endUs = a.finalStatus === 'lost' ? a.terminalUs : (a.endUs ?? a.terminalUs);
  return endUs > a.startUs ? { startUs: a.startUs, endUs } : null;
}

/** Whether one listed record lets a reader reconstruct (part of) the allocation's lifetime. */
function sees(v: AllocView, format: SnapshotFormat): boolean {
  if (v.startedAtUs === null) return false;
  if (v.status === 'running' || v.status === 'unknown') return true;
  if (!isTerminal(v.status)) return false;
  // Native lost records carry ModifyTime as their end; legacy ones have no end at all.
  if (v.status === 'lost') return format === 'native';
  return v.finishedAtUs !== null;
}

/** Adds what a rendered snapshot lets a reader see to `observed`. */
export function markObserved(state: ClusterState, format: SnapshotFormat, observed: Observed): void {
  const listed = format === 'legacy' ? latestPerJob(state) : state.allocations;
  for (const v of listed) {
    if (sees(v, format)) observed.allocs.add(v.alloc);
    if (v.startedAtUs !== null && !observed.firstStartUs.has(v.alloc)) observed.firstStartUs.set(v.alloc, v.startedAtUs);
  }
}

export function buildTruth(cluster: Cluster, observed: Observed, format: SnapshotFormat): Truth {
  const horizon = cluster.horizonUs;
  const all: TruthLifetime[] = [];
  for (const a of cluster.allocations) {
    const iv = trueInterval(a);
    if (!iv || iv.startUs >= horizon) continue;
    const open = iv.endUs > horizon;
    const endUs = open ? horizon : iv.endUs;
    all.push({
      key: `nomad:${a.id}`,
      namespace: a.job.namespace,
      jobId: a.job.id,
      jobName: a.job.name,
      user: a.job.user.id,
      group: null,
      component: a.job.component,
      node: a.node.name,
      amounts: amountsOf(a),
      startUs: iv.startUs,
      endUs,
      lowEndUs: endUs,
      highEndUs: endUs,
      endKind: open ? 'open' : 'ended',
      observable: observed.allocs.has(a),
      seenStartUs: observed.firstStartUs.get(a) ?? null,
    });
  }
  const observable = all.filter((l) => l.observable);
  const seen: TruthLifetime[] = [];
  for (const l of observable) {
    const startUs = l.seenStartUs ?? l.startUs;
    if (startUs === l.startUs) seen.push(l);
    else if (startUs < l.endUs) seen.push({ ...l, startUs });
  }
  return { horizonUs: horizon, format, all, observable, seen };
}

/** Truth for a history written in `format` (only written snapshots count for observability). */
export function computeTruth(cluster: Cluster, options: TruthOptions = {}): Truth {
  const format = options.format ?? 'native';
  const cursor = new StateCursor(cluster, gcWindowUs(cluster, { gcMinutes: options.gcMinutes, format }));
  const observed = emptyObserved();
  for (const s of cluster.snapshots) {
    if (s.missed) continue;
    markObserved(cursor.at(s.timeUs), format, observed);
  }
  return buildTruth(cluster, observed, format);
}

export function truthLifetimes(
  cluster: Cluster,
  options: TruthOptions & { observableOnly?: boolean } = {},
): TruthLifetime[] {
  const truth = computeTruth(cluster, options);
  return options.observableOnly ? truth.observable : truth.all;
}
