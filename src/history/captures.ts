import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { listSnapshots, type SnapshotFile } from '../snapshots/files.js';
import { DataError } from '../util/errors.js';

/**
 * The captures themselves, for the commands that read snapshot files rather than the index
 * (`top` and `check` read the newest, `summarize` counts jobs, `quota` replays the past):
 * a snapshot folder, or the PostgreSQL store's documents and journals written out into a
 * private folder of the same layout as they are asked for.
 */
export interface Captures {
  /** The folder the files are (or are written) in. */
  readonly dir: string;
  /** The snapshot files, oldest first; their paths are under `dir`. */
  readonly files: SnapshotFile[];
  /** A folder's JSON files whose name carries no capture time (see Listing); a store has none. */
  readonly unnamed: string[];
  /** Makes these files readable at their paths (a folder's already are). */
  fetch(files: readonly SnapshotFile[]): Promise<void>;
  /** Makes the watchers' journals readable under `dir`: each source's `newest` files, or all. */
  fetchJournals(newest?: number): Promise<void>;
  close(): Promise<void>;
}

export async function openCaptures(o: { dir: string; store: { connect(): Promise<pg.Client> } | null; warn?: (line: string) => void }): Promise<Captures> {
  if (!o.store) {
    const { files, unnamed } = await listSnapshots(o.dir, '--snapshots', { stat: false, warn: o.warn });
    return { dir: o.dir, files, unnamed, fetch: async () => {}, fetchJournals: async () => {}, close: async () => {} };
  }
  const { listDocuments, writeDocuments, writeJournals } = await import('../store/postgres/capture-files.js');
  const { requireSchema } = await import('../store/postgres/schema.js');
  const client = await o.store.connect();
  const dir = mkdtempSync(join(tmpdir(), 'hourmeter-captures-'));
  const close = async () => {
    rmSync(dir, { recursive: true, force: true });
    await client.end().catch(() => undefined);
  };
  try {
    await requireSchema(client);
    const files = await listDocuments(client, dir);
    return {
      dir,
      files,
      unnamed: [],
      fetch: (wanted) => writeDocuments(client, dir, wanted.map((f) => f.name)),
      fetchJournals: (newest) => writeJournals(client, dir, newest),
      close,
    };
  } catch (e) {
    await close();
    throw e instanceof DataError ? e : new DataError(`the PostgreSQL store: ${(e as Error).message}`);
  }
}
