/**
 * Deterministic Nomad-like cluster simulator: generates a cluster history from a seed,
 * renders snapshots in hourmeter's native format or the AI4OS legacy format, and exports
 * the ground truth to check accounting against.
 *
 *   const cluster = createCluster({ seed: 7, days: 14, targetConcurrent: 60 });
 *   for (const s of snapshotTimes(cluster)) {
 *     const state = clusterStateAt(cluster, s.timeUs);        // or a StateCursor for sweeps
 *     const file = renderNative(cluster, state);              // or renderLegacy
 *     // createSerializer(format, cluster).serialize(state) gives the file text, fast
 *   }
 *   const truth = computeTruth(cluster, { format: 'native' }); // { all, observable, seen }
 *   await writeHistory('/tmp/snaps', { seed: 7, format: 'legacy', truthPath: '/tmp/truth.json' });
 *
 * Model, in short:
 * - Jobs arrive as a Poisson process whose rate makes the mean number of allocations holding
 *   resources equal `targetConcurrent` (Little's law over log-uniform run times, 10 min to
 *   21 days). Arrivals start one maximum run time before `start`, so the first snapshot
 *   already sees a cluster in steady state.
 * - Some jobs queue before placement (no allocation); every allocation pulls its image
 *   (pending, 10 s to 5 min) before the main task starts.
 * - In-place restarts move the task's StartedAt; rescheduled jobs get a second allocation on
 *   another node; node disconnections make allocations `unknown`, then either running again
 *   or `lost` after `lostAfterMinutes` (truth end = ModifyTime).
 * - Terminal allocations stay listed for the GC window (native 60 min, legacy 240 min).
 * - Truth per allocation: [first start of the main task, FinishedAt or lost ModifyTime),
 *   clipped to the horizon (the last scheduled snapshot), amounts equal to the records'.
 *   `seen` keeps the allocations some snapshot saw, from the first start a snapshot listed.
 */

export { createCluster } from './cluster.js';
export type {
  Cluster,
  FinalStatus,
  JobKind,
  MainTask,
  ScheduledSnapshot,
  SimAlloc,
  SimDisconnect,
  SimJob,
  SimNode,
  SimRestart,
  SimUser,
} from './model.js';
export {
  DEFAULT_GC_MINUTES,
  DEFAULT_NAMESPACES,
  resolveOptions,
  type MissedSpec,
  type ResolvedOptions,
  type SimulatorOptions,
  type SnapshotFormat,
} from './options.js';
export { Prng } from './prng.js';
export {
  StateCursor,
  clusterStateAt,
  gcWindowUs,
  isTerminal,
  latestPerJob,
  viewAt,
  type AllocView,
  type ClusterState,
  type StateOptions,
} from './state.js';
export {
  createSerializer,
  pyDumps,
  renderLegacy,
  renderNative,
  rfc3339Nano,
  serializeSnapshot,
  snapshotFileName,
  unixNanos,
  type RenderOptions,
  type SnapshotSerializer,
} from './render.js';
export {
  amountsOf,
  computeTruth,
  trueInterval,
  truthLifetimes,
  type Truth,
  type TruthLifetime,
  type TruthOptions,
} from './truth.js';
export { writeHistory, type HistoryResult, type WriteHistoryOptions } from './write-snapshots.js';

import type { Cluster, ScheduledSnapshot } from './model.js';

/** The scheduled snapshot instants (capture times, µs) with the missed ones flagged. */
export function snapshotTimes(cluster: Cluster): readonly ScheduledSnapshot[] {
  return cluster.snapshots;
}
