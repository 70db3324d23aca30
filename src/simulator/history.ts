/** Writes a simulated snapshot history to a folder, one file per written snapshot. */

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createCluster } from './cluster.js';
import type { Cluster, SimAlloc } from './model.js';
import type { SimulatorOptions, SnapshotFormat } from './options.js';
import { createSerializer, snapshotFileName } from './render.js';
import { StateCursor, gcWindowUs } from './state.js';
import { buildTruth, markObserved, type Truth } from './truth.js';

export interface WriteHistoryOptions extends SimulatorOptions {
  format: SnapshotFormat;
  /** Where to write the ground truth as JSON; never inside the snapshot folder. */
  truthPath?: string;
  /** Reuse an already generated cluster (the generation options above are then ignored). */
  cluster?: Cluster;
  /** Called after each scheduled snapshot (written or missed). */
  onProgress?: (done: number, total: number) => void;
}

export interface HistoryResult {
  files: number;
  bytes: number;
  truth: Truth;
  cluster: Cluster;
}

/** Write-then-rename, so a reader never sees half a file. Dot-prefixed and not .json, so skipped. */
async function atomicWrite(path: string, content: string): Promise<void> {
  const tmp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.${process.pid}.tmp`);
  await writeFile(tmp, content);
  await rename(tmp, path);
}

export async function writeHistory(dir: string, options: WriteHistoryOptions): Promise<HistoryResult> {
  const { format, truthPath, onProgress } = options;
  const cluster = options.cluster ?? createCluster(options);
  await mkdir(dir, { recursive: true });
  const cursor = new StateCursor(cluster, gcWindowUs(cluster, { gcMinutes: options.gcMinutes, format }));
  const serializer = createSerializer(format, cluster);
  const seen = new Set<SimAlloc>();
  let files = 0;
  let bytes = 0;
  // One write in flight while the next snapshot is rendered: overlaps CPU and I/O
  // without holding more than two files in memory.
  let pending: Promise<void> = Promise.resolve();
  const total = cluster.snapshots.length;
  for (let i = 0; i < total; i++) {
    const s = cluster.snapshots[i];
    if (s && !s.missed) {
      const state = cursor.at(s.timeUs);
      markObserved(state, format, seen);
      const content = serializer.serialize(state);
      await pending;
      pending = atomicWrite(join(dir, snapshotFileName(format, s.timeUs)), content);
      // Handled at the next await; this only keeps Node from calling it unhandled meanwhile.
      pending.catch(() => undefined);
      files++;
      bytes += Buffer.byteLength(content);
    }
    onProgress?.(i + 1, total);
  }
  await pending;
  const truth = buildTruth(cluster, seen, format);
  if (truthPath) {
    await mkdir(dirname(truthPath), { recursive: true });
    await atomicWrite(
      truthPath,
      JSON.stringify({
        generator: 'hourmeter simulator',
        format,
        seed: cluster.options.seed,
        horizon: new Date(truth.horizonUs / 1000).toISOString(),
        horizonUs: truth.horizonUs,
        // Each lifetime carries its own `observable` flag; the observable list is a filter of it.
        lifetimes: truth.all,
      }),
    );
  }
  return { files, bytes, truth, cluster };
}
