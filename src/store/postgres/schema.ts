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
