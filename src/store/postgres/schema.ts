import type pg from 'pg';

/**
 * The PostgreSQL store's schema, versioned: each migration runs once, in order, and
 * `schema_migrations` records which ones the database has. `hourmeter store migrate` applies
 * what is missing in one transaction, so a failed migration leaves the database as it was.
 */

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'capture tables',
    // The captures, append-only and exactly as the files hold them: they stay the source of
    // truth, and everything derived from them can be rebuilt. The natural keys make a second
    // import of the same files add nothing.
    sql: `
CREATE TABLE snapshot_documents (
  name text PRIMARY KEY,
  captured_at timestamptz NOT NULL,
  content bytea NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE snapshot_documents IS 'Snapshot files, byte for byte, by their name in the snapshot folder; append-only.';

CREATE TABLE journal_lines (
  source text NOT NULL,
  file text NOT NULL,
  line_number integer NOT NULL CHECK (line_number >= 1),
  line text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, file, line_number)
);
COMMENT ON TABLE journal_lines IS 'Watchers'' journal lines, as written without their newline, by source, file and line number; append-only.';

CREATE FUNCTION hourmeter_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: captures are never changed or removed', TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER snapshot_documents_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON snapshot_documents
  FOR EACH STATEMENT EXECUTE FUNCTION hourmeter_refuse_change();
CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal_lines
  FOR EACH STATEMENT EXECUTE FUNCTION hourmeter_refuse_change();
`,
  },
  {
    version: 2,
    name: 'document digests and compression',
    // Generated, so they can never disagree with the bytes. The digest lets an import compare
    // a folder with what is stored without reading the stored bytes back; `gzipped` says how
    // the content is encoded (files are stored as they are, gzipped ones still gzipped, as
    // their names say).
    sql: `
ALTER TABLE snapshot_documents
  ADD COLUMN content_sha256 bytea GENERATED ALWAYS AS (sha256(content)) STORED,
  ADD COLUMN gzipped boolean GENERATED ALWAYS AS (name LIKE '%.gz') STORED;
COMMENT ON COLUMN snapshot_documents.name IS 'The file''s path in the snapshot folder, sub-folders included, with / between parts.';
-- lz4 stores a year of legacy files about three times faster than the default pglz, and as
-- small; a server built without lz4 keeps pglz.
DO $$
BEGIN
  ALTER TABLE snapshot_documents ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END
$$;
`,
  },
  {
    version: 3,
    name: 'the derived index beside the captures',
    // The index the fold derives from the captures (docs/store.md), table for table and
    // column for column as the SQLite index keeps it (store/schema.ts), under index_ names.
    // It is a cache: it can always be derived again from the captures. Amounts are doubles,
    // which hold every integer SQLite does here and the odd fraction as well. `arrival`
    // numbers the captures as they come, so a reader tells in one look whether any arrived
    // since the index was derived.
    sql: `
ALTER TABLE snapshot_documents ADD COLUMN arrival bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE journal_lines ADD COLUMN arrival bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX snapshot_documents_by_arrival ON snapshot_documents (arrival);
CREATE INDEX journal_lines_by_arrival ON journal_lines (arrival);

CREATE TABLE index_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE index_snapshots (
  name text PRIMARY KEY,
  time_us bigint NOT NULL,
  captured_us bigint,
  kind text,
  bytes bigint NOT NULL,
  mtime_ms bigint NOT NULL,
  sha256 text,
  corrupt text,
  detail text,
  covered text,
  failed text,
  record_skips text,
  allocations bigint
);
CREATE TABLE index_allocations (
  rowid bigint PRIMARY KEY,
  key text NOT NULL,
  namespace text NOT NULL,
  job_id text NOT NULL,
  job_name text,
  "user" text,
  grp text,
  component text,
  node text,
  cpu_milli double precision NOT NULL,
  cpu_mhz double precision NOT NULL,
  memory_bytes double precision NOT NULL,
  disk_bytes double precision NOT NULL,
  gpu double precision NOT NULL,
  start_us bigint,
  state text NOT NULL,
  last_holding_us bigint,
  end_us bigint,
  next_us bigint,
  listed_terminal bigint NOT NULL,
  next_kind text,
  listed_holding bigint NOT NULL,
  listed bigint NOT NULL,
  unlisted_holding bigint NOT NULL,
  segment bigint,
  slot bigint
);
CREATE TABLE index_live_allocations (LIKE index_allocations INCLUDING ALL);
CREATE TABLE index_ingest_runs (
  id bigint PRIMARY KEY,
  finished_at text NOT NULL,
  mode text NOT NULL,
  files bigint NOT NULL,
  bytes bigint NOT NULL,
  corrupt bigint NOT NULL,
  seconds double precision NOT NULL,
  reason text,
  lines bigint NOT NULL DEFAULT 0
);
CREATE TABLE index_folders (name text PRIMARY KEY, mtime_ms bigint NOT NULL);
CREATE TABLE index_names (id bigint PRIMARY KEY, value text NOT NULL);
CREATE TABLE index_segments (
  id bigint PRIMARY KEY,
  tracks bigint NOT NULL,
  min_start_us bigint NOT NULL,
  max_reach_us bigint NOT NULL,
  data bytea NOT NULL
);
CREATE TABLE index_flavours (id bigint PRIMARY KEY, amounts bytea NOT NULL);
CREATE TABLE index_journal_files (name text PRIMARY KEY, source text NOT NULL, bytes bigint NOT NULL, "offset" bigint NOT NULL, line bigint NOT NULL);
CREATE TABLE index_journal_sources (source text PRIMARY KEY, watched text NOT NULL, last_key bigint NOT NULL, open_start_us bigint, open_end_us bigint);
CREATE TABLE index_watched_stretches (source text NOT NULL, start_us bigint NOT NULL, end_us bigint NOT NULL, PRIMARY KEY (source, start_us));
CREATE TABLE index_journal_markers (snapshot text PRIMARY KEY);
COMMENT ON TABLE index_meta IS 'The derived index (index_*): a cache of the captures, rewritten by the fold; never the source of truth.';
`,
  },
  {
    version: 4,
    name: 'users and quota tokens',
    // What `serve` hosts must agree on: the user database (userdb/users.json) and the quota
    // tokens' digests (userdb/quota-tokens.json), one row per user.
    sql: `
CREATE TABLE users (
  id text PRIMARY KEY,
  name text,
  email text,
  first_seen text,
  last_seen text,
  groups text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE quota_tokens (
  user_id text PRIMARY KEY,
  sha256 text NOT NULL,
  issued_at text NOT NULL
);
COMMENT ON TABLE quota_tokens IS 'Only the SHA-256 of each quota token; the token itself is shown once, when issued.';
`,
  },
  {
    version: 5,
    name: 'capture counts',
    // How many captures each table holds, kept by its inserts: what a report compares with
    // the count its index was derived at, in one row read, where count(*) over years of
    // journal lines would scan them all. Captures are never removed, so a count moves on
    // every insert that adds a row. The function runs as its owner, so writers need no grant
    // on the counts.
    sql: `
CREATE TABLE capture_counts (captures text PRIMARY KEY, rows bigint NOT NULL);
INSERT INTO capture_counts SELECT 'snapshot_documents', count(*) FROM snapshot_documents;
INSERT INTO capture_counts SELECT 'journal_lines', count(*) FROM journal_lines;
CREATE FUNCTION hourmeter_count_captures() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE public.capture_counts SET rows = rows + (SELECT count(*) FROM added) WHERE captures = TG_TABLE_NAME;
  RETURN NULL;
END
$$;
CREATE TRIGGER snapshot_documents_counted AFTER INSERT ON snapshot_documents REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION hourmeter_count_captures();
CREATE TRIGGER journal_lines_counted AFTER INSERT ON journal_lines REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION hourmeter_count_captures();
COMMENT ON TABLE capture_counts IS 'Rows in each capture table, kept by triggers: a report''s one-row check for new captures.';
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

// Any constant: it keeps two `store migrate` runs from interleaving.
const MIGRATE_LOCK = 0x686f_7572;

export interface MigrateResult {
  /** The version before and after. */
  from: number;
  to: number;
  applied: Migration[];
}

export class SchemaTooNewError extends Error {}

/** Brings the schema up to SCHEMA_VERSION, in one transaction; a no-op when it is there. */
export async function migrate(client: pg.Client, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`);
    const r = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    const from = r.rows[0]?.version ?? 0;
    const latest = migrations[migrations.length - 1]?.version ?? 0;
    if (from > latest) {
      throw new SchemaTooNewError(`the database's schema is at version ${from}, newer than this hourmeter knows (${latest}): upgrade hourmeter`);
    }
    const applied: Migration[] = [];
    for (const m of migrations) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, latest), applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Refuses a database whose schema is not this hourmeter's: the message says which command mends it. */
export async function requireSchema(client: pg.Client): Promise<void> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  const at = exists.rows[0]?.t ? ((await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations')).rows[0]?.version ?? 0) : 0;
  if (at < SCHEMA_VERSION) throw new SchemaTooNewError(`the store's schema is at version ${at}, older than this hourmeter's ${SCHEMA_VERSION}: run \`hourmeter store migrate\` (with a role that may create tables) first`);
  if (at > SCHEMA_VERSION) throw new SchemaTooNewError(`the store's schema is at version ${at}, newer than this hourmeter knows (${SCHEMA_VERSION}): upgrade hourmeter`);
}
