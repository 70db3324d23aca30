import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { SnapshotObservations } from '../accounting/types.js';
import { FormatError } from './detect.js';
import { Extractor, type WireSnapshot } from './extract.js';
import { isAscii } from 'node:buffer';
import type { SnapshotFile } from './files.js';
import { observeWire } from './observe.js';

/**
 * Reading one snapshot file. Synchronous on purpose: it runs inside the reader pool's
 * worker threads, where blocking is the point.
 */

export class CorruptFileError extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

export function readText(file: Pick<SnapshotFile, 'path' | 'gzip'>): string {
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
  // AI4OS files are ASCII (Python escapes the rest), and latin1 decodes ASCII faster than utf8.
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * One file's records as a reader thread sends them (see Extractor.read); every failure
 * becomes a CorruptFileError with a reason.
 */
export function readWire(file: Pick<SnapshotFile, 'path' | 'gzip'>, extractor: Extractor, fresh: boolean): WireSnapshot {
  const text = readText(file);
  try {
    return extractor.read(text, fresh);
  } catch (e) {
    if (e instanceof SyntaxError) throw new CorruptFileError('corrupt or truncated JSON', e.message);
    if (e instanceof FormatError) throw new CorruptFileError(e.reason, e.message);
    throw e;
  }
}

/** One file's observations, read in-process (tests and one-off use). */
export function readSnapshot(file: SnapshotFile): SnapshotObservations {
  return observeWire(readWire(file, new Extractor(), true), file.name, file.timeUs);
}
