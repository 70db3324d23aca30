import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import { BIN, FIXTURES, run, runAsync, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore, writeLegacyFiles } from '../helpers/store.js';

/**
 * The store through an outage: a server stopped as a crash stops it (`pg_ctl stop -m
 * immediate`) keeps every committed row, reports while it is away fail with exit 3 and say
 * what to check, and once it is back they answer as before.
 */

const TOKEN = 'spool-token-5c1e';
const iso = (us: number) => new Date(us / 1000).toISOString();

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

describe('snapshot --store while PostgreSQL is away', () => {
  it('spools what it captures (exit 3), check says so, and the first run that reaches the store forwards each capture once', async () => {
    const cluster = createCluster({ seed: 41, days: 1, intervalMinutes: 60, targetConcurrent: 12 });
    const nomad = await startFakeNomad({ cluster, token: TOKEN });
    try {
      const store = migratedStore(db, 'spool');
      const cwd = tempDir();
      const folderRun = tempDir();
      const times = cluster.snapshots.slice(2, 6).map((s) => s.timeUs);
      const snapshot = async (i: number, toStore: boolean) => {
        nomad.setNow(times[i]!);
        const where = toStore ? ['--store', store.url, '--spool', 'spool'] : [];
        return runAsync(['snapshot', '--now', iso(times[i]!), ...where], { cwd: toStore ? cwd : folderRun, env: { NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN, PGCONNECT_TIMEOUT: '5' } });
      };
      for (let i = 0; i < 4; i++) expect((await snapshot(i, false)).code).toBe(0);

      expect((await snapshot(0, true)).code).toBe(0);
      db.halt();
      for (const i of [1, 2]) {
        const r = await snapshot(i, true);
        expect(r.code).toBe(3);
        expect(r.stderr).toContain('hourmeter: the store could not be reached (cannot connect to the PostgreSQL database');
        expect(r.stderr).toContain(`the snapshot waits in the spool, ${join('spool', `${iso(times[i]!).slice(0, 19)}Z.json`)}; the next \`hourmeter snapshot --store\` that reaches the store forwards it`);
      }
      expect(readdirSync(join(cwd, 'spool')).filter((n) => n.endsWith('.json')).sort()).toEqual([1, 2].map((i) => `${iso(times[i]!).slice(0, 19)}Z.json`));
      const checked = run(['check', '--store', store.url, '--spool', 'spool', '--now', iso(times[2]! + 10 * 60e6)], { cwd, env: { PGCONNECT_TIMEOUT: '5' } });
      expect(checked.code).toBe(1);
      expect(checked.stderr).toContain('check failed: the store cannot be reached (cannot connect to the PostgreSQL database');
      expect(checked.stderr).toContain(`; 2 snapshots wait in the spool spool since ${iso(times[1]!).replace('.000Z', 'Z')} (1h 10m): the store could not be reached`);

      db.resume();
      const back = await snapshot(3, true);
      expect(back.stderr).toBe('');
      expect(back.code).toBe(0);
      expect(back.stdout).toMatch(/^wrote .*\nforwarded 2 spooled snapshots and 5 users from spool to the store\n$/);
      expect(readdirSync(join(cwd, 'spool')).filter((n) => n.endsWith('.json'))).toEqual([]);
      expect(store.psql('SELECT name FROM snapshot_documents ORDER BY name')).toBe(times.map((t) => `${iso(t).slice(0, 19)}Z.json\n`).join(''));
      // A push with nothing left forwards nothing; the reports are those of the run without the outage.
      expect(run(['store', 'push', '--store', store.url, '--spool', 'spool'], { cwd }).stdout).toBe('nothing waits in the spool spool\n');
      const fromStore = run(['stats', '--by', 'namespace,user', '-o', 'csv', '--store', store.url], { cwd });
      expect(fromStore.stdout).toBe(run(['stats', '--by', 'namespace,user', '-o', 'csv'], { cwd: folderRun }).stdout);
      // The owners seen while the store was away arrived as well: the user database is the folder run's.
      const folderUsers = JSON.parse(readFileSync(join(folderRun, 'userdb', 'users.json'), 'utf8')) as Record<string, { first_seen: string; last_seen: string; groups: string[] }>;
      const storedUsers = store.psql("SELECT id, first_seen, last_seen, array_to_string(groups, ',') FROM users ORDER BY id");
      expect(storedUsers).toBe(Object.entries(folderUsers).map(([id, u]) => `${id}|${u.first_seen}|${u.last_seen}|${u.groups.join(',')}\n`).join(''));
      expect(run(['check', '--store', store.url, '--spool', 'spool', '--now', iso(times[3]! + 60e6)], { cwd }).code).toBe(0);
    } finally {
      await nomad.close();
    }
  }, 120_000);

  it('store push leaves a file whose name the store holds with other bytes, and drops one it already holds alike', () => {
    const store = migratedStore(db, 'push');
    const cwd = tempDir();
    mkdirSync(join(cwd, 'spool'));
    const held = JSON.stringify({ alpha: [] });
    writeFileSync(join(cwd, 'spool', '2024-09-01T00:00:00.json'), held);
    expect(run(['store', 'push', '--store', store.url, '--spool', 'spool'], { cwd }).stdout).toBe('forwarded 1 spooled snapshot and 0 users from spool to the store\n');
    // Again, as if a push had been stopped before it removed the files: nothing is added twice.
    writeFileSync(join(cwd, 'spool', '2024-09-01T00:00:00.json'), held);
    writeFileSync(join(cwd, 'spool', '2024-09-01T06:00:00.json'), JSON.stringify({ alpha: [] }));
    mkdirSync(join(cwd, 'other'));
    writeFileSync(join(cwd, 'other', '2024-09-01T06:00:00.json'), JSON.stringify({ beta: [] }));
    expect(run(['store', 'import', 'other', '--store', store.url, '--quiet'], { cwd }).code).toBe(0);
    const r = run(['store', 'push', '--store', store.url, '--spool', 'spool'], { cwd });
    expect(r.stdout).toBe('forwarded 1 spooled snapshot and 0 users from spool to the store\n');
    expect(r.stderr).toContain(`${join('spool', '2024-09-01T06:00:00.json')} stays in the spool: the store holds other bytes under its name`);
    expect(readdirSync(join(cwd, 'spool')).sort()).toEqual(['2024-09-01T06:00:00.json']);
    expect(store.psql('SELECT name, encode(content, \'escape\') FROM snapshot_documents ORDER BY name')).toBe(`2024-09-01T00:00:00.json|${held}\n2024-09-01T06:00:00.json|{"beta":[]}\n`);
  });
});

describe('an interrupted push', () => {
  it('killed with kill -9 halfway and run again, forwards every spooled capture once, and empties the spool', async () => {
    // 1500 legacy files of 16 kB, 6-hourly from 2022: about 25 MB, several batches.
    const cwd = tempDir();
    const spool = join(cwd, 'spool');
    mkdirSync(spool);
    const total = 1500;
    writeLegacyFiles(spool, total);
    const store = migratedStore(db, 'killed');
    const count = () => Number(store.psql('SELECT count(*) FROM snapshot_documents'));
    const child = spawn(process.execPath, [BIN, 'store', 'push', '--store', store.url, '--spool', spool], { env: { PATH: process.env.PATH ?? '', HOME: tempDir() }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let seen = 0;
    for (let i = 0; i < 600 && seen === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = count();
    }
    child.kill('SIGKILL');
    expect(await exited).toBe(null);
    const halfway = count();
    expect(halfway).toBeGreaterThan(0);
    expect(halfway).toBeLessThan(total);

    const again = run(['store', 'push', '--store', store.url, '--spool', spool], { cwd });
    expect(again.stderr).toBe('');
    expect(again.stdout).toBe(`forwarded ${total} spooled snapshots and 0 users from ${spool} to the store\n`);
    expect(readdirSync(spool)).toEqual([]);
    // Each once: as many rows as files, each name once, each with its own bytes.
    expect(store.psql('SELECT count(*), count(DISTINCT name), count(DISTINCT content_sha256) FROM snapshot_documents')).toBe(`${total}|${total}|${total}\n`);
  }, 120_000);
});
