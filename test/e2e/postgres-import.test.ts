import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, FIXTURES, run, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore, writeLegacyFiles } from '../helpers/store.js';

/**
 * `hourmeter store import DIR` against a real PostgreSQL 15: the AI4OS fixture folder (one
 * file moved into a sub-folder, one gzipped), a native snapshot and a watcher's journal go in
 * byte for byte; a second run adds nothing; a run killed halfway and run again ends where a
 * clean run does; hostile names are kept verbatim; a changed file is reported, never rewritten;
 * the read-only role is refused.
 */

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
  db.psql(`CREATE ROLE hourmeter_reader LOGIN PASSWORD 'reader-pass-1'`);
});
afterAll(() => db?.stop());

/** A new database with the store's schema, for one test's exact counts. */
const freshStore = () => migratedStore(db, 'import');

const HOSTILE = `it's"; DROP TABLE x; --`;
const INJECTION = `'); DROP TABLE x; --`;
const SOURCE = 'nomad-127.0.0.1-4646';
const NATIVE = '2024-09-13T00:00:00Z.json';
const JOURNAL_FILE = `journal/${SOURCE}/2024-09-13T00Z.jsonl`;

const nativeSnapshot = {
  format: 'hourmeter.snapshot', version: 1, captured_at: '2024-09-13T00:00:00Z', finished_at: '2024-09-13T00:00:00Z',
  source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' },
  scope: { requested: ['*'], namespaces: [HOSTILE], failed: [] },
  allocations: [{
    id: 'a1', namespace: HOSTILE, job_id: INJECTION, job_name: null, user: `o'brien; --`, group: null, component: null, node: 'n1',
    status: 'running', created: null, start: '2024-09-12T23:00:00Z', end: null, modified: '2024-09-12T23:00:00Z',
    resources: { cpu_cores: 2, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
  }],
  queued: [],
};
const JOURNAL_LINES = [
  JSON.stringify({ type: 'journal', at: '2024-09-13T00:00:01.000000Z', format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' } }),
  JSON.stringify({ type: 'connected', at: '2024-09-13T00:00:01.000000Z' }),
  JSON.stringify({ type: 'allocation', at: '2024-09-13T00:10:00.000000Z', index: 11, event: 'AllocationUpdated', allocation: { ...nativeSnapshot.allocations[0], job_id: `${INJECTION} \\ ünïcode` } }),
  JSON.stringify({ type: 'alive', at: '2024-09-13T00:30:00.000000Z', index: 11 }),
];
const TORN = '{"type":"alive","at":"2024-09-13T00:45:00.0';

/**
 * The fixture's 44 AI4OS files, 2024-09-01T06:01:50.json moved into 2024-09/ and
 * 2024-09-02T00:00:25.json gzipped there; a native snapshot; a journal of 4 complete lines and
 * a torn fifth. 45 snapshot files, 4 journal lines to store.
 */
function folder(): string {
  const dir = join(tempDir(), 'snapshots');
  cpSync(join(FIXTURES, 'ai4os/snapshots'), dir, { recursive: true });
  mkdirSync(join(dir, '2024-09'));
  renameSync(join(dir, '2024-09-01T06:01:50.json'), join(dir, '2024-09/2024-09-01T06:01:50.json'));
  writeFileSync(join(dir, '2024-09/2024-09-02T00:00:25.json.gz'), gzipSync(readFileSync(join(dir, '2024-09-02T00:00:25.json'))));
  rmSync(join(dir, '2024-09-02T00:00:25.json'));
  writeFileSync(join(dir, NATIVE), JSON.stringify(nativeSnapshot));
  mkdirSync(join(dir, 'journal', SOURCE), { recursive: true });
  writeFileSync(join(dir, JOURNAL_FILE), JOURNAL_LINES.map((l) => `${l}\n`).join('') + TORN);
  return dir;
}

/** Every snapshot file's name in the folder, with / between parts, as the store keys them. */
function snapshotNames(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => /\.json(\.gz)?$/.test(f)).sort();
}

const importInto = (url: string, dir: string, extra: string[] = [], env: Record<string, string> = {}) => run(['store', 'import', dir, '--store', url, ...extra], { cwd: tempDir(), env });
const summary = (added: string, there: string, tail = '') => new RegExp(`^added ${escape(added)}; already there: ${escape(there)}${escape(tail)}; in \\d+\\.\\d s \\(\\d+ files/s, \\d+\\.\\d MB/s\\)\\n$`);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const UNFINISHED = '; 1 journal file ends in an unfinished line, left for the next import';

describe('hourmeter store import', () => {
  it('stores every snapshot file byte for byte and each complete journal line, then adds nothing the second time', async () => {
    const store = freshStore();
    const dir = folder();
    store.psql('CREATE TABLE x (y int)');

    const first = importInto(store.url, dir);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(summary('45 snapshot files (0.7 MB as stored) and 4 journal lines', '0 files and 0 lines', UNFINISHED));
    expect(first.code).toBe(0);

    expect(store.psql('SELECT count(*), count(*) FILTER (WHERE gzipped) FROM snapshot_documents')).toBe('45|1\n');
    expect(store.psql("SELECT name, captured_at FROM snapshot_documents WHERE name LIKE '2024-09/%' OR name = '2024-09-01T00:01:01.json' OR name LIKE '%Z.json' ORDER BY name")).toBe(
      '2024-09-01T00:01:01.json|2024-09-01 00:01:01+00\n2024-09-13T00:00:00Z.json|2024-09-13 00:00:00+00\n2024-09/2024-09-01T06:01:50.json|2024-09-01 06:01:50+00\n2024-09/2024-09-02T00:00:25.json.gz|2024-09-02 00:00:25+00\n',
    );
    // Byte for byte, the gzipped file as its gzip bytes.
    const client = new pg.Client({ connectionString: store.url });
    await client.connect();
    const rows = (await client.query<{ name: string; content: Buffer }>('SELECT name, content FROM snapshot_documents')).rows;
    await client.end();
    const stored = new Map(rows.map((r) => [r.name, r.content]));
    const names = snapshotNames(dir);
    expect(names.length).toBe(45);
    expect([...stored.keys()].sort()).toEqual(names);
    for (const name of names) expect(stored.get(name)!.equals(readFileSync(join(dir, name))), name).toBe(true);

    // Hostile names, verbatim; the table they name is still there.
    expect(store.psql(`SELECT convert_from(content, 'UTF8') FROM snapshot_documents WHERE name = '${NATIVE}'`)).toBe(`${JSON.stringify(nativeSnapshot)}\n`);
    expect(store.psql(`SELECT line_number, line FROM journal_lines WHERE source = '${SOURCE}' AND file = '${JOURNAL_FILE}' ORDER BY line_number`)).toBe(
      JOURNAL_LINES.map((l, i) => `${i + 1}|${l}\n`).join(''),
    );
    expect(store.psql('SELECT count(*) FROM x')).toBe('0\n');

    const second = importInto(store.url, dir);
    expect(second.stderr).toBe('');
    expect(second.stdout).toMatch(summary('0 snapshot files (0.0 MB as stored) and 0 journal lines', '45 files and 4 lines', UNFINISHED));
    expect(second.code).toBe(0);

    // The torn line, finished by its writer, and a new file: the third run adds just those.
    appendFileSync(join(dir, JOURNAL_FILE), '00000Z","index":11}\n');
    writeFileSync(join(dir, '2024-09-13T06:00:00Z.json'), JSON.stringify({ ...nativeSnapshot, captured_at: '2024-09-13T06:00:00Z', finished_at: '2024-09-13T06:00:00Z' }));
    const third = importInto(store.url, dir, ['--quiet']);
    expect(third).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(store.psql('SELECT (SELECT count(*) FROM snapshot_documents), (SELECT count(*) FROM journal_lines)')).toBe('46|5\n');
    expect(store.psql('SELECT line FROM journal_lines WHERE line_number = 5')).toBe(`${TORN}00000Z","index":11}\n`);
  });

  it('reports a file whose name is stored with other bytes and keeps the stored bytes; --strict refuses, writing nothing', () => {
    const store = freshStore();
    const dir = folder();
    expect(importInto(store.url, dir, ['--quiet']).code).toBe(0);
    const original = store.psql("SELECT encode(content_sha256, 'hex') FROM snapshot_documents WHERE name = '2024-09-03T00:00:00.json'");

    appendFileSync(join(dir, '2024-09-03T00:00:00.json'), ' ');
    writeFileSync(join(dir, '2024-09-13T06:00:00Z.json'), '{}');
    const strict = importInto(store.url, dir, ['--strict']);
    expect(strict.code).toBe(3);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toBe(
      'hourmeter: store import: 1 stored capture(s) differ from their files, and --strict refuses to import around them; nothing was written: ' +
        '2024-09-03T00:00:00.json: the store already holds other bytes under this name; a capture is never rewritten, so the file is skipped (if it is another capture, give it its own name)\n',
    );
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('45\n');

    const lenient = importInto(store.url, dir);
    expect(lenient.stderr).toBe(
      'hourmeter: warning: 2024-09-03T00:00:00.json: the store already holds other bytes under this name; a capture is never rewritten, so the file is skipped (if it is another capture, give it its own name)\n',
    );
    expect(lenient.stdout).toMatch(summary('1 snapshot file (0.0 MB as stored) and 0 journal lines', '44 files and 4 lines', `; 1 changed file skipped (see the warnings)${UNFINISHED}`));
    expect(lenient.code).toBe(0);
    expect(store.psql("SELECT encode(content_sha256, 'hex') FROM snapshot_documents WHERE name = '2024-09-03T00:00:00.json'")).toBe(original);
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('46\n');
  });

  it('refuses the read-only role, naming the grant it lacks (exit 3), and a store without the schema', () => {
    const store = freshStore();
    store.psql(`GRANT CONNECT ON DATABASE ${store.database} TO hourmeter_reader; GRANT USAGE ON SCHEMA public TO hourmeter_reader; GRANT SELECT ON ALL TABLES IN SCHEMA public TO hourmeter_reader;`);
    const r = importInto(db.url({ database: store.database, user: 'hourmeter_reader', password: 'reader-pass-1' }), folder());
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'hourmeter: store import: user "hourmeter_reader" may not import: it lacks INSERT on snapshot_documents, INSERT on journal_lines; import as the writer role, ' +
        'or have the tables\' owner run GRANT SELECT, INSERT ON snapshot_documents, journal_lines TO "hourmeter_reader" (README, "hourmeter store")\n',
    );
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('0\n');

    db.psql('CREATE DATABASE import_bare', { database: 'postgres' });
    const bare = importInto(db.url({ database: 'import_bare' }), folder());
    expect(bare.code).toBe(3);
    expect(bare.stderr).toBe("hourmeter: store import: the store's schema is at version 0, and importing needs version 5: run `hourmeter store migrate` as the database's owner first\n");
  });

  it('after a kill -9 halfway, a second run gives the rows a clean import gives', async () => {
    // 3000 legacy files of 16 kB, 6-hourly from 2022: about 50 MB, a dozen batches.
    const dir = join(tempDir(), 'snapshots');
    mkdirSync(dir);
    const total = 3000;
    writeLegacyFiles(dir, total);
    const killed = freshStore();
    const clean = freshStore();
    const count = (psql: (sql: string) => string) => Number(psql('SELECT count(*) FROM snapshot_documents'));

    const child = spawn(process.execPath, [BIN, 'store', 'import', dir, '--store', killed.url], { env: { PATH: process.env.PATH ?? '', HOME: tempDir() }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let seen = 0;
    for (let i = 0; i < 600 && seen === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = count(killed.psql);
    }
    child.kill('SIGKILL');
    expect(await exited).toBe(null);
    const halfway = count(killed.psql);
    expect(halfway).toBeGreaterThan(0);
    expect(halfway).toBeLessThan(total);

    const resumed = importInto(killed.url, dir);
    expect(resumed.stderr).toBe('');
    expect(resumed.stdout).toMatch(new RegExp(`^added ${total - halfway} snapshot files \\(\\d+\\.\\d MB as stored\\) and 0 journal lines; already there: ${halfway} files and 0 lines; in `));
    expect(importInto(clean.url, dir).code).toBe(0);
    const rows = "SELECT name, captured_at, encode(content_sha256, 'hex'), gzipped FROM snapshot_documents ORDER BY name";
    const resumedRows = killed.psql(rows);
    expect(resumedRows.split('\n').length).toBe(total + 1);
    expect(resumedRows).toBe(clean.psql(rows));
  });
});
