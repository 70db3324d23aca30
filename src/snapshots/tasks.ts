import { Extractor, type WireSnapshot } from './extract.js';
import type { SnapshotFile } from './files.js';
import { CorruptFileError, readWire, sha256 } from './read.js';

/**
 * What the reader pool does with a batch of consecutive files, in worker threads or
 * in-process alike: read each file and send its records as a delta from the previous one.
 */

/** `ingest` observes, and also checksums each file for the index's catalogue. */
export type TaskName = 'observe' | 'ai4os' | 'ingest';

/** `sha256`: the checksum of the file as stored, for `ingest`, when it could be read. */
export type TaskOutcome = ({ ok: true; value: WireSnapshot } | { ok: false; reason: string; message: string }) & { sha256?: string };

/**
 * `extractor` remembers the records of the last file it read: a worker thread keeps one for
 * all its batches; in-process each read gets its own, so two reads never mix.
 */
export function* runBatch(task: TaskName, files: readonly SnapshotFile[], extractor: Extractor = new Extractor()): Generator<TaskOutcome> {
  let fresh = true;
  for (const file of files) {
    let checksum: string | undefined;
    const onBytes = task === 'ingest' ? (raw: Buffer) => (checksum = sha256(raw)) : undefined;
    try {
      // The AI4OS method sums in file order, so it needs every line of every file.
      const wire = readWire(file, extractor, fresh || task === 'ai4os', onBytes);
      if (task === 'ai4os' && wire.kind !== 'legacy') {
        throw new CorruptFileError('native file', 'the AI4OS method reads only AI4OS legacy files; use --method exact for native snapshots');
      }
      fresh = false;
      yield { ok: true, value: wire, ...(checksum !== undefined && { sha256: checksum }) };
    } catch (e) {
      if (!(e instanceof CorruptFileError)) throw e;
      yield { ok: false, reason: e.reason, message: e.message, ...(checksum !== undefined && { sha256: checksum }) };
    }
  }
}
