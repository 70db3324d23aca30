import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { SnapshotObservations } from '../accounting/types.js';
import { FormatError } from './detect.js';
import { decodeText, Extractor, type WireSnapshot } from './extract.js';
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

/** A file's bytes, gunzipped; `onBytes` sees them as stored (before gunzip), e.g. to checksum them. */
export function readBytes(file: Pick<SnapshotFile, 'path' | 'gzip'>, onBytes?: (raw: Buffer) => void): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file.path);
  } catch (e) {
    throw new CorruptFileError('unreadable file', (e as Error).message);
  }
  onBytes?.(bytes);
  if (file.gzip) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new CorruptFileError('corrupt gzip', `not a complete gzip stream (${(e as Error).message})`);
    }
  }
  if (bytes.length === 0) throw new CorruptFileError('empty file', 'the file is empty');
  return bytes;
}

export function readText(file: Pick<SnapshotFile, 'path' | 'gzip'>, onBytes?: (raw: Buffer) => void): string {
  return decodeText(readBytes(file, onBytes));
}

/**
 * One file's records as a reader thread sends them (see Extractor.read); every failure
 * becomes a CorruptFileError with a reason.
 */
export function readWire(file: Pick<SnapshotFile, 'path' | 'gzip'>, extractor: Extractor, fresh: boolean, onBytes?: (raw: Buffer) => void): WireSnapshot {
  const bytes = readBytes(file, onBytes);
  try {
    return extractor.readBytes(bytes, fresh);
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

/** The SHA-256 of a file's bytes as stored, in hex: the catalogue's checksum. */
export function sha256(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex');
}

/** The checksum of a file on disk, or null when it cannot be read. */
export function fileChecksum(path: string): string | null {
  try {
    return sha256(readFileSync(path));
  } catch {
    return null;
  }
}
