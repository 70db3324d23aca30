import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run, startServe, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore } from '../helpers/store.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * The user database and the quota tokens in a real PostgreSQL 15 (schema 4: users,
 * quota_tokens), so that several hosts agree: a token issued on one host opens `serve` on
 * another, `userdb import` feeds the reports' names and groups, concurrent merges keep every
 * group, hostile ids stay verbatim, and the reader role looks up but never issues.
 */

let db: Postgres;
const WRITER = { user: 'hourmeter_writer', password: 'writer-pass-1' };
const READER = { user: 'hourmeter_reader', password: 'reader-pass-2' };

beforeAll(async () => {
  db = await startPostgres();
  db.psql(`CREATE ROLE hourmeter_writer LOGIN PASSWORD '${WRITER.password}'; CREATE ROLE hourmeter_reader LOGIN PASSWORD '${READER.password}';`);
});
afterAll(() => db?.stop());

/** A fresh database, migrated by the CLI, with the README's grants for the writer and the reader. */
function freshStore(): { writer: string; reader: string; database: string } {
  const { database } = migratedStore(db, 'users');
  db.psql(
    `GRANT CONNECT ON DATABASE ${database} TO hourmeter_writer, hourmeter_reader;
GRANT USAGE ON SCHEMA public TO hourmeter_writer, hourmeter_reader;
GRANT SELECT, INSERT ON snapshot_documents, journal_lines TO hourmeter_writer;
GRANT SELECT ON schema_migrations TO hourmeter_writer;
GRANT SELECT, INSERT, UPDATE ON users, quota_tokens TO hourmeter_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO hourmeter_reader;`,
    { database },
  );
  return { database, writer: db.url({ ...WRITER, database }), reader: db.url({ ...READER, database }) };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const TOKENS_WHERE = 'the quota_tokens table of the PostgreSQL store';
const issued = (user: string) => `hourmeter: warning: issued a quota token for ${user}; only its hash is kept, in ${TOKENS_WHERE}: this is the one time it is shown\n`;

describe('the user directory in the PostgreSQL store', () => {
  it('a token issued on host A opens serve --store on host B, which has no userdb files; re-issued, the old one is refused', async () => {
    const store = freshStore();
    const hostA = tempDir();
    const first = run(['quota', 'token', '--user', 'alice', '--store', store.writer, '--now', QUOTA_NOW], { cwd: hostA });
    expect(first.stderr).toBe(issued('alice'));
    expect(first.code).toBe(0);
    const oldToken = first.stdout.trim();
    expect(oldToken).toMatch(/^hmq_[A-Za-z0-9_-]{43}$/);
    // Only the digest is stored, and nothing is written on host A.
    expect(db.psql('SELECT user_id, sha256, issued_at FROM quota_tokens', { database: store.database })).toBe(`alice|${sha256(oldToken)}|2024-10-02T00:00:00.000000Z\n`);
    expect(existsSync(join(hostA, 'userdb'))).toBe(false);

    // Host B: the history, the users and the tokens all from the store, read by the reader
    // role; the snapshots were loaded by a writer, and host B keeps no userdb files.
    const hostB = quotaFolder();
    rmSync(join(hostB, 'userdb'), { recursive: true });
    const loaded = run(['store', 'import', join(hostB, 'snapshots'), '--store', store.writer, '--quiet'], { cwd: hostA });
    expect(loaded.stderr).toBe('');
    rmSync(join(hostB, 'snapshots'), { recursive: true });
    writeFileSync(join(hostB, 'token'), 'admin-s3cret\n');
    const { url } = await startServe(hostB, ['--token-file', 'token', '--quota', 'quota.yaml', '--now', QUOTA_NOW, '--workers', '1', '--store', store.reader]);

    const own = await fetch(`${url}/quota/alice`, { headers: bearer(oldToken) });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ user: 'alice', decision: 'allowed', groups: ['regular'], policies: [{ resource: 'memory', used: 24, limit: 30, remaining: 6 }] });
    const other = await fetch(`${url}/quota/bob`, { headers: bearer(oldToken) });
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: 'this token may only ask about alice' });

    // Issued again on host A: the old token is revoked on host B at once.
    const second = run(['quota', 'token', '--user', 'alice', '--store', store.writer], { cwd: hostA });
    expect(second.code).toBe(0);
    const newToken = second.stdout.trim();
    expect(newToken).not.toBe(oldToken);
    const refused = await fetch(`${url}/quota/alice`, { headers: bearer(oldToken) });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: 'missing or wrong bearer token' });
    const check = await fetch(`${url}/quota/check`, { method: 'POST', headers: { ...bearer(newToken), 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'alice' }) });
    expect(check.status).toBe(200);
    expect(await check.json()).toMatchObject({ user: 'alice', decision: 'allowed' });
    expect(db.psql('SELECT count(*), min(sha256) FROM quota_tokens', { database: store.database })).toBe(`1|${sha256(newToken)}\n`);
    expect(existsSync(join(hostB, 'userdb'))).toBe(false);
  });

  it('userdb import into the store: the quota report takes its names and groups from there', () => {
    const store = freshStore();
    const cwd = quotaFolder();
    rmSync(join(cwd, 'userdb'), { recursive: true });
    writeFileSync(join(cwd, 'user-db.json'), JSON.stringify({ alice: { name: 'Alice Liddell', email: 'alice@example.org' }, carol: { name: 'Carol Danvers', email: null } }));
    const imported = run(['userdb', 'import', 'user-db.json', '--store', store.writer], { cwd });
    expect(imported.stderr).toBe('');
    expect(imported.stdout).toBe('imported 2 users from user-db.json into the users table of the PostgreSQL store: 2 new, 0 completed\n');
    expect(imported.code).toBe(0);
    // Groups come from snapshots' sightings; here the store is given carol's directly.
    db.psql(`UPDATE users SET groups = '{gpu}' WHERE id = 'carol'`, { database: store.database });

    const again = run(['userdb', 'import', 'user-db.json', '--store', store.writer], { cwd });
    expect(again.stdout).toBe('imported 2 users from user-db.json into the users table of the PostgreSQL store: 0 new, 0 completed\n');

    // The history comes from the store as well.
    const loaded = run(['store', 'import', join(cwd, 'snapshots'), '--store', store.writer, '--quiet'], { cwd });
    expect(loaded.stderr).toBe('');
    const report = run(['quota', 'report', '-o', 'csv', '--store', store.reader, '--now', QUOTA_NOW], { cwd });
    expect(report.stderr).toBe('');
    expect(report.code).toBe(0);
    // carol: in "gpu" by the store only, so the gpu-hours policy applies to her instead of the default.
    expect(report.stdout).toBe(
      'user,groups,resource,window,unit,used,limit,remaining,percent,source,policies\n' +
        'bob,gpu,gpu,1d,GPU-hours,18.00,20.00,2.00,90.00,policies,gpu-hours\n' +
        'alice,regular,memory,1d,GiB-hours,24.00,30.00,6.00,80.00,policies,regular-memory\n' +
        'carol,gpu,gpu,1d,GPU-hours,0.00,20.00,20.00,0.00,policies,gpu-hours\n',
    );
    const table = run(['quota', 'report', '--store', store.reader, '--now', QUOTA_NOW], { cwd });
    // The names label the rows of the table.
    expect(table.stdout.split('\n').slice(4, 7)).toEqual([
      '│ bob                   │ gpu     │ gpu      │ 1d     │ 18.00 │ 20.00 │ GPU-hours │  90.0% │',
      '│ Alice Liddell (alice) │ regular │ memory   │ 1d     │ 24.00 │ 30.00 │ GiB-hours │  80.0% │',
      '│ Carol Danvers (carol) │ gpu     │ gpu      │ 1d     │  0.00 │ 20.00 │ GPU-hours │   0.0% │',
    ]);
    expect(existsSync(join(cwd, 'userdb'))).toBe(false);
  });

  it('two processes merging sightings of one user at once keep both groups: each waits for the row lock', async () => {
    const store = freshStore();
    db.psql(`INSERT INTO users (id, groups) VALUES ('dana', '{g0}')`, { database: store.database });
    // Holds dana's row while the two writers start, so that they meet at the lock.
    const holder = new pg.Client({ connectionString: db.url({ database: store.database }) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT * FROM users WHERE id = 'dana' FOR UPDATE`);
      await holder.query(`UPDATE users SET groups = array_append(groups, 'held') WHERE id = 'dana'`);
      const writers = ['g1', 'g2'].map((group, i) => mergeInProcess(store.writer, { id: 'dana', name: i === 0 ? 'Dana Scully' : null, email: null, group }, `2024-10-0${i + 1}T00:00:00Z`));
      // Asked on a connection of its own: a transaction sees pg_stat_activity as it first read it.
      const waiting = (): number => Number(db.psql(`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = '${store.database}'`).trim());
      for (let i = 0; i < 200 && waiting() < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(waiting()).toBe(2);
      await holder.query('COMMIT');
      const results = await Promise.all(writers);
      expect(results).toEqual([{ code: 0, stderr: '' }, { code: 0, stderr: '' }]);
    } finally {
      await holder.end();
    }
    expect(db.psql(`SELECT id, name, first_seen, last_seen, groups FROM users`, { database: store.database })).toBe('dana|Dana Scully|2024-10-01T00:00:00Z|2024-10-02T00:00:00Z|{g0,g1,g2,held}\n');
  });

  it('a user id with quotes, semicolons and SQL is stored, read back and given a token verbatim', () => {
    const store = freshStore();
    const cwd = tempDir();
    const id = `o'brien"; DROP TABLE users; --`;
    const name = `O'Brien'); DELETE FROM quota_tokens; --`;
    writeFileSync(join(cwd, 'user-db.json'), JSON.stringify({ [id]: { name, email: `x@y' OR '1'='1` } }));
    expect(run(['userdb', 'import', 'user-db.json', '--store', store.writer, '--quiet'], { cwd }).code).toBe(0);
    const token = run(['quota', 'token', '--user', id, '--store', store.writer], { cwd });
    expect(token.stderr).toBe(issued(id));
    expect(token.code).toBe(0);
    const exported = run(['userdb', 'export', '--json', '--store', store.reader], { cwd });
    expect(exported.stderr).toBe('');
    expect(JSON.parse(exported.stdout)).toEqual({ [id]: { name, email: `x@y' OR '1'='1`, first_seen: null, last_seen: null, groups: [] } });
    expect(db.psql('SELECT user_id, sha256 FROM quota_tokens', { database: store.database })).toBe(`${id}|${sha256(token.stdout.trim())}\n`);
    expect(db.psql('SELECT count(*) FROM users', { database: store.database })).toBe('1\n');
  });

  it('the reader role lists users but may not issue a token or import: the message names the GRANT', () => {
    const store = freshStore();
    const cwd = tempDir();
    writeFileSync(join(cwd, 'user-db.json'), JSON.stringify({ erin: { name: 'Erin', email: 'erin@example.org' } }));
    expect(run(['userdb', 'import', 'user-db.json', '--store', store.writer, '--quiet'], { cwd }).code).toBe(0);

    const shown = run(['userdb', 'export', '-o', 'csv', '--store', store.reader], { cwd });
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toBe('id,name,email,first_seen,last_seen,groups\nerin,Erin,erin@example.org,,,\n');

    const token = run(['quota', 'token', '--user', 'erin', '--store', store.reader], { cwd });
    expect(token.stdout).toBe('');
    expect(token.stderr).toBe(
      'hourmeter: user "hourmeter_reader" may not issue quota tokens: it lacks INSERT on users, UPDATE on users, INSERT on quota_tokens, UPDATE on quota_tokens; ' +
        `do it as the writer role, or have the tables' owner run GRANT SELECT, INSERT, UPDATE ON users, quota_tokens TO "hourmeter_reader" (README, "hourmeter store")\n`,
    );
    expect(token.code).toBe(3);
    const imported = run(['userdb', 'import', 'user-db.json', '--store', store.reader], { cwd });
    expect(imported.stderr).toContain('hourmeter: user "hourmeter_reader" may not import users: it lacks INSERT on users');
    expect(imported.code).toBe(3);
    expect(db.psql('SELECT count(*) FROM quota_tokens', { database: store.database })).toBe('0\n');
  });
});

/** Records one sighting from a process of its own, through the built module, as `snapshot --store` will. */
function mergeInProcess(url: string, sighting: { id: string; name: string | null; email: string | null; group: string }, at: string): Promise<{ code: number; stderr: string }> {
  const script = `
    const h = await import(${JSON.stringify(join(ROOT, 'dist/history/postgres.js'))});
    const settings = h.resolvePostgresSettings(process.argv[1], {}, h.systemDefaults(), 'test');
    const client = await h.connectPostgres(settings, { warn: (l) => process.stderr.write(l) });
    const users = h.postgresUserDirectory(async () => client, 'PostgreSQL store');
    await users.mergeSightings([JSON.parse(process.argv[2])], process.argv[3]);
    await users.close();
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, JSON.stringify(sighting), at], { env: { PATH: process.env.PATH ?? '', HOME: tempDir() } });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    });
  });
}
