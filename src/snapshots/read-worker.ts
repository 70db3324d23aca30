import { parentPort } from 'node:worker_threads';
import type { SnapshotFile } from './files.js';
import { Extractor } from './extract.js';
import { runBatch, type TaskName } from './tasks.js';

/** One per thread: files of the same batch are sent as deltas against each other. */
const extractor = new Extractor();

/** Worker side of the reader pool: read batches of files off the main thread. */
parentPort!.on('message', (msg: { first: number; task: TaskName; files: SnapshotFile[] }) => {
  let id = msg.first;
  try {
    for (const outcome of runBatch(msg.task, msg.files, extractor)) parentPort!.postMessage({ id: id++, ...outcome });
  } catch (e) {
    parentPort!.postMessage({ id, ok: false, reason: 'unreadable file', message: (e as Error).message, fatal: true });
  }
});
