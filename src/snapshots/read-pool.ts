import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { COMPILED, workerFile } from '../util/program-files.js';
import type { WireSnapshot } from './extract.js';
import type { SnapshotFile } from './files.js';
import { runBatch, type TaskName, type TaskOutcome } from './tasks.js';

/**
 * Reads snapshot files in worker threads (parsing is the cost of a cold report) and
 * yields the results strictly in file order. Each worker takes a batch of consecutive
 * files, so it can send each file as a small delta from the one before. At most two
 * batches per worker are in flight, so memory stays bounded whatever the corpus size.
 */

export type ReadOutcome = ({ file: SnapshotFile; ok: true; value: WireSnapshot } | { file: SnapshotFile; ok: false; reason: string; message: string }) & { sha256?: string };

export interface PoolOptions {
  /** Worker threads; 0 reads in-process. Default: the machine's cores, at most 4. */
  threads?: number;
  /** Files per batch. */
  batch?: number;
}

const WORKER_URL = workerFile('snapshots/read-worker.js');
/** From TypeScript sources (tests) there is no compiled worker: read in-process. */
const CAN_USE_WORKERS = COMPILED;
const DEFAULT_BATCH = 32;

export async function* readAll(task: TaskName, files: readonly SnapshotFile[], opts: PoolOptions = {}): AsyncGenerator<ReadOutcome> {
  const batch = Math.max(1, opts.batch ?? DEFAULT_BATCH);
  const threads = Math.min(opts.threads ?? Math.min(availableParallelism(), 4), Math.ceil(files.length / batch));
  if (!CAN_USE_WORKERS || threads <= 1) {
    let i = 0;
    for (const outcome of runBatch(task, files)) {
      // A turn of the event loop now and then: Ctrl-C is heard (and the terminal restored,
      // see cli/progress-bar.ts) during a long read, not after it.
      if (i > 0 && i % batch === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      yield withFile(files[i++]!, outcome);
    }
    return;
  }
  yield* readWithWorkers(task, files, threads, batch);
}

function withFile(file: SnapshotFile, o: TaskOutcome): ReadOutcome {
  const sum = o.sha256 !== undefined ? { sha256: o.sha256 } : {};
  return o.ok ? { file, ok: true, value: o.value, ...sum } : { file, ok: false, reason: o.reason, message: o.message, ...sum };
}

type WorkerReply = TaskOutcome & { id: number; fatal?: boolean };

async function* readWithWorkers(task: TaskName, files: readonly SnapshotFile[], threads: number, batch: number): AsyncGenerator<ReadOutcome> {
  const done = new Map<number, WorkerReply>();
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  let next = 0;
  // A reader's live data is one file and its records. The fast paths keep the file in
  // reused buffers, but gunzip and the file read still leave a new buffer per file that
  // only a young-generation collection frees; a small young generation collects often
  // enough that these do not pile up (with 16 MB, tens of MB per reader). A file that
  // takes the slow path is one large string and a parsed document: the old-generation cap,
  // sized to the largest file, leaves room for those while keeping their garbage bounded.
  const largestMb = Math.max(...files.map((f) => f.bytes ?? 0)) / 1_048_576;
  const resourceLimits = { maxOldGenerationSizeMb: Math.ceil(64 + 24 * largestMb * (files.some((f) => f.gzip) ? 8 : 1)), maxYoungGenerationSizeMb: 4 };
  // Loaded here: an ingest of a few files reads them in-process and has no use for it.
  const { Worker } = await import('node:worker_threads');
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_URL, { resourceLimits }));
  const idle: Worker[] = [...workers];
  /** Replies still owed per worker: a worker is idle again when its batch is all answered. */
  const owed = new Map<Worker, number>();

  const dispatch = (emitted: number) => {
    while (idle.length > 0 && next < files.length && next < emitted + 2 * threads * batch) {
      const w = idle.pop()!;
      const slice = files.slice(next, next + batch);
      owed.set(w, slice.length);
      w.postMessage({ first: next, task, files: slice });
      next += slice.length;
    }
  };
  for (const w of workers) {
    w.on('message', (reply: WorkerReply) => {
      if (reply.fatal) failure = new Error(reply.ok ? 'reader failed' : reply.message);
      done.set(reply.id, reply);
      const left = (owed.get(w) ?? 1) - 1;
      owed.set(w, left);
      if (left === 0) idle.push(w);
      wake?.();
    });
    w.on('error', (e) => {
      failure = e;
      wake?.();
    });
  }
  try {
    for (let emitted = 0; emitted < files.length; emitted++) {
      dispatch(emitted);
      while (!done.has(emitted)) {
        if (failure) throw failure;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        dispatch(emitted);
      }
      const reply = done.get(emitted)!;
      done.delete(emitted);
      yield withFile(files[emitted]!, reply);
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
