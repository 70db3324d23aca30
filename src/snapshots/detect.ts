import { NATIVE_FORMAT, NATIVE_VERSION } from './format.js';

/** Telling a native snapshot from an AI4OS one, by content. */

export class FormatError extends Error {
  constructor(
    message: string,
    readonly reason = 'unknown file format',
  ) {
    super(message);
  }
}

export type SnapshotKind = 'native' | 'legacy';

export function detectKind(doc: unknown): SnapshotKind {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new FormatError('expected a JSON object (a native hourmeter snapshot or an AI4OS {namespace: [job, ...]} file)');
  }
  const obj = doc as Record<string, unknown>;
  if ('format' in obj) {
    if (obj.format !== NATIVE_FORMAT) throw new FormatError(`"format" is ${JSON.stringify(obj.format)}, expected "${NATIVE_FORMAT}"`);
    if (obj.version !== NATIVE_VERSION) {
      throw new FormatError(`version ${JSON.stringify(obj.version)}: this hourmeter reads version ${NATIVE_VERSION}; upgrade hourmeter`, 'unsupported snapshot version');
    }
    return 'native';
  }
  for (const value of Object.values(obj)) {
    if (!Array.isArray(value)) {
      throw new FormatError('neither a native hourmeter snapshot (no "format" key) nor an AI4OS file (values must be job lists)');
    }
  }
  return 'legacy';
}

