import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SnapshotFile } from './files.js';
import { CorruptFileError } from './read.js';
import { runTask, type TaskName, type TaskResults } from './tasks.js';

/**
 * Reads snapshot files in parallel worker threads (JSON parsing is the cost of a cold
 * report) and yields the results strictly in input order. At most `window` files are in
 * flight, so memory stays bounded whatever the corpus size.
 */

export type ReadOutcome<T> = { file: SnapshotFile; ok: true; value: T } | { file: SnapshotFile; ok: false; reason: string; message: string };

export interface PoolOptions {
  /** Worker threads; 0 reads in-process. Default: the machine's cores, at most 4. */
  threads?: number;
}

const WORKER_URL = new URL('./read-worker.js', import.meta.url);
/** Worker threads need the compiled .js worker; from TypeScript sources (tests) read in-process. */
const CAN_USE_WORKERS = import.meta.url.endsWith('.js');

export async function* readAll<T extends TaskName>(
  task: T,
  files: readonly SnapshotFile[],
  opts: PoolOptions = {},
): AsyncGenerator<ReadOutcome<TaskResults[T]>> {
  const threads = Math.min(opts.threads ?? Math.min(availableParallelism(), 4), files.length);
  if (!CAN_USE_WORKERS || threads <= 1 || files.length < 4) {
    for (const file of files) yield readInProcess(task, file);
    return;
  }
  yield* readWithWorkers(task, files, threads);
}

function readInProcess<T extends TaskName>(task: T, file: SnapshotFile): ReadOutcome<TaskResults[T]> {
  try {
    return { file, ok: true, value: runTask(task, file) };
  } catch (e) {
    if (e instanceof CorruptFileError) return { file, ok: false, reason: e.reason, message: e.message };
    throw e;
  }
}

type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; reason: string; message: string };

async function* readWithWorkers<T extends TaskName>(task: T, files: readonly SnapshotFile[], threads: number): AsyncGenerator<ReadOutcome<TaskResults[T]>> {
  const window = threads * 3;
  const done = new Map<number, WorkerReply>();
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  let next = 0;
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_URL));
  const idle: Worker[] = [...workers];

  const dispatch = (emitted: number) => {
    while (idle.length > 0 && next < files.length && next < emitted + window) {
      const w = idle.pop()!;
      w.postMessage({ id: next, task, file: files[next] });
      next++;
    }
  };
  for (const w of workers) {
    w.on('message', (reply: WorkerReply) => {
      done.set(reply.id, reply);
      idle.push(w);
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
      const file = files[emitted]!;
      yield reply.ok ? { file, ok: true, value: reply.value as TaskResults[T] } : { file, ok: false, reason: reply.reason, message: reply.message };
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
