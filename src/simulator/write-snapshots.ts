/** Writes a simulated snapshot history to a folder, one file per written snapshot. */

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { createCluster } from './cluster.js';
import type { Cluster } from './model.js';
import type { SimulatorOptions, SnapshotFormat } from './options.js';
import { createSerializer, snapshotFileName } from './render.js';
import { StateCursor, gcWindowUs } from './state.js';
import { buildTruth, emptyObserved, markObserved, type Truth } from './truth.js';
import { formatTimestamp } from '../util/time.js';

export interface WriteHistoryOptions extends SimulatorOptions {
  format: SnapshotFormat;
  /** Where to write the ground truth as JSON; never inside the snapshot folder. */
  truthPath?: string;
  /** Reuse an already generated cluster (the generation options above are then ignored). */
  cluster?: Cluster;
  /** Called after each scheduled snapshot (written or missed). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Write each snapshot gzip-compressed, as `<name>.gz` (so `….json.gz`). Compression runs on
   * libuv's thread pool while the next snapshot is rendered. Default false.
   */
  gzip?: boolean;
  /** zlib level when `gzip` is set: 1 (fastest) to 9 (smallest). Default 6. */
  gzipLevel?: number;
}

export interface HistoryResult {
  files: number;
  /** The snapshots' JSON size, uncompressed. */
  bytes: number;
  /** What the snapshot files take as stored: the compressed size under `gzip`, else `bytes`. */
  storedBytes: number;
  truth: Truth;
  cluster: Cluster;
}

/** Write-then-rename, so a reader never sees half a file. Dot-prefixed and not .json, so skipped. */
async function atomicWrite(path: string, content: string | Buffer): Promise<void> {
  const tmp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.${process.pid}.tmp`);
  await writeFile(tmp, content);
  await rename(tmp, path);
}

const gzipAsync = promisify(gzipCallback);

export async function writeHistory(dir: string, options: WriteHistoryOptions): Promise<HistoryResult> {
  const { format, truthPath, onProgress } = options;
  const gzip = options.gzip ?? false;
  const gzipLevel = options.gzipLevel ?? 6;
  if (gzip && !(Number.isInteger(gzipLevel) && gzipLevel >= 1 && gzipLevel <= 9)) {
    throw new RangeError(`gzipLevel must be an integer from 1 to 9, got ${gzipLevel}`);
  }
  const cluster = options.cluster ?? createCluster(options);
  await mkdir(dir, { recursive: true });
  const cursor = new StateCursor(cluster, gcWindowUs(cluster, { gcMinutes: options.gcMinutes, format }));
  const serializer = createSerializer(format, cluster);
  const observed = emptyObserved();
  let files = 0;
  let bytes = 0;
  let storedBytes = 0;
  // One write in flight while the next snapshot is rendered: overlaps CPU and I/O
  // without holding more than two files in memory.
  let pending: Promise<void> = Promise.resolve();
  const total = cluster.snapshots.length;
  for (let i = 0; i < total; i++) {
    const s = cluster.snapshots[i];
    if (s && !s.missed) {
      const state = cursor.at(s.timeUs);
      markObserved(state, format, observed);
      const content = serializer.serialize(state);
      const path = join(dir, snapshotFileName(format, s.timeUs));
      await pending;
      pending = gzip
        ? gzipAsync(content, { level: gzipLevel }).then((z) => {
            storedBytes += z.length;
            return atomicWrite(`${path}.gz`, z);
          })
        : atomicWrite(path, content);
      // Handled at the next await; this only keeps Node from calling it unhandled meanwhile.
      pending.catch(() => undefined);
      files++;
      const length = Buffer.byteLength(content);
      bytes += length;
      if (!gzip) storedBytes += length;
    }
    onProgress?.(i + 1, total);
  }
  await pending;
  const truth = buildTruth(cluster, observed, format);
  if (truthPath) {
    await mkdir(dirname(truthPath), { recursive: true });
    await atomicWrite(
      truthPath,
      JSON.stringify({
        generator: 'hourmeter simulator',
        format,
        seed: cluster.options.seed,
        horizon: formatTimestamp(truth.horizonUs),
        horizonUs: truth.horizonUs,
        // Each lifetime carries its own `observable` flag; the observable list is a filter of it.
        lifetimes: truth.all,
      }),
    );
  }
  return { files, bytes, storedBytes, truth, cluster };
}
