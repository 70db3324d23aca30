import { ai4osSnapshotOf, type Ai4osSnapshot } from '../accounting/ai4os.js';
import type { SnapshotFile } from './files.js';
import { detectKind, FormatError } from './observe.js';
import { CorruptFileError, readDocument, readSnapshot } from './read.js';
import { encodeSnapshot, type WireSnapshot } from './wire.js';

/** What the reader pool can do with one file; run in worker threads or in-process alike. */
export interface TaskResults {
  /** Observations in wire form (see wire.ts). */
  observe: WireSnapshot;
  ai4os: Ai4osSnapshot;
}
export type TaskName = keyof TaskResults;

export function runTask<T extends TaskName>(task: T, file: SnapshotFile): TaskResults[T] {
  if (task === 'observe') return encodeSnapshot(readSnapshot(file)) as TaskResults[T];
  const doc = readDocument(file);
  try {
    if (detectKind(doc) !== 'legacy') {
      throw new CorruptFileError('native file', 'the AI4OS method reads only AI4OS legacy files; use --method exact for native snapshots');
    }
  } catch (e) {
    if (e instanceof FormatError) throw new CorruptFileError(e.reason, e.message);
    throw e;
  }
  return ai4osSnapshotOf(doc as Record<string, unknown[]>) as TaskResults[T];
}
