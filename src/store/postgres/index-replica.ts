import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { openIndex, type Db } from '../schema.js';

/**
 * The derived index in PostgreSQL (the index_* tables of migration 3) and its working copy:
 * a process copies the tables it needs into a SQLite database of the index's own schema
 * (store/schema.ts), so that the fold and the views run the very code the embedded store
 * runs, and the two stores answer byte for byte alike. A fold records which rows it touched
 * (triggers into a temporary table), and exactly those rows are written back, in one
 * transaction. See docs/store.md.
 */

interface IndexTable {
  /** The SQLite table; PostgreSQL's is index_<name>. */
  name: string;
  /** Columns as SQLite names them (PostgreSQL's are the same, quoted). */
  columns: readonly string[];
  /** PostgreSQL types, for the arrays rows travel in. */
  types: readonly string[];
  /**
   * What identifies a row: the rowid (tables whose rowid is no column of theirs keep it in a
   * `rowid` column in PostgreSQL), or the primary key's columns.
   */
  key: 'rowid' | readonly string[];
  /** Rows a report reads; the others only a fold needs. */
  read: boolean;
}

const TRACK_COLUMNS = [
  ['key', 'text'], ['namespace', 'text'], ['job_id', 'text'], ['job_name', 'text'], ['user', 'text'], ['grp', 'text'], ['component', 'text'], ['node', 'text'],
  ['cpu_milli', 'float8'], ['cpu_mhz', 'float8'], ['memory_bytes', 'float8'], ['disk_bytes', 'float8'], ['gpu', 'float8'],
  ['start_us', 'int8'], ['state', 'text'], ['last_holding_us', 'int8'], ['end_us', 'int8'], ['next_us', 'int8'], ['listed_terminal', 'int8'], ['next_kind', 'text'],
  ['listed_holding', 'int8'], ['listed', 'int8'], ['unlisted_holding', 'int8'], ['segment', 'int8'], ['slot', 'int8'],
] as const;

function table(name: string, columns: readonly (readonly [string, string])[], key: IndexTable['key'], read: boolean): IndexTable {
  return { name, columns: columns.map((c) => c[0]), types: columns.map((c) => c[1]), key, read };
}

export const INDEX_TABLES: readonly IndexTable[] = [
  table('meta', [['key', 'text'], ['value', 'text']], ['key'], true),
  table('snapshots', [
    ['name', 'text'], ['time_us', 'int8'], ['captured_us', 'int8'], ['kind', 'text'], ['bytes', 'int8'], ['mtime_ms', 'int8'], ['sha256', 'text'],
    ['corrupt', 'text'], ['detail', 'text'], ['covered', 'text'], ['failed', 'text'], ['record_skips', 'text'], ['allocations', 'int8'],
  ], ['name'], true),
  // Per-allocation reports read these (HistoryView.allocations); a plain report does not.
  table('allocations', TRACK_COLUMNS, 'rowid', false),
  table('live_allocations', TRACK_COLUMNS, 'rowid', true),
  table('ingest_runs', [['id', 'int8'], ['finished_at', 'text'], ['mode', 'text'], ['files', 'int8'], ['bytes', 'int8'], ['corrupt', 'int8'], ['seconds', 'float8'], ['reason', 'text'], ['lines', 'int8']], ['id'], true),
  table('folders', [['name', 'text'], ['mtime_ms', 'int8']], ['name'], true),
  table('names', [['id', 'int8'], ['value', 'text']], ['id'], true),
  table('segments', [['id', 'int8'], ['tracks', 'int8'], ['min_start_us', 'int8'], ['max_reach_us', 'int8'], ['data', 'bytea']], ['id'], true),
  table('flavours', [['id', 'int8'], ['amounts', 'bytea']], ['id'], true),
  table('journal_files', [['name', 'text'], ['source', 'text'], ['bytes', 'int8'], ['offset', 'int8'], ['line', 'int8']], ['name'], true),
  table('journal_sources', [['source', 'text'], ['watched', 'text'], ['last_key', 'int8'], ['open_start_us', 'int8'], ['open_end_us', 'int8']], ['source'], true),
  table('watched_stretches', [['source', 'text'], ['start_us', 'int8'], ['end_us', 'int8']], ['source', 'start_us'], true),
  table('journal_markers', [['snapshot', 'text']], ['snapshot'], true),
];

const quote = (identifier: string) => `"${identifier}"`;
const pgTable = (t: IndexTable) => `index_${t.name}`;
/** The columns a row travels with: the rowid first where it is kept apart. */
const pgColumns = (t: IndexTable) => (t.key === 'rowid' ? ['rowid', ...t.columns] : [...t.columns]);
const pgTypes = (t: IndexTable) => (t.key === 'rowid' ? ['int8', ...t.types] : [...t.types]);
const sqliteColumns = (t: IndexTable) => (t.key === 'rowid' ? ['rowid', ...t.columns] : [...t.columns]);

/** bigint as a number, as SQLite gives it: times in microseconds stay far below 2^53. */
export const NUMBERS = {
  getTypeParser: ((oid: number, format?: string) => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Copies the index tables into `db` (an index of the current schema), in place of what it
 * held, in one SQLite transaction: all of them for a fold, the ones reports read otherwise.
 * The caller's PostgreSQL transaction decides which committed state is copied.
 */
export async function copyIndex(client: pg.Client, db: Db, which: 'all' | 'read'): Promise<void> {
  const tables = INDEX_TABLES.filter((t) => which === 'all' || t.read);
  // One query at a time: a connection runs them in turn anyway.
  const rowsOf: pg.QueryResult<unknown[]>[] = [];
  for (const t of tables) {
    rowsOf.push(
      await client.query<unknown[]>({
        text: `SELECT ${pgColumns(t).map(quote).join(', ')} FROM ${pgTable(t)} ORDER BY ${(t.key === 'rowid' ? ['rowid'] : t.key).map(quote).join(', ')}`,
        rowMode: 'array',
        types: NUMBERS,
      }),
    );
  }
  db.transaction(() => {
    for (const t of INDEX_TABLES) db.exec(`DELETE FROM ${quote(t.name)}`);
    for (const [i, t] of tables.entries()) {
      const columns = sqliteColumns(t);
      const insert = db.prepare(`INSERT INTO ${quote(t.name)} (${columns.map(quote).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
      for (const row of rowsOf[i]!.rows) insert.run(row);
    }
    // The copy itself is no change to write back.
    forgetChanges(db);
  })();
}

/**
 * Records, in a temporary table, the key of every row of the index tables that an insert, an
 * update or a delete touches from now on. REPLACE removes a conflicting row without a delete
 * trigger unless triggers recurse, so they are made to.
 */
export function trackChanges(db: Db): void {
  db.pragma('recursive_triggers = ON');
  db.exec('CREATE TEMP TABLE IF NOT EXISTS changed_rows (tbl TEXT NOT NULL, k TEXT NOT NULL, PRIMARY KEY (tbl, k)) WITHOUT ROWID');
  for (const t of INDEX_TABLES) {
    const keyOf = (row: 'NEW' | 'OLD') => (t.key === 'rowid' ? `${row}.rowid` : t.key.length === 1 ? `${row}.${quote(t.key[0]!)}` : `json_array(${t.key.map((c) => `${row}.${quote(c)}`).join(', ')})`);
    const log = (row: 'NEW' | 'OLD') => `INSERT OR IGNORE INTO changed_rows VALUES ('${t.name}', ${keyOf(row)});`;
    db.exec(`
      CREATE TEMP TRIGGER IF NOT EXISTS track_${t.name}_insert AFTER INSERT ON main.${quote(t.name)} BEGIN ${log('NEW')} END;
      CREATE TEMP TRIGGER IF NOT EXISTS track_${t.name}_update AFTER UPDATE ON main.${quote(t.name)} BEGIN ${log('OLD')} ${log('NEW')} END;
      CREATE TEMP TRIGGER IF NOT EXISTS track_${t.name}_delete AFTER DELETE ON main.${quote(t.name)} BEGIN ${log('OLD')} END;
    `);
  }
}

/** Rows per statement when writing back: parameters are whole columns (arrays), so few statements. */
const BATCH_ROWS = 5000;
/** And at most about this many bytes of blobs (segments are large rows). */
const BATCH_BYTES = 16e6;
/** The protocol's limit on a statement's parameters. */
const MAX_PARAMETERS = 65_535;

/**
 * A table's rows in batches, read a batch at a time (a year's allocations do not all sit in
 * memory at once): by rowid where the table has one, else in key order.
 */
function* pages(db: Db, t: IndexTable, batchRows: number): Generator<unknown[][]> {
  const columns = sqliteColumns(t).map(quote).join(', ');
  const byRowid = t.key === 'rowid' || (t.key.length === 1 && t.types[t.columns.indexOf(t.key[0]!)] === 'int8');
  const next = byRowid
    ? db.prepare(`SELECT ${columns}, rowid FROM ${quote(t.name)} WHERE rowid > ? ORDER BY rowid LIMIT ${batchRows}`).raw(true)
    : db.prepare(`SELECT ${columns} FROM ${quote(t.name)} ORDER BY ${(t.key as readonly string[]).map(quote).join(', ')} LIMIT ${batchRows} OFFSET ?`).raw(true);
  let after = Number.MIN_SAFE_INTEGER;
  let offset = 0;
  for (;;) {
    const rows = next.all(byRowid ? after : offset) as unknown[][];
    if (rows.length === 0) return;
    // The rowid read last in each row is where the next page starts.
    if (byRowid) for (const r of rows) after = r.pop() as number;
    offset += rows.length;
    // Blobs make a batch large: split it by bytes as well.
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      for (const v of rows[i]!) if (Buffer.isBuffer(v)) bytes += v.length;
      if (bytes >= BATCH_BYTES) {
        yield rows.slice(start, i + 1);
        start = i + 1;
        bytes = 0;
      }
    }
    if (start < rows.length) yield rows.slice(start);
  }
}

/**
 * Writes the rows the fold touched back to PostgreSQL, inside the caller's transaction:
 * the touched keys are deleted there, and the rows they have now inserted. A fold that
 * started over (`everything`) replaces every table.
 */
export async function writeBack(client: pg.Client, db: Db, everything: boolean, batchRows = BATCH_ROWS): Promise<void> {
  for (const t of INDEX_TABLES) {
    const columns = sqliteColumns(t);
    const keyColumns = t.key === 'rowid' ? ['rowid'] : t.key;
    const keyTypes = keyColumns.map((c) => pgTypes(t)[pgColumns(t).indexOf(c)]!);
    const types = pgTypes(t);
    // Columns travel as arrays, one parameter each; a blob in an array would travel as hex
    // text, so rows with blobs go as rows of parameters, which the driver sends as bytes.
    const insert = async (batch: unknown[][]) => {
      if (!types.includes('bytea')) {
        await client.query(
          `INSERT INTO ${pgTable(t)} (${pgColumns(t).map(quote).join(', ')}) SELECT * FROM unnest(${types.map((type, j) => `$${j + 1}::${type}[]`).join(', ')})`,
          columns.map((_, j) => batch.map((r) => r[j])),
        );
        return;
      }
      const perStatement = Math.floor(MAX_PARAMETERS / columns.length);
      for (let i = 0; i < batch.length; i += perStatement) {
        const rows = batch.slice(i, i + perStatement);
        const values = rows.map((_, r) => `(${types.map((type, j) => `$${r * columns.length + j + 1}::${type}`).join(', ')})`).join(', ');
        await client.query(`INSERT INTO ${pgTable(t)} (${pgColumns(t).map(quote).join(', ')}) VALUES ${values}`, rows.flat());
      }
    };
    if (everything) {
      await client.query(`DELETE FROM ${pgTable(t)}`);
      for (const batch of pages(db, t, batchRows)) await insert(batch);
      continue;
    }
    // Keys as text: a rowid or an integer key is cast back; a pair travels as a JSON array.
    const keys = db.prepare("SELECT 1 FROM sqlite_temp_master WHERE name = 'changed_rows'").get() ? (db.prepare('SELECT k FROM changed_rows WHERE tbl = ?').pluck().all(t.name) as unknown[]) : [];
    if (keys.length === 0) continue;
    const keyColumnsOf = keyColumns.map((c, i) => (keyColumns.length === 1 ? keys.map(String) : keys.map((k) => (JSON.parse(String(k)) as unknown[])[i])));
    for (let i = 0; i < keys.length; i += batchRows) {
      const params = keyColumnsOf.map((values) => values.slice(i, i + batchRows));
      await client.query(
        `DELETE FROM ${pgTable(t)} WHERE (${keyColumns.map(quote).join(', ')}) IN (SELECT * FROM unnest(${keyTypes.map((type, j) => `$${j + 1}::${type}[]`).join(', ')}))`,
        params,
      );
    }
    const match = keyColumns.length === 1 ? `CAST(${quote(keyColumns[0]!)} AS TEXT)` : `json_array(${keyColumns.map(quote).join(', ')})`;
    const rows = db
      .prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${quote(t.name)} WHERE ${match} IN (SELECT k FROM changed_rows WHERE tbl = ?)`)
      .raw(true)
      .all(t.name) as unknown[][];
    for (let i = 0; i < rows.length; i += batchRows) await insert(rows.slice(i, i + batchRows));
  }
  forgetChanges(db);
}

function forgetChanges(db: Db): void {
  if (db.prepare("SELECT 1 FROM sqlite_temp_master WHERE name = 'changed_rows'").get()) db.exec('DELETE FROM changed_rows');
}

/** Whether this role may rewrite the index (the README's writer may; its reader may not). */
export async function canWriteIndex(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    `SELECT bool_and(has_table_privilege(t, 'INSERT') AND has_table_privilege(t, 'DELETE')) AS ok FROM unnest($1::text[]) AS t`,
    [INDEX_TABLES.map(pgTable)],
  );
  return r.rows[0]?.ok === true;
}

// Any constant: one fold at a time writes the index.
const FOLD_LOCK = 0x686f_7572_01;

/** Takes the fold's lock for the transaction; `waiting` hears when another process holds it. */
export async function lockIndex(client: pg.Client, waiting: () => void): Promise<void> {
  const r = await client.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS got', [FOLD_LOCK]);
  if (r.rows[0]?.got) return;
  waiting();
  await client.query('SELECT pg_advisory_xact_lock($1)', [FOLD_LOCK]);
}

/** The generation of the store's index, renewed by every fold that writes it; null before the first. */
export async function indexGeneration(client: pg.Client): Promise<string | null> {
  const r = await client.query<{ value: string }>("SELECT value FROM index_meta WHERE key = 'generation'");
  return r.rows[0]?.value ?? null;
}

/**
 * The copy's own bookkeeping, in a table of its own (never written back): the generation of
 * the store's index it was taken from, and whether it holds every table or the read ones.
 */
export function copyState(db: Db): { generation: string | null; tables: string | null } {
  const get = (key: string) => (db.prepare('SELECT value FROM copy_state WHERE key = ?').pluck().get(key) as string | undefined) ?? null;
  const stored = db.prepare("SELECT value FROM meta WHERE key = 'generation'").pluck().get() as string | undefined;
  return { generation: stored ?? null, tables: get('tables') };
}

export function setCopyState(db: Db, tables: 'all' | 'read'): void {
  db.prepare("INSERT OR REPLACE INTO copy_state (key, value) VALUES ('tables', ?)").run(tables);
}

/** Opens (or makes) the copy; one that cannot be opened or made (a read-only home, say) is taken in memory. */
export function openCopy(path: string): Db {
  let db: Db;
  try {
    db = openIndex(path, { create: true });
  } catch {
    db = openIndex(':memory:', { create: true });
  }
  db.exec('CREATE TABLE IF NOT EXISTS copy_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  return db;
}

/** Where the fold read each journal file to (bytes), as the copy records it. */
export function journalsReadTo(db: Db): Map<string, number> {
  return new Map((db.prepare('SELECT name, bytes FROM journal_files').all() as { name: string; bytes: number }[]).map((r) => [r.name, r.bytes]));
}

/** The capture mark the copy's index was derived at (see captureMark). */
export function captureMarkOf(db: Db): string | undefined {
  return db.prepare("SELECT value FROM meta WHERE key = 'capture_mark'").pluck().get() as string | undefined;
}

export function setCaptureMark(db: Db, mark: string): void {
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('capture_mark', ?)").run(mark);
}

/** Marks the index as changed: every other host's copy is then taken again. */
export function renewGeneration(db: Db, generation: string): void {
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)").run(generation);
}

/** Whether the copy holds no derived index at all (no snapshot taken in yet). */
export function indexIsEmpty(db: Db): boolean {
  return db.prepare('SELECT 1 FROM snapshots LIMIT 1').get() === undefined;
}

/** The generation of the store's index a host's copy was taken from; null when there is no copy (or none readable). */
export function copyGenerationAt(path: string): string | null {
  if (!existsSync(path)) return null;
  let db: Db | null = null;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    return (db.prepare("SELECT value FROM meta WHERE key = 'generation'").pluck().get() as string | undefined) ?? null;
  } catch {
    return null;
  } finally {
    db?.close();
  }
}
