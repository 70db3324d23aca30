import { mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { parseSnapshotName, type SnapshotFile } from '../../snapshots/files.js';
import type { CaptureFetch } from '../ingest.js';
import { NUMBERS } from './index-replica.js';

/**
 * The stored captures as the fold reads them: a listing of the snapshot documents like a
 * folder's, and the documents and journal files written out, when the fold asks, into a
 * private folder laid out as a snapshot folder is. Only what the fold reads is written out:
 * a journal file it has read to the end is a file of the right size with nothing in it.
 */

/** What changes whenever a capture arrives: how many documents and journal lines are stored (capture_counts). */
export async function captureMark(client: pg.Client): Promise<string> {
  const r = await client.query<{ captures: string; rows: string }>('SELECT captures, rows FROM capture_counts ORDER BY captures');
  return r.rows.map((row) => `${row.captures}=${row.rows}`).join(' ');
}

/** The counts a capture mark holds: documents and journal lines. */
export function parseCaptureMark(mark: string): { documents: number; journalLines: number } {
  const counts = new Map(mark.split(' ').map((part) => [part.split('=')[0]!, Number(part.split('=')[1])]));
  return { documents: counts.get('snapshot_documents') ?? 0, journalLines: counts.get('journal_lines') ?? 0 };
}

/** The snapshot documents as a listing of files under `dir`, in listing order. Documents never change: their mtime is 0. */
export async function listDocuments(client: pg.Client, dir: string): Promise<SnapshotFile[]> {
  const r = await client.query<{ name: string; bytes: number }>({ text: 'SELECT name, octet_length(content) AS bytes FROM snapshot_documents', types: NUMBERS });
  const files: SnapshotFile[] = [];
  for (const row of r.rows) {
    if (!safeName(row.name)) continue;
    const parsed = parseSnapshotName(row.name.slice(row.name.lastIndexOf('/') + 1));
    if (!parsed) continue;
    files.push({ path: join(dir, row.name), name: row.name, ...parsed, bytes: row.bytes, mtimeMs: 0 });
  }
  return files.sort((a, b) => a.timeUs - b.timeUs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A relative path that stays inside the folder it is written to: no `..`, no empty or absolute part. */
const safeName = (name: string) => name.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !part.includes('\\'));

interface StoredJournal {
  file: string;
  lines: number;
  bytes: number;
}

async function storedJournals(client: pg.Client): Promise<StoredJournal[]> {
  const r = await client.query<StoredJournal>({
    text: "SELECT file, count(*) AS lines, sum(octet_length(line) + 1) AS bytes FROM journal_lines GROUP BY file ORDER BY file",
    types: NUMBERS,
  });
  return r.rows.filter((j) => safeName(j.file) && j.file.startsWith('journal/'));
}

/** Documents fetched per query: a few MB each. */
const DOCUMENTS_PER_QUERY = 16;

/** Writes the named documents under `dir`, at their names. */
export async function writeDocuments(client: pg.Client, dir: string, names: readonly string[]): Promise<void> {
  for (let i = 0; i < names.length; i += DOCUMENTS_PER_QUERY) {
    // As base64: bytea comes as hex text otherwise, twice the bytes on the wire and to decode.
    const r = await client.query<{ name: string; content: string }>("SELECT name, encode(content, 'base64') AS content FROM snapshot_documents WHERE name = ANY($1::text[])", [
      names.slice(i, i + DOCUMENTS_PER_QUERY),
    ]);
    for (const row of r.rows) {
      if (!safeName(row.name)) continue;
      const path = join(dir, row.name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, Buffer.from(row.content, 'base64'));
    }
  }
}

/** Writes every journal file in full under `dir`, or each source's newest `newest` files. */
export async function writeJournals(client: pg.Client, dir: string, newest = Infinity): Promise<void> {
  const journals = await storedJournals(client);
  const bySource = new Map<string, StoredJournal[]>();
  for (const j of journals) {
    const source = j.file.split('/')[1]!;
    bySource.set(source, [...(bySource.get(source) ?? []), j]);
  }
  for (const files of bySource.values()) {
    for (const j of files.slice(Math.max(0, files.length - newest))) {
      mkdirSync(dirname(join(dir, j.file)), { recursive: true });
      await writeJournal(client, dir, j);
    }
  }
}

async function writeJournal(client: pg.Client, dir: string, j: StoredJournal): Promise<void> {
  const r = await client.query<{ line: string }>('SELECT line FROM journal_lines WHERE file = $1 ORDER BY line_number', [j.file]);
  writeFileSync(join(dir, j.file), r.rows.map((row) => `${row.line}\n`).join(''));
}

/**
 * Lays the journals out under `dir` and returns the fetch the fold uses. `readTo` says how far
 * the index has read each journal file (bytes): a file read to its end needs no content.
 */
export async function captureFetch(client: pg.Client, dir: string, readTo: ReadonlyMap<string, number>): Promise<CaptureFetch> {
  const journals = await storedJournals(client);
  for (const j of journals) {
    mkdirSync(dirname(join(dir, j.file)), { recursive: true });
    if (readTo.get(j.file) === j.bytes) {
      writeFileSync(join(dir, j.file), '');
      truncateSync(join(dir, j.file), j.bytes);
    } else {
      await writeJournal(client, dir, j);
    }
  }
  return {
    snapshots: (files) => writeDocuments(client, dir, files.map((f) => f.name)),
    release: async (files) => {
      for (const f of files) rmSync(f.path, { force: true });
    },
    journals: async () => {
      for (const j of journals) if (readTo.get(j.file) === j.bytes) await writeJournal(client, dir, j);
    },
  };
}

/**
 * Brings the journal files under `dir` up to the stored lines, rewriting in full each file
 * that had lines arrive since `since` (an arrival number; null the first time: every file).
 * Transactions commit out of arrival order now and then, so the files of the last few
 * thousand arrivals are looked at again. Returns the arrival to pass next time.
 */
export async function refreshJournals(client: pg.Client, dir: string, since: number | null): Promise<number> {
  const lookback = 10_000;
  const r = await client.query<{ file: string; last: number }>({
    text: 'SELECT file, max(arrival) AS last FROM journal_lines WHERE arrival > $1 GROUP BY file ORDER BY file',
    values: [since === null ? 0 : Math.max(0, since - lookback)],
    types: NUMBERS,
  });
  let last = since ?? 0;
  for (const row of r.rows) {
    if (!safeName(row.file) || !row.file.startsWith('journal/')) continue;
    mkdirSync(dirname(join(dir, row.file)), { recursive: true });
    await writeJournal(client, dir, { file: row.file, lines: 0, bytes: 0 });
    last = Math.max(last, row.last);
  }
  return last;
}
