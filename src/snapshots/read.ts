import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
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

/**
 * A file's bytes, gunzipped; `onBytes` sees them as stored (before gunzip), e.g. to checksum
 * them. With `scratch`, the result lives in a buffer it lends: a reader thread keeps each
 * file's bytes while it reads the next, long enough for a new buffer per file to outlive the
 * young generation and pile up until a full collection.
 */
export function readBytes(file: Pick<SnapshotFile, 'path' | 'gzip'>, onBytes?: (raw: Buffer) => void, scratch?: (size: number) => Buffer): Buffer {
  let bytes: Buffer;
  try {
    bytes = scratch && !file.gzip ? readInto(file.path, scratch) : readFileSync(file.path);
  } catch (e) {
    throw new CorruptFileError('unreadable file', (e as Error).message);
  }
  onBytes?.(bytes);
  if (file.gzip) {
    try {
      bytes = gunzipSync(bytes, { chunkSize: gunzippedSize(bytes) });
    } catch (e) {
      throw new CorruptFileError('corrupt gzip', `not a complete gzip stream (${(e as Error).message})`);
    }
    // A copy costs far less than the gunzip, and the fresh buffers then die young.
    if (scratch) bytes = copyInto(bytes, scratch);
  }
  if (bytes.length === 0) throw new CorruptFileError('empty file', 'the file is empty');
  return bytes;
}

function readInto(path: string, scratch: (size: number) => Buffer): Buffer {
  const fd = openSync(path, 'r');
  try {
    // A byte more than the size, so that a file that grew since is still read to its end.
    let buf = scratch(fstatSync(fd).size + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) return buf.subarray(0, n);
      n += got;
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafeSlow(2 * n);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function copyInto(bytes: Buffer, scratch: (size: number) => Buffer): Buffer {
  const into = scratch(bytes.length).subarray(0, bytes.length);
  bytes.copy(into);
  return into;
}

/**
 * Output chunk size for gunzip: the size the gzip trailer states (plus one byte, else zlib
 * asks for another chunk to find the end), so the text comes out as one buffer instead of
 * many 16 KB chunks copied together. The trailer is only a hint: a wrong one costs copies.
 */
function gunzippedSize(raw: Buffer): number {
  const stated = raw.length >= 18 ? raw.readUInt32LE(raw.length - 4) : 0;
  // Deflate never compresses more than about 1032 to 1.
  return Math.max(64 * 1024, Math.min(stated + 1, 1032 * raw.length));
}

export function readText(file: Pick<SnapshotFile, 'path' | 'gzip'>, onBytes?: (raw: Buffer) => void): string {
  return decodeText(readBytes(file, onBytes));
}

/**
 * One file's records as a reader thread sends them (see Extractor.read); every failure
 * becomes a CorruptFileError with a reason.
 */
export function readWire(file: Pick<SnapshotFile, 'path' | 'gzip'>, extractor: Extractor, fresh: boolean, onBytes?: (raw: Buffer) => void): WireSnapshot {
  const bytes = readBytes(file, onBytes, extractor.scratch);
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
