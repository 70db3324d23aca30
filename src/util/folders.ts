import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p` that fails with the real cause. Node's recursive mkdir reports ENOENT when the
 * file system is read-only (or full, or the parent is not writable); the first missing
 * folder is then made on its own, which fails with the code that says why (EROFS, EACCES,
 * ENOSPC), and that error is thrown instead.
 */
export function makeFolder(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let missing = path;
    while (dirname(missing) !== missing && !existsSync(dirname(missing))) missing = dirname(missing);
    mkdirSync(missing);
    throw e;
  }
}

/** A write that failed for lack of room or of a writable file system: main.ts says so plainly. */
export function isStorageFailure(e: unknown): boolean {
  return ['ENOSPC', 'EDQUOT', 'EROFS'].includes((e as NodeJS.ErrnoException)?.code ?? '');
}
