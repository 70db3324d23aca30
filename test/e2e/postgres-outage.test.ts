import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, run, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore } from '../helpers/store.js';

/**
 * The store through an outage: a server stopped as a crash stops it (`pg_ctl stop -m
 * immediate`) keeps every committed row, reports while it is away fail with exit 3 and say
 * what to check, and once it is back they answer as before.
 */

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
}, 60_000);
afterAll(() => db?.stop());

describe('the store while PostgreSQL is away', () => {
  it('keeps what was committed through an immediate stop; reports fail clearly meanwhile and answer again after', () => {
    const folder = join(tempDir(), 'snapshots');
    cpSync(join(FIXTURES, 'ai4os/snapshots'), folder, { recursive: true });
    const store = migratedStore(db, 'outage');
    expect(run(['store', 'import', folder, '--store', store.url, '--quiet'], { cwd: tempDir() }).code).toBe(0);
    const copy = join(tempDir(), 'copy.sqlite');
    expect(run(['store', 'update', '--store', store.url, '--db', copy, '--quiet'], { cwd: tempDir() }).code).toBe(0);
    const before = run(['stats', '--store', store.url, '--db', copy], { cwd: tempDir() });
    expect(before.stdout).toBe(run(['stats', '--snapshots', folder], { cwd: tempDir() }).stdout);

    db.halt();
    const away = run(['stats', '--store', store.url, '--db', copy], { cwd: tempDir(), env: { PGCONNECT_TIMEOUT: '5' } });
    expect(away.code).toBe(3);
    expect(away.stdout).toBe('');
    expect(away.stderr).toContain(`cannot connect to the PostgreSQL database "${store.database}" as user "hourmeter_admin" at 127.0.0.1:${db.port}`);
    expect(away.stderr).not.toContain(db.password);

    db.resume();
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('44\n');
    expect(store.psql('SELECT count(*) FROM index_snapshots')).toBe('44\n');
    expect(store.psql("SELECT rows FROM capture_counts WHERE captures = 'snapshot_documents'")).toBe('44\n');
    const after = run(['stats', '--store', store.url, '--db', copy], { cwd: tempDir() });
    expect(after.stderr).toBe('');
    expect(after.stdout).toBe(before.stdout);
  }, 90_000);
});
