import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { SnapshotObservations } from '../accounting/types.js';
import { FormatError } from './detect.js';
import { GZIP_FLOOR_BYTES, GZIP_MAX_RATIO, gunzipCap, MAX_JSON_BYTES } from './limits.js';
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
    if (e instanceof CorruptFileError) throw e;
    throw new CorruptFileError('unreadable file', (e as Error).message);
  }
  onBytes?.(bytes);
  if (file.gzip) {
    const cap = gunzipCap(bytes.length);
    try {
      // zlib stops at the cap: a gzip bomb costs no more memory than that.
      bytes = gunzipSync(bytes, { chunkSize: gunzippedSize(bytes, cap), maxOutputLength: cap });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new CorruptFileError('gzip bomb', overCap(bytes.length, cap));
      throw new CorruptFileError('corrupt gzip', `not a complete gzip stream (${(e as Error).message})`);
    }
    // A copy costs far less than the gunzip, and the fresh buffers then die young.
    if (scratch) bytes = copyInto(bytes, scratch);
  } else if (bytes.length > MAX_JSON_BYTES) {
    throw tooLarge(bytes.length);
  }
  // A UTF-8 byte order mark, as some editors write one: not part of the JSON.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (bytes.length === 0) throw new CorruptFileError('empty file', 'the file is empty');
  return bytes;
}

const tooLarge = (size: number) => new CorruptFileError('file too large', `${sizeText(size)}; hourmeter reads at most ${sizeText(MAX_JSON_BYTES)} of JSON from one file`);

function overCap(compressed: number, cap: number): string {
  if (cap === MAX_JSON_BYTES) return `it unzips to more than ${sizeText(cap)}, the most hourmeter reads from one file`;
  return `it unzips to more than ${sizeText(cap)} from ${sizeText(compressed)}; hourmeter unzips a file to at most ${GZIP_MAX_RATIO} times its size (and always up to ${sizeText(GZIP_FLOOR_BYTES)}), as no snapshot shrinks that much`;
}

function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function readInto(path: string, scratch: (size: number) => Buffer): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_JSON_BYTES) throw tooLarge(size);
    // A byte more than the size, so that a file that grew since is still read to its end.
    let buf = scratch(size + 1);
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
function gunzippedSize(raw: Buffer, cap: number): number {
  const stated = raw.length >= 18 ? raw.readUInt32LE(raw.length - 4) : 0;
  // Deflate never compresses more than about 1032 to 1.
  return Math.max(64 * 1024, Math.min(stated + 1, 1032 * raw.length, cap + 1));
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
