import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

/**
 * `hourmeter store migrate` against a real PostgreSQL 15: a fresh database gets the versioned
 * schema, a second run changes nothing, the capture tables keep one row per key and refuse
 * changes, and a role granted SELECT only cannot write.
 */

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
});
afterAll(() => db?.stop());

const READER_PASSWORD = 'reader-pass-1';
const WRITER_PASSWORD = 'writer-pass-2';

describe('hourmeter store migrate', () => {
  it('creates the schema on a fresh database, then does nothing the second time', () => {
    const cwd = tempDir();
    const where = `PostgreSQL database "hourmeter" as user "hourmeter_admin" at 127.0.0.1:${db.port}`;

    const first = run(['store', 'migrate', '--store', db.url()], { cwd });
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe(`migrated the ${where} (sslmode=prefer: TLS if the server offers it, unverified; password from the URL) from schema version 0 to 5: 1 (capture tables), 2 (document digests and compression), 3 (the derived index beside the captures), 4 (users and quota tokens), 5 (capture counts)\n`);
    expect(first.code).toBe(0);

    // The second time from the libpq environment alone, the password in PGPASSFILE.
    const passfile = join(cwd, 'pgpass');
    writeFileSync(passfile, `127.0.0.1:${db.port}:hourmeter:hourmeter_admin:${db.password}\n`, { mode: 0o600 });
    const env = { PGHOST: '127.0.0.1', PGPORT: String(db.port), PGUSER: 'hourmeter_admin', PGDATABASE: 'hourmeter', PGPASSFILE: passfile, PGSSLMODE: 'disable' };
    const second = run(['store', 'migrate'], { cwd, env });
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe(`the schema is at version 5, the latest this hourmeter knows (5): nothing to do in the ${where} (sslmode=disable: no TLS; password from ${passfile} if it has one)\n`);
    expect(second.code).toBe(0);
    for (const out of [first.stdout, first.stderr, second.stdout, second.stderr]) expect(out).not.toContain(db.password);

    expect(db.psql('SELECT version, name FROM schema_migrations ORDER BY version')).toBe('1|capture tables\n2|document digests and compression\n3|the derived index beside the captures\n4|users and quota tokens\n5|capture counts\n');
    expect(db.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name")).toBe(
      ['capture_counts', 'index_allocations', 'index_flavours', 'index_folders', 'index_ingest_runs', 'index_journal_files', 'index_journal_markers', 'index_journal_sources', 'index_live_allocations', 'index_meta', 'index_names', 'index_segments', 'index_snapshots', 'index_watched_stretches', 'journal_lines', 'quota_tokens', 'schema_migrations', 'snapshot_documents', 'users'].map((t) => `${t}\n`).join(''),
    );
  });

  it('keeps one row per snapshot name and per journal line, byte for byte, and refuses changes', () => {
    const insert =
      "INSERT INTO snapshot_documents (name, captured_at, content) VALUES ('2024-09-01T00:00:12Z.json', '2024-09-01T00:00:12Z', '\\x7b7d0a') ON CONFLICT DO NOTHING;" +
      "INSERT INTO journal_lines (source, file, line_number, line) VALUES ('nomad-a', 'journal/nomad-a/2024-09-01T00Z.jsonl', 1, '{\"k\": \"it''s; DROP TABLE x\"}') ON CONFLICT DO NOTHING;";
    db.psql(insert);
    db.psql(insert);
    expect(db.psql("SELECT name, encode(content, 'hex') FROM snapshot_documents")).toBe('2024-09-01T00:00:12Z.json|7b7d0a\n');
    expect(db.psql('SELECT source, file, line_number, line FROM journal_lines')).toBe(`nomad-a|journal/nomad-a/2024-09-01T00Z.jsonl|1|{"k": "it's; DROP TABLE x"}\n`);
    // Counted once each: the second inserts added nothing.
    expect(db.psql('SELECT captures, rows FROM capture_counts ORDER BY captures')).toBe('journal_lines|1\nsnapshot_documents|1\n');
    expect(() => db.psql("UPDATE snapshot_documents SET content = '\\x00'")).toThrow('snapshot_documents is append-only: captures are never changed or removed');
    expect(() => db.psql('DELETE FROM journal_lines')).toThrow('journal_lines is append-only: captures are never changed or removed');
  });

  it("gives the README's writer role INSERT and its reader role SELECT only: the reader cannot write", () => {
    // The grants exactly as the README gives them, passwords filled in.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /```sql\n(CREATE ROLE hourmeter_writer[\s\S]*?)```/.exec(readme)![1]!;
    const passwords = [WRITER_PASSWORD, READER_PASSWORD];
    db.psql(block.replace(/'\.\.\.'/g, () => `'${passwords.shift()}'`));
    expect(passwords).toEqual([]);

    const reader = { user: 'hourmeter_reader', password: READER_PASSWORD };
    expect(db.psql('SELECT count(*) FROM snapshot_documents', reader)).toBe('1\n');
    expect(() => db.psql("INSERT INTO snapshot_documents (name, captured_at, content) VALUES ('x.json', now(), '\\x00')", reader)).toThrow(
      'permission denied for table snapshot_documents',
    );
    expect(() => db.psql("INSERT INTO journal_lines (source, file, line_number, line) VALUES ('s', 'f', 1, 'l')", reader)).toThrow('permission denied for table journal_lines');

    const writer = { user: 'hourmeter_writer', password: WRITER_PASSWORD };
    db.psql("INSERT INTO snapshot_documents (name, captured_at, content) VALUES ('2024-09-01T06:00:30Z.json', '2024-09-01T06:00:30Z', '\\x5b5d')", writer);
    expect(db.psql('SELECT count(*) FROM snapshot_documents', reader)).toBe('2\n');
    // The writer needs no grant on the counts: the trigger counts as the tables' owner.
    expect(db.psql("SELECT rows FROM capture_counts WHERE captures = 'snapshot_documents'", reader)).toBe('2\n');
    expect(() => db.psql("DELETE FROM snapshot_documents WHERE name = 'x.json'", writer)).toThrow('permission denied for table snapshot_documents');
    // The writer keeps the index and the users; the reader may do neither.
    db.psql("INSERT INTO index_meta (key, value) VALUES ('k', 'v'); DELETE FROM index_meta WHERE key = 'k'", writer);
    db.psql("INSERT INTO users (id) VALUES ('w'); UPDATE users SET name = 'W' WHERE id = 'w'", writer);
    expect(() => db.psql("INSERT INTO index_meta (key, value) VALUES ('k', 'v')", reader)).toThrow('permission denied for table index_meta');
    expect(() => db.psql("UPDATE users SET name = 'R' WHERE id = 'w'", reader)).toThrow('permission denied for table users');
    expect(() => db.psql("INSERT INTO quota_tokens (user_id, sha256, issued_at) VALUES ('r', 'x', 'y')", reader)).toThrow('permission denied for table quota_tokens');
  });

  it('says what to fix when the server cannot be reached, without the password', () => {
    const cwd = tempDir();
    const r = run(['store', 'migrate', '--store', db.url({ params: { port: '1' } })], { cwd });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('cannot connect to the PostgreSQL database "hourmeter" as user "hourmeter_admin" at 127.0.0.1:1');
    expect(r.stderr).toContain("check the host and port (host, port in --store's URL or PGHOST, PGPORT) and that the server is running");
    expect(r.stderr).not.toContain(db.password);
  });
});
