import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedPodLives } from '../../fake/kubernetes-pods.js';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import type { JournalLine } from '../../src/snapshots/journal.js';
import { inLanes, runAsync, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore, stoppedAfterEach } from '../helpers/store.js';
import { expectNearTruth } from '../helpers/truth.js';
import { journal, playPods, publishedIndex, sleep, startCli, untilAlive, untilJournal, useFakeKubernetes } from '../helpers/watch.js';

/**
 * `snapshot --store` and `watch --store` against a real PostgreSQL 15 and the fake Nomad and
 * Kubernetes servers: the captures land as the rows `store import` makes of the folder the
 * same commands write without --store; the read-only role captures nothing; one watcher per
 * source, as with the folder's lock.
 */

const TOKEN = 'b0a710ad-capture-token-31c4';
const MIN = 60_000_000;
const cluster = createCluster({ seed: 31, days: 1, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 20, medianDurationMinutes: 30, restartFraction: 0.3, rescheduleFraction: 0.2 });
const T0 = cluster.startUs + 2 * 60 * MIN;
const iso = (us: number) => new Date(us / 1000).toISOString();

const K8S_TOKEN = 'k8s-capture-token-9a1b';
const K8S_T0 = Date.parse('2026-03-02T08:00:00Z');
const kubernetes = useFakeKubernetes({ token: K8S_TOKEN, now: K8S_T0 });

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
  db.psql(`CREATE ROLE hourmeter_reader LOGIN PASSWORD 'reader-pass-1'`);
}, 60_000);
afterAll(() => db?.stop());

const { fakes, children } = stoppedAfterEach();

async function fakeNomad(heartbeatMs = 60_000): Promise<FakeNomad> {
  const f = await startFakeNomad({ cluster, token: TOKEN, now: T0, heartbeatMs });
  fakes.push(f);
  return f;
}

/** A new database with the store's schema. */
const freshStore = () => migratedStore(db, 'capture');

/** The stored documents, by name; read as one JSON text, so that nothing is escaped on the way. */
function documents(store: { psql: (sql: string) => string }): { name: string; capturedAt: string; content: Buffer; gzipped: boolean }[] {
  const rows = JSON.parse(
    store.psql(
      `SELECT coalesce(json_agg(json_build_object('name', name, 'capturedAt', to_char(captured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), 'hex', encode(content, 'hex'), 'gzipped', gzipped) ORDER BY name), '[]') FROM snapshot_documents`,
    ),
  ) as { name: string; capturedAt: string; hex: string; gzipped: boolean }[];
  return rows.map((r) => ({ name: r.name, capturedAt: r.capturedAt, content: Buffer.from(r.hex, 'hex'), gzipped: r.gzipped }));
}

interface LineRow {
  source: string;
  file: string;
  lineNumber: number;
  line: string;
}

function journalRows(store: { psql: (sql: string) => string }): LineRow[] {
  return JSON.parse(
    store.psql(`SELECT coalesce(json_agg(json_build_object('source', source, 'file', file, 'lineNumber', line_number, 'line', line) ORDER BY source, file, line_number), '[]') FROM journal_lines`),
  ) as LineRow[];
}

const nomadEnv = (nomad: FakeNomad) => ({ NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN });

/** Moves the simulated clock forward in steps, letting the stream deliver. */
async function play(nomad: FakeNomad, fromUs: number, toUs: number, stepUs = 10 * MIN): Promise<void> {
  for (let t = fromUs + stepUs; t <= toUs; t += stepUs) {
    nomad.setNow(t);
    await sleep(15);
  }
}

/** Waits (bounded, 20 s) until the store holds `n` journal lines of a type. */
async function untilRows(store: { psql: (sql: string) => string }, type: string, n = 1): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (journalRows(store).filter((r) => (JSON.parse(r.line) as JournalLine).type === type).length >= n) return;
    await sleep(100);
  }
  throw new Error(`no ${n} ${type} line(s) in the store after 20 s`);
}

/** Waits (bounded, 20 s) until the store holds an `alive` line at `index` or past it: every change up to it is stored. */
async function untilStoredAlive(store: { psql: (sql: string) => string }, index: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const lines = journalRows(store).map((r) => JSON.parse(r.line) as JournalLine);
    if (lines.some((l) => l.type === 'alive' && l.index >= index)) return;
    await sleep(100);
  }
  throw new Error(`no alive line at index ${index} or past it in the store after 20 s`);
}

/** What the clocks of a run decide (times, heartbeats) left out: the changes a watcher journals, in order. */
const changes = (lines: JournalLine[]) =>
  lines.filter((l): l is Extract<JournalLine, { type: 'allocation' }> => l.type === 'allocation').map((l) => ({ at: l.at, index: l.index, event: l.event, allocation: l.allocation }));

describe('snapshot --store', () => {
  it('stores one document: the name and the bytes of the file snapshot writes to a folder', async () => {
    const nomad = await fakeNomad();
    const store = freshStore();
    const folderRun = tempDir();
    const now = iso(T0);
    const toFolder = await runAsync(['snapshot', '--now', now], { cwd: folderRun, env: nomadEnv(nomad) });
    expect(toFolder.code).toBe(0);
    const cwd = tempDir();
    const cache = tempDir();
    for (const gzip of [[], ['--gzip']]) {
      const r = await runAsync(['snapshot', '--now', now, '--store', store.url, ...gzip], { cwd, env: { ...nomadEnv(nomad), XDG_CACHE_HOME: cache } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const [file] = readdirSync(join(folderRun, 'snapshots')).filter((f) => !f.startsWith('.'));
    expect(file).toBe(`${now.slice(0, 19)}Z.json`);
    const written = readFileSync(join(folderRun, 'snapshots', file!));
    const stored = documents(store);
    expect(stored.map((d) => [d.name, d.capturedAt, d.gzipped])).toEqual([
      [file, `${now.slice(0, 19)}.000000`, false],
      [`${file}.gz`, `${now.slice(0, 19)}.000000`, true],
    ]);
    // The finish time is the clock's (--now plus the run's real duration): the rest is byte for byte.
    const withoutFinish = (bytes: Buffer) => bytes.toString('utf8').replace(/"finished_at":"[^"]*"/, '"finished_at":""');
    expect(withoutFinish(stored[0]!.content)).toBe(withoutFinish(written));
    expect(stored[0]!.content.equals(Buffer.from(JSON.stringify(JSON.parse(stored[0]!.content.toString('utf8')))))).toBe(true);
    // Nothing went to the folder with --store.
    expect(readdirSync(cwd).includes('snapshots')).toBe(false);
    expect(store.psql('SELECT count(*) FROM journal_lines')).toBe('0\n');
    // The job meta cache is this host's own: kept in its cache folder, one per store.
    const [state, ...others] = readdirSync(join(cache, 'hourmeter'));
    expect(others).toEqual([]);
    expect(state).toMatch(/^state-[0-9a-f]{16}$/);
    expect(readdirSync(join(cache, 'hourmeter', state!))).toEqual(['nomad-meta-cache.json']);
  }, 60_000);

  it('a second capture in the same second keeps its milliseconds; a third is refused, nothing rewritten', async () => {
    const nomad = await fakeNomad();
    const store = freshStore();
    const cwd = tempDir();
    const at = (ms: string) => runAsync(['snapshot', '--now', `${iso(T0).slice(0, 19)}.${ms}Z`, '--store', store.url, '-q'], { cwd, env: nomadEnv(nomad) });
    expect((await at('250')).code).toBe(0);
    expect((await at('250')).code).toBe(0);
    const third = await at('250');
    expect(third.code).toBe(3);
    expect(third.stderr).toContain(`${iso(T0).slice(0, 19)}.250Z.json in the PostgreSQL database "${store.database}"`);
    expect(third.stderr).toContain('already exists; snapshots are never overwritten');
    expect(documents(store).map((d) => d.name)).toEqual([`${iso(T0).slice(0, 19)}.250Z.json`, `${iso(T0).slice(0, 19)}Z.json`]);
  }, 60_000);

  it('the read-only role captures nothing: exit 3, naming the GRANT it lacks', async () => {
    const nomad = await fakeNomad();
    const store = freshStore();
    store.psql(`GRANT CONNECT ON DATABASE ${store.database} TO hourmeter_reader; GRANT USAGE ON SCHEMA public TO hourmeter_reader; GRANT SELECT ON ALL TABLES IN SCHEMA public TO hourmeter_reader;`);
    const reader = db.url({ database: store.database, user: 'hourmeter_reader', password: 'reader-pass-1' });
    const before = nomad.requests.length;
    const cwd = tempDir();
    const r = await runAsync(['snapshot', '--now', iso(T0), '--store', reader], { cwd, env: nomadEnv(nomad) });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'hourmeter: --store: user "hourmeter_reader" may not capture: it lacks INSERT on snapshot_documents, INSERT on journal_lines; capture as the writer role, ' +
        'or have the tables\' owner run GRANT SELECT, INSERT ON snapshot_documents, journal_lines TO "hourmeter_reader" (README, "hourmeter store")\n',
    );
    // Refused before the cluster was asked anything; nothing stored, nothing in a folder.
    expect(nomad.requests.length).toBe(before);
    expect(store.psql('SELECT (SELECT count(*) FROM snapshot_documents) + (SELECT count(*) FROM journal_lines)')).toBe('0\n');
    expect(readdirSync(cwd).includes('snapshots')).toBe(false);
    // The watcher too.
    const w = await runAsync(['watch', '--store', reader, '--duration', '2s'], { cwd, env: nomadEnv(nomad) });
    expect(w.code).toBe(3);
    expect(w.stderr).toContain('may not capture: it lacks INSERT on snapshot_documents, INSERT on journal_lines');
  }, 60_000);
});

describe('watch --store', () => {
  it('Nomad: the changes journalled are the folder run\'s, numbered in the hour\'s file, and the list is a stored document', async () => {
    const store = freshStore();
    const recorded: JournalLine[][] = [];
    for (const where of ['folder', 'store'] as const) {
      // Heartbeats every 200 ms: the run is stopped once one after the last change is in.
      const nomad = await fakeNomad(200);
      const cwd = tempDir();
      const w = startCli(cwd, ['watch', '--max-backoff', '1s', '--duration', '60s', ...(where === 'store' ? ['--store', store.url] : [])], nomadEnv(nomad));
      children.push(w.child);
      if (where === 'folder') await untilJournal(cwd, 'resynchronised');
      else await untilRows(store, 'resynchronised');
      await play(nomad, T0, T0 + 3 * 60 * MIN);
      if (where === 'folder') await untilAlive(cwd, publishedIndex(nomad));
      else await untilStoredAlive(store, publishedIndex(nomad));
      w.child.kill('SIGTERM');
      const r = await w.done;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      if (where === 'folder') {
        recorded.push(journal(cwd));
        continue;
      }
      expect(readdirSync(cwd).includes('snapshots')).toBe(false);
      const rows = journalRows(store);
      const source = `nomad-127.0.0.1-${new URL(nomad.url).port}`;
      const lines = rows.map((row) => JSON.parse(row.line) as JournalLine);
      recorded.push(lines);
      // Files of journal/<source>/<hour>Z.jsonl, each numbered 1.. and starting with its header.
      for (const file of new Set(rows.map((row) => row.file))) {
        const ofFile = rows.filter((row) => row.file === file);
        expect(file).toMatch(new RegExp(`^journal/${source.replace(/\./g, '\\.')}/\\d{4}-\\d{2}-\\d{2}T\\d{2}Z\\.jsonl$`));
        expect(ofFile.map((row) => row.lineNumber)).toEqual(ofFile.map((_, i) => i + 1));
        expect(ofFile.every((row) => row.source === source)).toBe(true);
        expect(JSON.parse(ofFile[0]!.line)).toMatchObject({ type: 'journal', format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: nomad.url } });
      }
      const resync = lines.find((l) => l.type === 'resynchronised') as Extract<JournalLine, { type: 'resynchronised' }>;
      expect(documents(store).map((d) => d.name)).toEqual([resync.snapshot]);
    }
    const [folder, stored] = recorded as [JournalLine[], JournalLine[]];
    expect(changes(folder).length).toBeGreaterThan(5);
    expect(changes(stored)).toEqual(changes(folder));
    expect(stored.map((l) => l.type).filter((t) => t !== 'alive')).toEqual(folder.map((l) => l.type).filter((t) => t !== 'alive'));
  }, 60_000);

  it('one watcher per source: a second waits --lock-wait and exits 3 naming the first; a restarted one numbers on', async () => {
    const nomad = await fakeNomad(200);
    const store = freshStore();
    const cwd = tempDir();
    const first = startCli(cwd, ['watch', '--heartbeat', '1s', '--max-backoff', '1s', '--duration', '20s', '--store', store.url], nomadEnv(nomad));
    children.push(first.child);
    await untilRows(store, 'resynchronised');
    const second = await runAsync(['watch', '--lock-wait', '1s', '--store', store.url], { cwd, env: nomadEnv(nomad) });
    expect(second.code).toBe(3);
    const source = `nomad-127.0.0.1-${new URL(nomad.url).port}`;
    expect(second.stderr).toMatch(
      new RegExp(`^hourmeter: another watcher is writing the journal journal/${source.replace(/\./g, '\\.')} \\(hourmeter watch pid ${first.child.pid} on .*, connected since .*\\); waited 1 s for its lock in the PostgreSQL database "${store.database}"`),
    );
    first.child.kill('SIGTERM');
    expect((await first.done).code).toBe(0);
    const before = journalRows(store);
    // The lock went with the first watcher's connection: a new one starts at once and appends.
    const again = await runAsync(['watch', '--lock-wait', '0s', '--duration', '2s', '--store', store.url], { cwd, env: nomadEnv(nomad) });
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const after = journalRows(store);
    expect(after.slice(0, before.length)).toEqual(before);
    const lastFile = before[before.length - 1]!.file;
    const appended = after.slice(before.length).filter((r) => r.file === lastFile);
    // Within the same hour the restarted watcher continues the file, after a header of its own.
    if (appended.length > 0) {
      expect(appended[0]!.lineNumber).toBe(before.filter((r) => r.file === lastFile).length + 1);
      expect(JSON.parse(appended[0]!.line)).toMatchObject({ type: 'journal' });
    }
    expect(after.length).toBeGreaterThan(before.length);
  }, 60_000);

  it('Kubernetes: the list and the pod changes land in the store', async () => {
    const lives = simulatedPodLives({ seed: 'k8s-capture', count: 40, fromMs: K8S_T0 - 30 * 60_000, toMs: K8S_T0 + 60 * 60_000 });
    const k8s = await kubernetes.fake(lives);
    const store = freshStore();
    const cwd = tempDir();
    const w = kubernetes.watch(cwd, k8s, ['--duration', '60s', '--store', store.url]);
    await untilRows(store, 'resynchronised');
    await playPods(k8s, lives, K8S_T0, K8S_T0 + 60 * 60_000);
    await untilStoredAlive(store, k8s.resourceVersion);
    w.child.kill('SIGTERM');
    const r = await w.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = journalRows(store);
    const lines = rows.map((row) => JSON.parse(row.line) as JournalLine);
    expect(lines[0]).toMatchObject({ type: 'journal', source: { kind: 'kubernetes' } });
    expect(lines.filter((l) => l.type === 'allocation').length).toBeGreaterThan(5);
    const resync = lines.find((l) => l.type === 'resynchronised') as Extract<JournalLine, { type: 'resynchronised' }>;
    expect(documents(store).map((d) => d.name)).toEqual([resync.snapshot]);
    expect(readdirSync(cwd).includes('snapshots')).toBe(false);
  }, 60_000);
});

describe('capture to report through the store, against the simulator truth', () => {
  it('a simulated day of 30-minute `snapshot --store` runs: `stats --store` within 0.1% of the full truth', async () => {
    const day = createCluster({ seed: 23, days: 1, intervalMinutes: 30, targetConcurrent: 15 });
    // Two runs at a time, each lane against its own server of the cluster (a server shows one instant at a time).
    const lanes = [await startFakeNomad({ cluster: day, token: TOKEN }), await startFakeNomad({ cluster: day, token: TOKEN })];
    fakes.push(...lanes);
    const store = freshStore();
    const cwd = tempDir();
    await inLanes(day.snapshots, lanes.length, async (s, lane) => {
      const nomad = lanes[lane]!;
      nomad.setNow(s.timeUs);
      // Two servers of one cluster: it is named, as a cluster reached at several addresses is (docs/accounting.md#clusters).
      const r = await runAsync(['snapshot', '--quiet', '--cluster', 'sim', '--now', iso(s.timeUs), '--store', store.url], { cwd, env: nomadEnv(nomad) });
      expect(r.code, r.stderr).toBe(0);
    });
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe(`${day.snapshots.length}\n`);
    const r = await runAsync(['stats', '--from', '2024-09-01', '--to', '2024-09-01', '-o', 'json', '--store', store.url], { cwd });
    expect(r.stderr).toBe('');
    const checked = expectNearTruth(r.stdout, day, { from: '2024-09-01', to: '2024-09-01' }, { resources: ['cpu_hours', 'memory_gib_hours'], tolerance: 0.001, share: 0.02 });
    expect(checked).toBeGreaterThanOrEqual(6);
  }, 120_000);
});
