import type pg from 'pg';
import { parseCaptureMark } from './capture-files.js';
import { NUMBERS } from './index-replica.js';
import { SCHEMA_VERSION } from './schema.js';

/** What `hourmeter store status` says of a store: what it holds, and how far its index has come. */
export interface StoreStatus {
  /** The schema's version, and this hourmeter's. */
  schema: number;
  latest: number;
  documents: number;
  journalLines: number;
  /** Bytes the documents take in the database (table, compressed storage and indexes). */
  storedBytes: number;
  /** The counts the index was derived at; null before the first fold. */
  derivedFrom: { documents: number; journalLines: number } | null;
  /** The fold that last wrote the index, if any. */
  lastFold: { finishedAt: string; mode: string; files: number; lines: number; seconds: number } | null;
  /** Watchers whose journals the index has taken in. */
  watchers: number;
  /** The index's generation (see docs/store.md), null before the first fold. */
  generation: string | null;
}

/** Reads the status; a schema older than the capture counts (5) reports what it can. */
export async function storeStatus(client: pg.Client): Promise<StoreStatus> {
  const schema = (await client.query<{ v: number | null }>("SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE (SELECT max(version) FROM schema_migrations) END AS v")).rows[0]?.v ?? 0;
  const empty: StoreStatus = { schema, latest: SCHEMA_VERSION, documents: 0, journalLines: 0, storedBytes: 0, derivedFrom: null, lastFold: null, watchers: 0, generation: null };
  if (schema < SCHEMA_VERSION) return empty;
  const counts = new Map((await client.query<{ captures: string; rows: number }>({ text: 'SELECT captures, rows FROM capture_counts', types: NUMBERS })).rows.map((r) => [r.captures, r.rows]));
  const size = await client.query<{ bytes: number }>({ text: "SELECT pg_total_relation_size('snapshot_documents') AS bytes", types: NUMBERS });
  const meta = new Map((await client.query<{ key: string; value: string }>("SELECT key, value FROM index_meta WHERE key IN ('capture_mark', 'generation')")).rows.map((r) => [r.key, r.value]));
  const fold = await client.query<{ finished_at: string; mode: string; files: number; lines: number; seconds: number }>({
    text: 'SELECT finished_at, mode, files, lines, seconds FROM index_ingest_runs ORDER BY id DESC LIMIT 1',
    types: NUMBERS,
  });
  const watchers = await client.query<{ n: number }>({ text: 'SELECT count(*) AS n FROM index_journal_sources', types: NUMBERS });
  const mark = meta.get('capture_mark');
  const f = fold.rows[0];
  return {
    ...empty,
    documents: counts.get('snapshot_documents') ?? 0,
    journalLines: counts.get('journal_lines') ?? 0,
    storedBytes: size.rows[0]?.bytes ?? 0,
    derivedFrom: mark ? parseCaptureMark(mark) : null,
    lastFold: f ? { finishedAt: f.finished_at, mode: f.mode, files: f.files, lines: f.lines, seconds: f.seconds } : null,
    watchers: watchers.rows[0]?.n ?? 0,
    generation: meta.get('generation') ?? null,
  };
}
