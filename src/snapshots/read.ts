import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { SnapshotObservations } from '../accounting/types.js';
import type { NativeSnapshot } from './format.js';
import { detectKind, FormatError, observeLegacy, observeNative } from './observe.js';
import type { SnapshotFile } from './files.js';

/**
 * Reads one snapshot file into observations. Synchronous on purpose: it runs inside the
 * reader pool's worker threads, where blocking is the point.
 */

export class CorruptFileError extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

export function readDocument(file: Pick<SnapshotFile, 'path' | 'gzip'>): unknown {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file.path);
  } catch (e) {
    throw new CorruptFileError('unreadable file', (e as Error).message);
  }
  if (file.gzip) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new CorruptFileError('corrupt gzip', `not a complete gzip stream (${(e as Error).message})`);
    }
  }
  if (bytes.length === 0) throw new CorruptFileError('empty file', 'the file is empty');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new CorruptFileError('corrupt or truncated JSON', (e as Error).message);
  }
}

export function readSnapshot(file: SnapshotFile): SnapshotObservations {
  const doc = readDocument(file);
  try {
    const kind = detectKind(doc);
    if (kind === 'native') return observeNative(doc as NativeSnapshot, file.name, file.timeUs);
    return observeLegacy(doc as Record<string, unknown[]>, file.name, file.timeUs);
  } catch (e) {
    if (e instanceof FormatError) throw new CorruptFileError(e.reason, e.message);
    throw e;
  }
}
