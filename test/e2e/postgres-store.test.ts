import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, writeHistory } from '../../src/simulator/index.js';
import { expectGolden, run, startServe, tempDir, withAi4osFixture } from '../helpers/cli.js';
import { mixedFolder } from '../helpers/mixed-folder.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore } from '../helpers/store.js';
import { expectNearTruth } from '../helpers/truth.js';

/**
 * The PostgreSQL store answers as the folder does: the golden suite and a simulated
 * accuracy run give the same bytes from `--store` as from the folder they were imported
 * from; the index a fold writes back equals the SQLite index built the same way; the
 * read-only role runs reports (folding new captures in memory, writing nothing); hostile
 * names come back verbatim.
 */

let db: Postgres;
const READER = { user: 'hourmeter_reader', password: 'reader-pass-3' };
beforeAll(async () => {
  db = await startPostgres();
  db.psql(`CREATE ROLE ${READER.user} LOGIN PASSWORD '${READER.password}'`);
}, 60_000);
afterAll(() => db?.stop());

/** A fresh database with the store's schema; the reader may read it all. */
function freshStore(): { url: string; readerUrl: string; psql: (sql: string) => string } {
  const store = migratedStore(db, 'store');
  store.psql(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${READER.user}`);
  return { url: store.url, readerUrl: db.url({ database: store.database, ...READER }), psql: store.psql };
}

/** The AI4OS fixture folder with its files from the `kept`-th on held back, until `arrive()`. */
function heldBack(kept: number): { folder: string; arrive(): void } {
  const folder = join(withAi4osFixture(), 'snapshots');
  const later = join(tempDir(), 'later');
  mkdirSync(later);
  const names = readdirSync(folder).sort().slice(kept);
  for (const name of names) renameSync(join(folder, name), join(later, name));
  return { folder, arrive: () => names.forEach((name) => renameSync(join(later, name), join(folder, name))) };
}

function importFolder(url: string, dir: string): void {
  const r = run(['store', 'import', dir, '--store', url, '--quiet'], { cwd: tempDir() });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** The AI4OS fixture folder, and a fresh store it was imported into. */
function ai4osInStore(): { folder: string; store: ReturnType<typeof freshStore> } {
  const folder = join(withAi4osFixture(), 'snapshots');
  const store = freshStore();
  importFolder(store.url, folder);
  return { folder, store };
}

/** Runs a report on the folder and on the store; both must print the same bytes. */
function bothStores(args: string[], folder: string, url: string): { stdout: string; stderr: string; code: number | null } {
  const cwd = tempDir();
  const fromFolder = run([...args, '--snapshots', folder], { cwd });
  const fromStore = run([...args, '--store', url], { cwd });
  expect(fromStore.stderr).toBe(fromFolder.stderr);
  expect(fromStore.stdout).toBe(fromFolder.stdout);
  expect(fromStore.code).toBe(fromFolder.code);
  return fromStore;
}

describe('the golden suite from the PostgreSQL store', () => {
  it('prints the golden bytes of every stats golden over the AI4OS folder and the mixed folder', () => {
    const { store } = ai4osInStore();
    const goldens: [string, string[], Record<string, string>?][] = [
      ['stats --from 2024-09-03 --to 2024-09-10', ['--from', '2024-09-03', '--to', '2024-09-10']],
      ['stats --from 2024-09-03 --to 2024-09-10 -o json', ['--from', '2024-09-03', '--to', '2024-09-10', '-o', 'json']],
      ['stats --from 2024-09-10 --to 2024-09-10 --by namespace,user -o csv', ['--from', '2024-09-10', '--to', '2024-09-10', '--by', 'namespace,user', '-o', 'csv']],
      ['stats --from 2024-09-04 --to 2024-09-04 --tz Europe-Madrid (COLUMNS=80)', ['--from', '2024-09-04', '--to', '2024-09-04', '--tz', 'Europe/Madrid'], { COLUMNS: '80' }],
    ];
    for (const [golden, args, env] of goldens) {
      const r = run(['stats', ...args, '--store', store.url], { cwd: tempDir(), env });
      expect(r.code).toBe(0);
      expectGolden(golden, r.stdout);
    }
    // The first report folded the captures into the store's index; the others read it.
    expect(store.psql('SELECT count(*), count(corrupt) FROM index_snapshots')).toBe('44|0\n');
    expect(store.psql('SELECT count(*) FROM index_ingest_runs')).toBe('1\n');

    const mixed = join(mixedFolder(), 'snapshots');
    const other = freshStore();
    importFolder(other.url, mixed);
    const r = run(['stats', '--by', 'group', '--store', other.url], { cwd: tempDir() });
    expect(r.code).toBe(0);
    expectGolden('stats --by group (mixed folder)', r.stdout);
  });

  it('gives the folder\'s bytes for monthly reports with details, and for stats filtered to names no allocation has', () => {
    const { folder: ai4os, store } = ai4osInStore();
    const monthly = bothStores(['report', 'monthly', '--month', '2024-09', '--details', '--out', '-', '--now', '2024-10-02T00:00:00Z'], ai4os, store.url);
    expect(monthly.stdout.split('\n').length).toBeGreaterThan(10);
    const filtered = bothStores(['stats', '--namespace', 'no-such-namespace', '-o', 'csv'], ai4os, store.url);
    expect(filtered.stderr).toContain('no-such-namespace');
    // The original's method walks the files themselves: the store writes them out.
    const original = bothStores(['stats', '--method', 'ai4os', '--from', '2024-09-03', '--to', '2024-09-10', '-o', 'csv'], ai4os, store.url);
    expect(original.stdout.split('\n').length).toBeGreaterThan(3);
  });
});

const RESOURCES = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours'] as const;

describe('the accuracy suite from the PostgreSQL store', () => {
  it('7 simulated days of 15-minute snapshots: the store prints the folder\'s bytes, within 0.1% of the full truth', async () => {
    const options = { seed: 22, days: 7, intervalMinutes: 15, targetConcurrent: 30, start: '2024-09-01T00:00:00Z' } as const;
    const folder = join(tempDir(), 'snapshots');
    await writeHistory(folder, { format: 'native', ...options });
    const store = freshStore();
    importFolder(store.url, folder);
    const r = bothStores(['stats', '--from', '2024-09-01', '--to', '2024-09-07', '-o', 'json'], folder, store.url);
    const checked = expectNearTruth(r.stdout, createCluster(options), { from: '2024-09-01', to: '2024-09-07' }, { resources: RESOURCES, tolerance: 0.001, share: 0.01 });
    expect(checked).toBeGreaterThanOrEqual(10);
  }, 120_000);
});

/** The index tables' rows, as SQLite names them, without what only says when and where a fold ran. */
const COMPARED: Record<string, string> = {
  snapshots: 'name, time_us, captured_us, kind, bytes, sha256, corrupt, detail, covered, failed, record_skips, allocations',
  allocations: 'key, namespace, job_id, job_name, "user", grp, component, node, cpu_milli, cpu_mhz, memory_bytes, disk_bytes, gpu, start_us, state, last_holding_us, end_us, next_us, listed_terminal, next_kind, listed_holding, listed, unlisted_holding, segment, slot',
  live_allocations: 'key, namespace, job_id, job_name, "user", grp, component, node, cpu_milli, cpu_mhz, memory_bytes, disk_bytes, gpu, start_us, state, last_holding_us, end_us, next_us, listed_terminal, next_kind, listed_holding, listed, unlisted_holding, segment, slot',
  names: 'id, value',
  segments: 'id, tracks, min_start_us, max_reach_us, data',
  flavours: 'id, amounts',
  journal_files: 'name, source, bytes, "offset", line',
  journal_sources: 'source, watched, last_key, open_start_us, open_end_us',
  watched_stretches: 'source, start_us, end_us',
  journal_markers: 'snapshot',
};

const canonical = (rows: unknown[][]) =>
  rows.map((r) => JSON.stringify(r.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v)))).sort();

async function pgTables(url: string): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, string[]> = {};
    for (const [table, columns] of Object.entries(COMPARED)) out[table] = canonical((await client.query({ text: `SELECT ${columns} FROM index_${table}`, rowMode: 'array' })).rows);
    return out;
  } finally {
    await client.end();
  }
}

function sqliteTables(path: string): Record<string, string[]> {
  const index = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(Object.entries(COMPARED).map(([table, columns]) => [table, canonical(index.prepare(`SELECT ${columns} FROM ${table}`).raw(true).all() as unknown[][])]));
  } finally {
    index.close();
  }
}

describe('folding new captures into the store', () => {
  it('appends in two steps, with a journal growing between them, to the index the folder builds in the same steps', async () => {
    // A native snapshot, then a watcher's journal that grows; the AI4OS files before them.
    const { folder, arrive } = heldBack(30);
    const store = freshStore();

    importFolder(store.url, folder);
    const first = bothStores(['stats', '-o', 'csv'], folder, store.url);
    expect(first.stdout.split('\n').length).toBeGreaterThan(3);
    expect(store.psql('SELECT count(*) FROM index_snapshots')).toBe('30\n');

    arrive();
    const source = 'nomad-127.0.0.1-4646';
    const journal = join(folder, 'journal', source, '2024-09-12T18Z.jsonl');
    mkdirSync(join(folder, 'journal', source), { recursive: true });
    const header = { type: 'journal', at: '2024-09-12T18:05:00.000000Z', format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' } };
    const allocation = (at: string, status: string, end: string | null) => ({
      type: 'allocation', at, index: 7, event: 'AllocationUpdated',
      allocation: {
        id: 'w1', namespace: 'watched', job_id: 'job-w', job_name: null, user: 'wanda', group: null, component: null, node: 'n1', status, created: null,
        start: '2024-09-12T18:10:00Z', end, modified: at, resources: { cpu_cores: 4, cpu_mhz: 0, memory_mib: 2048, disk_mib: 0, gpu: 1 },
      },
    });
    writeFileSync(journal, [header, { type: 'connected', at: '2024-09-12T18:05:00.000000Z' }, allocation('2024-09-12T18:10:00.000000Z', 'running', null)].map((l) => JSON.stringify(l) + '\n').join(''));
    importFolder(store.url, folder);
    bothStores(['stats', '-o', 'csv'], folder, store.url);

    appendFileSync(journal, [allocation('2024-09-12T18:40:00.000000Z', 'complete', '2024-09-12T18:40:00Z'), { type: 'alive', at: '2024-09-12T18:50:00.000000Z', index: 8 }].map((l) => JSON.stringify(l) + '\n').join(''));
    importFolder(store.url, folder);
    const last = bothStores(['stats', '--by', 'namespace,user', '-o', 'csv'], folder, store.url);
    // w1: 4 cores and 1 GPU from 18:10 to 18:40, seen only by the watcher.
    expect(last.stdout).toContain('\nwatched,wanda,,2,0.5,');
    expect(store.psql('SELECT count(*) FROM index_ingest_runs')).toBe('3\n');

    const stored = await pgTables(store.url);
    const built = sqliteTables(join(folder, '.hourmeter', 'index.sqlite'));
    for (const table of Object.keys(COMPARED)) expect(stored[table], table).toEqual(built[table]);
    expect(stored.journal_files).toHaveLength(1);
  });
});

describe('the commands that read the captures themselves', () => {
  it('top, check and summarize print and write from the store what they do from the folder', () => {
    const { folder, store } = ai4osInStore();
    const now = ['--now', '2024-09-12T20:00:00Z'];
    const top = bothStores(['top', ...now, '-o', 'csv'], folder, store.url);
    expect(top.stdout.split('\n').length).toBeGreaterThan(5);
    const check = bothStores(['check', ...now, '--max-age', '6h'], folder, store.url);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('2024-09-12T18:01:20Z');
    const stale = bothStores(['check', '--now', '2024-09-13T12:00:00Z', '--max-age', '6h'], folder, store.url);
    expect(stale.code).toBe(1);

    const viaFolder = tempDir();
    const viaStore = tempDir();
    expect(run(['summarize', '--snapshots', folder, '--summaries', 'out'], { cwd: viaFolder }).code).toBe(0);
    const summarized = run(['summarize', '--store', store.url, '--summaries', 'out'], { cwd: viaStore });
    expect(summarized.code).toBe(0);
    const written = readdirSync(join(viaFolder, 'out')).sort();
    expect(readdirSync(join(viaStore, 'out')).sort()).toEqual(written);
    expect(written.length).toBeGreaterThan(1);
    for (const name of written) expect(readFileSync(join(viaStore, 'out', name), 'utf8'), name).toBe(readFileSync(join(viaFolder, 'out', name), 'utf8'));
  });
});

describe('serve from the PostgreSQL store', () => {
  it('answers /stats from its copy of the store\'s index, as serve on the folder does, and takes in new captures', async () => {
    const { folder, arrive } = heldBack(40);
    // A watcher's journal as well: /metrics counts its lines.
    const source = 'nomad-127.0.0.1-4646';
    mkdirSync(join(folder, 'journal', source), { recursive: true });
    const header = { type: 'journal', at: '2024-09-10T00:00:00.000000Z', format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' } };
    writeFileSync(
      join(folder, 'journal', source, '2024-09-10T00Z.jsonl'),
      [header, { type: 'connected', at: '2024-09-10T00:00:00.000000Z' }, { type: 'alive', at: '2024-09-10T00:30:00.000000Z', index: 3 }, { type: 'disconnected', at: '2024-09-10T00:40:00.000000Z', reason: 'stream ended' }]
        .map((l) => JSON.stringify(l) + '\n')
        .join(''),
    );
    const store = freshStore();
    importFolder(store.url, folder);
    const query = '/stats?from=2024-09-01&to=2024-09-12&by=namespace';
    const fromStore = await startServe(tempDir(), ['--store', store.readerUrl, '--workers', '1', '--refresh', '1s', '--db', join(tempDir(), 'copy.sqlite')]);
    const fromFolder = await startServe(tempDir(), ['--snapshots', folder, '--workers', '1']);
    const get = async (base: string) => (await fetch(base + query)).text();
    const before = await get(fromStore.url);
    expect(before).toBe(await get(fromFolder.url));
    expect(JSON.parse(before).diagnostics.snapshots).toBe(40);

    // Four more captures arrive in the store: the next refresh takes them in.
    arrive();
    importFolder(store.url, folder);
    let after = before;
    for (let i = 0; i < 100 && after === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await get(fromStore.url);
    }
    expect(JSON.parse(after).diagnostics.snapshots).toBe(44);
    const full = await startServe(tempDir(), ['--snapshots', folder, '--workers', '1']);
    expect(after).toBe(await get(full.url));
    // The watcher's counts, from the stored journal as from the folder's.
    const watcherLines = async (base: string) => (await (await fetch(`${base}/metrics`)).text()).split('\n').filter((l) => l.startsWith('hourmeter_watch_'));
    const metrics = await watcherLines(fromStore.url);
    expect(metrics).toEqual(await watcherLines(full.url));
    expect(metrics).toContain(`hourmeter_watch_connections_total{source="${source}"} 1`);
    expect(metrics).toContain(`hourmeter_watch_gaps_total{source="${source}"} 1`);
    // A line more, stored: counted once, on top of what was counted.
    appendFileSync(join(folder, 'journal', source, '2024-09-10T00Z.jsonl'), JSON.stringify({ type: 'connected', at: '2024-09-10T00:45:00.000000Z' }) + '\n');
    importFolder(store.url, folder);
    const grown = await watcherLines(fromStore.url);
    expect(grown).toEqual(await watcherLines(full.url));
    expect(grown).toContain(`hourmeter_watch_connections_total{source="${source}"} 2`);
  }, 60_000);
});

describe('store status and store update', () => {
  it('say what the store holds and how far its index has come; update folds it for every host, as the writer only', () => {
    const { folder, store } = ai4osInStore();
    const copy = join(tempDir(), 'copy.sqlite');
    const status = () => {
      const r = run(['store', 'status', '--store', store.url, '--db', copy], { cwd: tempDir() });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return r.stdout.split('\n').slice(1, -1).map((line) => line.replace(/\(\d+\.\d MB stored\)/, '(… MB stored)').replace(/^last update: \S+, (.*) in \d+\.\d s$/, 'last update: …, $1 in … s'));
    };
    expect(status()).toEqual([
      'schema: version 5 (up to date)',
      'captures: 44 snapshot documents (… MB stored), 0 journal lines',
      'index: not derived yet: the next report (or `hourmeter store update`) derives it',
      'this role: may write the index (writer)',
      `this host's copy of the index: ${copy} (none yet)`,
    ]);

    const refused = run(['store', 'update', '--store', store.readerUrl, '--db', join(tempDir(), 'reader.sqlite')], { cwd: tempDir() });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toBe('hourmeter: store update: user "hourmeter_reader" may not write the store\'s index; run it as the writer role (README, "hourmeter store")\n');
    expect(store.psql('SELECT count(*) FROM index_snapshots')).toBe('0\n');

    const updated = run(['store', 'update', '--store', store.url, '--db', copy], { cwd: tempDir() });
    expect(updated.stderr).toBe('');
    expect(updated.stdout).toMatch(/^took in 44 snapshot documents and 0 journal lines \(append\) in \d+\.\d s\n$/);
    expect(status()).toEqual([
      'schema: version 5 (up to date)',
      'captures: 44 snapshot documents (… MB stored), 0 journal lines',
      "index: up to date with the captures, 0 watchers' journals taken in",
      'last update: …, append, 44 files and 0 lines in … s',
      'this role: may write the index (writer)',
      `this host's copy of the index: ${copy} (current)`,
    ]);
    expect(run(['store', 'update', '--store', store.url, '--db', copy], { cwd: tempDir() }).stdout).toBe("the store's index is up to date\n");
    // Reports find it current: nothing more is folded.
    bothStores(['stats', '--from', '2024-09-03', '--to', '2024-09-10'], folder, store.url);
    expect(store.psql('SELECT count(*) FROM index_ingest_runs')).toBe('1\n');
    const reader = run(['store', 'status', '--store', store.readerUrl, '--db', copy], { cwd: tempDir() });
    expect(reader.stdout).toContain('this role: may only read: its reports fold new captures into their own copy\n');
  });
});

describe('roles and names', () => {
  it('lets the read-only role run reports on captures newer than the index, folding them in memory only', () => {
    const { folder, store } = ai4osInStore();
    // Nothing folded yet: the reader folds all 44 files for itself, and writes nothing.
    const r = bothStores(['stats', '--from', '2024-09-03', '--to', '2024-09-10'], folder, store.readerUrl);
    expectGolden('stats --from 2024-09-03 --to 2024-09-10', r.stdout);
    expect(store.psql('SELECT count(*) FROM index_snapshots')).toBe('0\n');
    expect(store.psql('SELECT count(*) FROM index_segments')).toBe('0\n');
    // A writer folds 30 files; 14 more arrive, and the reader folds them into this host's copy
    // only: a writer on the same host (the same copy) must still fold them into the store.
    const cache = { XDG_CACHE_HOME: tempDir() };
    const part = freshStore();
    const early = join(tempDir(), 'snapshots');
    mkdirSync(early);
    for (const name of readdirSync(folder).filter((n) => n.endsWith('.json')).sort().slice(0, 30)) cpSync(join(folder, name), join(early, name));
    importFolder(part.url, early);
    expect(run(['stats', '--store', part.url], { cwd: tempDir(), env: cache }).code).toBe(0);
    expect(part.psql('SELECT count(*) FROM index_snapshots')).toBe('30\n');
    importFolder(part.url, folder);
    const byReader = run(['stats', '--store', part.readerUrl], { cwd: tempDir(), env: cache });
    expect(byReader.stdout).toBe(run(['stats', '--snapshots', folder], { cwd: tempDir() }).stdout);
    expect(part.psql('SELECT count(*) FROM index_snapshots')).toBe('30\n');
    expect(run(['stats', '--store', part.url], { cwd: tempDir(), env: cache }).code).toBe(0);
    expect(part.psql('SELECT count(*) FROM index_snapshots')).toBe('44\n');
    const imported = run(['store', 'import', folder, '--store', store.readerUrl], { cwd: tempDir() });
    expect(imported.code).not.toBe(0);
    expect(imported.stderr).toContain('INSERT');
    // The password is in the URL given, and nowhere in what was printed.
    for (const out of [r.stdout, r.stderr, byReader.stdout, byReader.stderr, imported.stdout, imported.stderr]) expect(out).not.toContain(READER.password);
  });

  it('stores and reports namespace, user and job names with quotes, semicolons and SQL verbatim', () => {
    const hostile = { namespace: `it's"; DROP TABLE index_names; --`, user: `o'brien'); DELETE FROM users; --`, job: `job\\'; SELECT pg_sleep(10); --` };
    const folder = join(tempDir(), 'snapshots');
    mkdirSync(folder);
    const snapshot = (at: string, status: string, end: string | null) => ({
      format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
      source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' },
      scope: { requested: ['*'], namespaces: [hostile.namespace], failed: [] },
      allocations: [{
        id: 'h1', namespace: hostile.namespace, job_id: hostile.job, job_name: null, user: hostile.user, group: `g'; --`, component: null, node: 'n1',
        status, created: null, start: '2024-09-01T00:00:00Z', end, modified: end ?? at, resources: { cpu_cores: 2, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
      }],
      queued: [],
    });
    writeFileSync(join(folder, '2024-09-01T00:00:00Z.json'), JSON.stringify(snapshot('2024-09-01T00:00:00Z', 'running', null)));
    writeFileSync(join(folder, '2024-09-01T06:00:00Z.json'), JSON.stringify(snapshot('2024-09-01T06:00:00Z', 'complete', '2024-09-01T03:00:00Z')));
    const store = freshStore();
    importFolder(store.url, folder);
    const r = bothStores(['stats', '--by', 'namespace,user', '-o', 'json'], folder, store.url);
    const rows = (JSON.parse(r.stdout) as { rows: { namespace: string; user: string; cpu_hours: number }[] }).rows;
    // 2 cores for 3 h.
    expect(rows.map((x) => [x.namespace, x.user, x.cpu_hours])).toEqual([[hostile.namespace, hostile.user, 6]]);
    expect(store.psql('SELECT value FROM index_names ORDER BY value').split('\n')).toEqual(expect.arrayContaining([hostile.namespace, hostile.user, hostile.job]));
    const details = bothStores(['report', 'monthly', '--month', '2024-09', '--details', '--out', '-', '--now', '2024-10-02T00:00:00Z'], folder, store.url);
    expect(details.stdout).toContain(hostile.namespace.replace(/"/g, '""'));
  });

  it('says to migrate a database without the schema, and refuses --no-index with --store', () => {
    const database = 'store_bare';
    db.psql(`CREATE DATABASE ${database}`, { database: 'postgres' });
    const r = run(['stats', '--store', db.url({ database })], { cwd: tempDir() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('run `hourmeter store migrate`');
    const both = run(['stats', '--store', db.url({ database }), '--no-index'], { cwd: tempDir() });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--no-index reads a snapshot folder');
  });
});
