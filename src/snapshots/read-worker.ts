import { parentPort } from 'node:worker_threads';
import { CorruptFileError } from './read.js';
import { runTask, type TaskName } from './tasks.js';
import type { SnapshotFile } from './files.js';

/** Worker side of the reader pool: parse files off the main thread. */
parentPort!.on('message', (msg: { id: number; task: TaskName; file: SnapshotFile }) => {
  try {
    parentPort!.postMessage({ id: msg.id, ok: true, value: runTask(msg.task, msg.file) });
  } catch (e) {
    const reason = e instanceof CorruptFileError ? e.reason : 'unreadable file';
    parentPort!.postMessage({ id: msg.id, ok: false, reason, message: (e as Error).message });
  }
});
