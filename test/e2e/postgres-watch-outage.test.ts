import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedPodLives } from '../../fake/kubernetes-pods.js';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import { readJournals, type JournalLine } from '../../src/snapshots/journal.js';
import { formatInstant, parseInstant } from '../../src/util/time.js';
import { BIN, run, runAsync, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore, stoppedAfterEach } from '../helpers/store.js';
import { journal, playPods, sleep, startCli, untilJournal, useFakeKubernetes } from '../helpers/watch.js';

/**
 * `watch --store` through a PostgreSQL outage (`pg_ctl stop -m immediate`, then started
 * again), against the fake Nomad and Kubernetes servers: the watcher keeps following the
 * cluster, journals into the spool meanwhile, and forwards it once the store answers again, so that the store
 * holds every line once, numbered without a gap, and reports from it are those of a folder
 * watcher that saw no outage. `store push` forwards spooled journals too, once, also after
 * being killed halfway.
 */

const TOKEN = 'watch-outage-token-7d2e';
const MIN = 60_000_000;
const cluster = createCluster({ seed: 31, days: 1, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 20, medianDurationMinutes: 30, restartFraction: 0.3, rescheduleFraction: 0.2 });
const T0 = cluster.startUs + 2 * 60 * MIN;
const iso = (us: number) => new Date(us / 1000).toISOString();
const DAY = iso(T0).slice(0, 10);

const K8S_TOKEN = 'k8s-outage-token-4f1a';
const K8S_T0 = Date.parse('2026-03-02T08:00:00Z');
const kubernetes = useFakeKubernetes({ token: K8S_TOKEN, now: K8S_T0 });

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
}, 60_000);
afterAll(() => db?.stop());

const { fakes, children } = stoppedAfterEach();

async function fakeNomad(): Promise<FakeNomad> {
  // One heartbeat per stream (its greeting): the lines journaled are the changes, exactly.
  const f = await startFakeNomad({ cluster, token: TOKEN, now: T0, heartbeatMs: 600_000 });
  fakes.push(f);
  return f;
}

const nomadEnv = (nomad: FakeNomad) => ({ NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN });
/** Heartbeats are the stream's greeting only: a silent stream is never taken for a dropped one within a test. */
const WATCH = ['watch', '--heartbeat', '10m', '--max-backoff', '1s'];

interface Row {
  file: string;
  lineNumber: number;
  line: string;
}

function rows(store: { psql: (sql: string) => string }): Row[] {
  return JSON.parse(
    store.psql(`SELECT coalesce(json_agg(json_build_object('file', file, 'lineNumber', line_number, 'line', line) ORDER BY source, file, line_number), '[]') FROM journal_lines`),
  ) as Row[];
}

const storedLines = (store: { psql: (sql: string) => string }): JournalLine[] => rows(store).map((r) => JSON.parse(r.line) as JournalLine);

/** Every line of every journal in the spool folder, in order. */
function spooled(dir: string): JournalLine[] {
  if (!existsSync(join(dir, 'journal'))) return [];
  return [...readJournals(dir)].flatMap((read) => read.entries.map((e) => e.line));
}

const events = (lines: JournalLine[]) => lines.filter((l) => l.type !== 'journal');
const allocations = (lines: JournalLine[]) => lines.filter((l): l is Extract<JournalLine, { type: 'allocation' }> => l.type === 'allocation');
/** What the clocks of a run decide left out: each line's type, and each change as the cluster made it. */
const received = (lines: JournalLine[]) => events(lines).map((l) => (l.type === 'allocation' ? { at: l.at, index: l.index, event: l.event, allocation: l.allocation } : l.type));

/** Waits, bounded, until `done` holds. */
async function until(what: string, done: () => boolean, ms = 30_000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (done()) return;
    await sleep(100);
  }
  throw new Error(`waited ${ms / 1000} s for ${what}`);
}

/** Moves the simulated clock forward in steps, letting the stream deliver. */
async function play(nomad: FakeNomad, fromUs: number, toUs: number, stepUs = 10 * MIN): Promise<void> {
  for (let t = fromUs + stepUs; t <= toUs; t += stepUs) {
    nomad.setNow(t);
    await sleep(15);
  }
}

/**
 * Waits, bounded, until `value` is above zero and has not changed for 1.5 s, longer than a
 * watcher keeps lines before it writes them (1 s): what the stream delivered has arrived.
 */
async function settled(what: string, value: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  await until(what, () => {
    const v = value();
    same = v === last ? same + 1 : 0;
    last = v;
    return v > 0 && same >= 15;
  });
  return last;
}

const count = (text: string, part: string) => text.split(part).length - 1;

/** The store's hour files: each numbered 1..n without a gap, and no line twice. */
function expectGapless(store: { psql: (sql: string) => string }): void {
  const files = store.psql('SELECT file, count(*), min(line_number), max(line_number), count(DISTINCT line) FROM journal_lines GROUP BY file ORDER BY file').trim().split('\n');
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) {
    const [, n, min, max, distinct] = f.split('|');
    expect([min, max, distinct]).toEqual(['1', n, n]);
  }
}

describe('watch --store while PostgreSQL is away', () => {
  it('Nomad: keeps following the cluster, journals into the spool, and forwards each line once when the store is back', async () => {
    const nomad = await fakeNomad();
    const store = migratedStore(db, 'watch_outage');
    const folderCwd = tempDir();
    const cwd = tempDir();
    // Side by side on one cluster: the folder watcher sees no outage.
    const folder = startCli(folderCwd, WATCH, nomadEnv(nomad));
    const watcher = startCli(cwd, [...WATCH, '--store', store.url, '--spool', 'spool'], nomadEnv(nomad));
    children.push(folder.child, watcher.child);
    let stderr = '';
    watcher.child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await untilJournal(folderCwd, 'resynchronised');
    await until('the list in the store', () => storedLines(store).some((l) => l.type === 'resynchronised'));

    // The store answers.
    await play(nomad, T0, T0 + 60 * MIN);
    const firstHour = await settled('the first hour in the folder', () => allocations(journal(folderCwd)).length);
    await until('the first hour in the store', () => allocations(storedLines(store)).length === firstHour);
    const before = events(journal(folderCwd)).length;
    expect(firstHour).toBeGreaterThan(5);

    // Away: changes, a dropped stream and its new list, more changes.
    const away = () => events(journal(folderCwd)).slice(before);
    db.halt();
    try {
      await play(nomad, T0 + 60 * MIN, T0 + 90 * MIN);
      nomad.dropStreams();
      await untilJournal(folderCwd, 'resynchronised', 2);
      await until('the new list in the spool', () => spooled(join(cwd, 'spool')).some((l) => l.type === 'resynchronised'));
      await play(nomad, T0 + 90 * MIN, T0 + 120 * MIN);
      await settled('the outage in the folder', () => events(journal(folderCwd)).length - before);
      await until('the lines of the outage in the spool', () => events(spooled(join(cwd, 'spool'))).length === away().length);
      expect(watcher.child.exitCode).toBe(null);
      const inSpool = spooled(join(cwd, 'spool'));
      expect(received(inSpool)).toEqual(received(away()));
      expect(away().filter((l) => l.type === 'allocation').length).toBeGreaterThan(5);
      expect(count(stderr, 'hourmeter: warning: watch: the store cannot be reached (')).toBe(1);
      expect(stderr).toContain('journal lines and lists wait in the spool spool until it answers again');
      // The new list waits there too, under the name its marker gives.
      const relist = inSpool.find((l) => l.type === 'resynchronised') as Extract<JournalLine, { type: 'resynchronised' }>;
      expect(readdirSync(join(cwd, 'spool')).filter((n) => n.endsWith('.json'))).toEqual([relist.snapshot]);

      const spoolFiles = readdirSync(join(cwd, 'spool', 'journal', `nomad-127.0.0.1-${new URL(nomad.url).port}`)).filter((n) => !n.startsWith('.'));
      const since = formatInstant(Math.min(parseInstant(events(inSpool)[0]!.at)!, parseInstant(relist.at)!));
      const checked = run(['check', '--store', store.url, '--spool', 'spool', '--now', iso(T0 + 180 * MIN)], { cwd, env: { PGCONNECT_TIMEOUT: '5' } });
      expect(checked.code).toBe(1);
      expect(checked.stderr).toContain('check failed: the store cannot be reached (cannot connect to the PostgreSQL database');
      expect(checked.stderr).toContain(
        `; 1 snapshot and ${away().length} journal lines (${spoolFiles.length} file${spoolFiles.length === 1 ? '' : 's'}) wait in the spool spool since ${since} (`,
      );
    } finally {
      // Back: the spool goes first, then the watcher writes to the store again.
      db.resume();
    }
    await until('the store to be back', () => stderr.includes('the store answers again'));
    expect(stderr).toContain(`hourmeter: warning: watch: the store answers again: forwarded ${away().length} journal lines and 1 snapshot from the spool spool to the store\n`);
    await play(nomad, T0 + 120 * MIN, T0 + 180 * MIN);
    const all = await settled('the last hour in the folder', () => allocations(journal(folderCwd)).length);
    await until('the last hour in the store', () => allocations(storedLines(store)).length === all);
    folder.child.kill('SIGTERM');
    watcher.child.kill('SIGTERM');
    const [f, w] = await Promise.all([folder.done, watcher.done]);
    expect(f.code).toBe(0);
    expect(w.code).toBe(0);
    expect(count(stderr, 'the store cannot be reached')).toBe(1);
    expect(count(stderr, 'the store answers again')).toBe(1);

    // Every line once, in the order received, each hour file numbered 1..n.
    expectGapless(store);
    expect(received(storedLines(store))).toEqual(received(journal(folderCwd)));
    const markers = storedLines(store).filter((l): l is Extract<JournalLine, { type: 'resynchronised' }> => l.type === 'resynchronised');
    expect(markers.length).toBe(2);
    expect(store.psql('SELECT name FROM snapshot_documents ORDER BY name')).toBe(markers.map((m) => `${m.snapshot}\n`).sort().join(''));
    // Nothing waits any more, and the reports are the folder watcher's.
    expect(spooled(join(cwd, 'spool'))).toEqual([]);
    expect(readdirSync(join(cwd, 'spool')).filter((n) => n.endsWith('.json'))).toEqual([]);
    const now = iso(T0 + 185 * MIN);
    const checked = run(['check', '--store', store.url, '--spool', 'spool', '--now', now, '--max-silence', '1h'], { cwd });
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    const report = ['stats', '--from', DAY, '--to', DAY, '--by', 'namespace,user', '-o', 'csv', '--now', now];
    const fromStore = run([...report, '--store', store.url], { cwd });
    expect(fromStore.stderr).toBe('');
    expect(fromStore.stdout.split('\n').length).toBeGreaterThan(3);
    expect(fromStore.stdout).toBe(run(report, { cwd: folderCwd }).stdout);
  }, 90_000);

  it('Nomad: a watcher started while the store cannot be reached journals into the spool from its first list', async () => {
    const nomad = await fakeNomad();
    const store = migratedStore(db, 'watch_away');
    const cwd = tempDir();
    db.halt();
    try {
      const watcher = startCli(cwd, [...WATCH, '--store', store.url, '--spool', 'spool'], nomadEnv(nomad));
      children.push(watcher.child);
      let stderr = '';
      watcher.child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      await until('the list in the spool', () => spooled(join(cwd, 'spool')).some((l) => l.type === 'resynchronised'));
      await play(nomad, T0, T0 + 60 * MIN);
      expect(await settled('the changes in the spool', () => allocations(spooled(join(cwd, 'spool'))).length)).toBeGreaterThan(5);
      expect(watcher.child.exitCode).toBe(null);
      expect(stderr).toMatch(/^hourmeter: warning: watch: the store cannot be reached \(cannot connect to the PostgreSQL database .*\); journal lines and lists wait in the spool spool until it answers again\n$/);
      const inSpool = spooled(join(cwd, 'spool'));
      db.resume();
      await until('the store to be back', () => stderr.includes('the store answers again'));
      expect(stderr).toContain(`the store answers again: forwarded ${events(inSpool).length} journal lines and 1 snapshot from the spool spool to the store\n`);
      await play(nomad, T0 + 60 * MIN, T0 + 90 * MIN);
      await settled('the changes after the return in the store', () => allocations(storedLines(store)).length - allocations(inSpool).length);
      watcher.child.kill('SIGTERM');
      const w = await watcher.done;
      expect(w.code).toBe(0);
      expectGapless(store);
      const stored = storedLines(store);
      // The spooled lines first, as they were spooled, then those written after the return.
      expect(received(stored).slice(0, events(inSpool).length)).toEqual(received(inSpool));
      expect(allocations(stored).length).toBeGreaterThan(allocations(inSpool).length);
      expect(spooled(join(cwd, 'spool'))).toEqual([]);
      expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('1\n');
      // The owners the list saw reached the store's users, and left the spool.
      expect(Number(store.psql('SELECT count(*) FROM users'))).toBeGreaterThan(0);
      expect(existsSync(join(cwd, 'spool', 'userdb', 'users.json'))).toBe(false);
    } finally {
      if (!existsSync(join(db.socketDir, 'data', 'postmaster.pid'))) db.resume();
    }
  }, 60_000);
});

describe('watch --store --source kubernetes while PostgreSQL is away', () => {
  it('keeps watching the pods, journals into the spool, and forwards each line once when the store is back', async () => {
    const lives = simulatedPodLives({ seed: 'k8s-outage', count: 40, fromMs: K8S_T0 - 30 * 60_000, toMs: K8S_T0 + 90 * 60_000 });
    const k8s = await kubernetes.fake(lives);
    const store = migratedStore(db, 'k8s_outage');
    const cwd = tempDir();
    const w = kubernetes.watch(cwd, k8s, ['--store', store.url, '--spool', 'spool']);
    let stderr = '';
    w.child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    await until('the list in the store', () => storedLines(store).some((l) => l.type === 'resynchronised'));
    await playPods(k8s, lives, K8S_T0, K8S_T0 + 30 * 60_000);
    await settled('the first changes in the store', () => allocations(storedLines(store)).length);
    const before = rows(store).map((r) => r.line);

    db.halt();
    let inSpool: string[];
    try {
      await playPods(k8s, lives, K8S_T0 + 30 * 60_000, K8S_T0 + 60 * 60_000);
      await settled('the changes in the spool', () => allocations(spooled(join(cwd, 'spool'))).length);
      expect(w.child.exitCode).toBe(null);
      expect(count(stderr, 'the store cannot be reached')).toBe(1);
      // Hour files in time order (a test may run across the hour).
      const files = readdirSync(join(cwd, 'spool', 'journal'), { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.jsonl')).sort();
      inSpool = files.flatMap((f) => readFileSync(join(cwd, 'spool', 'journal', f), 'utf8').split('\n').slice(0, -1));
    } finally {
      db.resume();
    }
    await until('the store to be back', () => stderr.includes('the store answers again'));
    expect(stderr).toMatch(/the store answers again: forwarded \d+ journal lines and 0 snapshots from the spool spool to the store\n/);
    await playPods(k8s, lives, K8S_T0 + 60 * 60_000, K8S_T0 + 90 * 60_000);
    const spooledChanges = inSpool.filter((l) => (JSON.parse(l) as JournalLine).type === 'allocation').length;
    await settled('the last changes in the store', () => allocations(storedLines(store)).length - allocations(before.map((l) => JSON.parse(l) as JournalLine)).length - spooledChanges);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);

    expectGapless(store);
    // What the store held, then the spooled file as it was (and what it took after, until the forward), then the rest.
    const stored = rows(store).map((r) => r.line);
    expect(stored.slice(0, before.length)).toEqual(before);
    const at = stored.indexOf(inSpool[0]!);
    expect(at).toBeGreaterThanOrEqual(before.length);
    expect(stored.slice(at, at + inSpool.length)).toEqual(inSpool);
    expect(spooledChanges).toBeGreaterThan(3);
    expect(stored.slice(at + inSpool.length).some((l) => (JSON.parse(l) as JournalLine).type === 'allocation')).toBe(true);
    expect(spooled(join(cwd, 'spool'))).toEqual([]);
    expect(store.psql('SELECT count(*) FROM snapshot_documents')).toBe('1\n');
  }, 60_000);
});

/** An allocation line of about 400 bytes, numbered `i`. */
function allocationLine(hour: string, i: number): string {
  const at = `${hour}:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}Z`;
  const allocation = {
    id: `alloc-${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`,
    namespace: 'spool',
    job_id: `job-${i % 97}`,
    job_name: `job-${i % 97}`,
    user: `user-${i % 13}`,
    group: 'team',
    component: null,
    node: 'node-1',
    status: 'running',
    start: at,
    end: null,
    modified: at,
    resources: { cpu_cores: 1, cpu_mhz: 1000, memory_mib: 2048, disk_mib: 100, gpu: 0 },
  };
  return JSON.stringify({ type: 'allocation', at, index: 1000 + i, event: 'AllocationUpdated', allocation });
}

const header = (at: string) => JSON.stringify({ type: 'journal', at, format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://10.0.0.9:4646', region: null } });
const SOURCE = 'nomad-10.0.0.9-4646';

/** Writes a spooled journal file: a header, then `lines`. */
function spoolFile(spool: string, hour: string, lines: string[], headerAt = `${hour}:00:00.000000Z`): string {
  const dir = join(spool, 'journal', SOURCE);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${hour}Z.jsonl`);
  writeFileSync(path, [header(headerAt), ...lines].map((l) => `${l}\n`).join(''));
  return path;
}

/** The stored lines of an hour file, in order. */
const storedFile = (store: { psql: (sql: string) => string }, hour: string): string[] =>
  JSON.parse(store.psql(`SELECT coalesce(json_agg(line ORDER BY line_number), '[]') FROM journal_lines WHERE source = '${SOURCE}' AND file = 'journal/${SOURCE}/${hour}Z.jsonl'`)) as string[];

/** The number and digest of the stored lines of an hour file, and of `lines`, to compare files too large to read back. */
const storedDigest = (store: { psql: (sql: string) => string }, hour: string): string =>
  store.psql(`SELECT count(*) || ' ' || md5(string_agg(line, E'\\n' ORDER BY line_number)) FROM journal_lines WHERE source = '${SOURCE}' AND file = 'journal/${SOURCE}/${hour}Z.jsonl'`).trim();
const digest = (lines: string[]): string => `${lines.length} ${createHash('md5').update(lines.join('\n')).digest('hex')}`;

/** Adds lines to an hour file in the store, numbered on, as a watcher writing to the store would. */
function storeLines(store: { psql: (sql: string) => string }, hour: string, lines: string[]): void {
  const from = storedFile(store, hour).length;
  const values = lines.map((l, i) => `('${SOURCE}', 'journal/${SOURCE}/${hour}Z.jsonl', ${from + i + 1}, '${l.replace(/'/g, "''")}')`).join(', ');
  store.psql(`INSERT INTO journal_lines (source, file, line_number, line) VALUES ${values}`);
}

describe('store push of spooled journals', () => {
  it('forwards them after the lines the store holds for their hour, once; a batch whose commit was not confirmed is not added twice', () => {
    const hour = '2024-09-01T05';
    const sent = [allocationLine(hour, 1), allocationLine(hour, 2)];
    const later = [allocationLine(hour, 3), allocationLine(hour, 4), allocationLine(hour, 5)];
    const storedHeader = header(`${hour}:00:01.000000Z`);
    const outcomes = [
      // The store took the batch (only its confirmation was lost): its copy in the spool is skipped.
      { took: true, expected: [storedHeader, ...sent, header(`${hour}:10:00.000000Z`), ...later], added: 3 },
      // It did not: the copy goes on after what the store holds.
      { took: false, expected: [storedHeader, header(`${hour}:10:00.000000Z`), ...sent, ...later], added: 5 },
    ];
    for (const { took, expected, added } of outcomes) {
      const store = migratedStore(db, 'push_unconfirmed');
      const cwd = tempDir();
      storeLines(store, hour, took ? [storedHeader, ...sent] : [storedHeader]);
      const path = spoolFile(join(cwd, 'spool'), hour, [...sent, ...later], `${hour}:10:00.000000Z`);
      writeFileSync(join(cwd, 'spool', 'journal', SOURCE, `.${hour}Z.jsonl.unconfirmed`), JSON.stringify([{ file: `journal/${SOURCE}/${hour}Z.jsonl`, line: 2, lines: sent, at: 2, count: 2 }]));
      const r = run(['store', 'push', '--store', store.url, '--spool', 'spool'], { cwd });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`forwarded 0 spooled snapshots, ${added} journal lines (1 file) and 0 users from spool to the store\n`);
      expect(storedFile(store, hour)).toEqual(expected);
      expect(readdirSync(join(cwd, 'spool', 'journal', SOURCE))).toEqual([]);
      expect(existsSync(path)).toBe(false);
      expectGapless(store);
    }
  });

  it('leaves the journal a running watcher holds in the spool, saying so', () => {
    const store = migratedStore(db, 'push_busy');
    const cwd = tempDir();
    spoolFile(join(cwd, 'spool'), '2024-09-01T05', [allocationLine('2024-09-01T05', 1)]);
    // The lock file a live process on this host holds: this test's own.
    writeFileSync(join(cwd, 'spool', 'journal', SOURCE, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
    const r = run(['store', 'push', '--store', store.url, '--spool', 'spool'], { cwd });
    expect(r.stdout).toBe('nothing waits in the spool spool\n');
    expect(r.stderr).toBe(`hourmeter: warning: ${join('spool', 'journal', SOURCE)} is held by a running watcher, which forwards it itself once it reaches the store\n`);
    expect(store.psql('SELECT count(*) FROM journal_lines')).toBe('0\n');
  });

  it('killed with kill -9 halfway and run again, adds every spooled line once, in order, and empties the spool', async () => {
    const cwd = tempDir();
    const spool = join(cwd, 'spool');
    const hours = ['2024-09-01T05', '2024-09-01T06', '2024-09-01T07'];
    const perFile = 30_000;
    const store = migratedStore(db, 'push_killed');
    // The watcher wrote the first lines of the first hour to the store before it went away.
    const first = [header(`${hours[0]}:00:00.500000Z`), allocationLine(hours[0]!, 0)];
    storeLines(store, hours[0]!, first);
    const files = hours.map((hour) => Array.from({ length: perFile }, (_, i) => allocationLine(hour, i + 1)));
    hours.forEach((hour, i) => spoolFile(spool, hour, files[i]!, `${hour}:00:02.000000Z`));
    const total = first.length + hours.length * (perFile + 1);
    const stored = () => Number(store.psql('SELECT count(*) FROM journal_lines'));

    const child = spawn(process.execPath, [BIN, 'store', 'push', '--store', store.url, '--spool', spool], { env: { PATH: process.env.PATH ?? '', HOME: tempDir() }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let seen = first.length;
    for (let i = 0; i < 1000 && seen === first.length; i++) {
      await sleep(10);
      seen = stored();
    }
    child.kill('SIGKILL');
    expect(await exited).toBe(null);
    // An INSERT the server was running when the push died ends first.
    await until('the killed push to leave the server', () => store.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hourmeter' AND datname = current_database()") === '0\n');
    const halfway = stored();
    expect(halfway).toBeGreaterThan(first.length);
    expect(halfway).toBeLessThan(total);

    const again = await runAsync(['store', 'push', '--store', store.url, '--spool', spool], { cwd });
    expect(again.stderr).toBe('');
    const added = Number(/^forwarded 0 spooled snapshots, (\d+) journal lines \(3 files\) and 0 users from .* to the store\n$/.exec(again.stdout)?.[1]);
    // The lines counted are the watcher's: the headers are left out.
    expect(added + halfway).toBeGreaterThanOrEqual(total - hours.length);
    expect(added).toBeLessThanOrEqual(total - halfway);
    expect(stored()).toBe(total);
    expectGapless(store);
    expect(storedDigest(store, hours[0]!)).toBe(digest([...first, header(`${hours[0]}:00:02.000000Z`), ...files[0]!]));
    for (const [i, hour] of hours.entries()) {
      if (i > 0) expect(storedDigest(store, hour)).toBe(digest([header(`${hour}:00:02.000000Z`), ...files[i]!]));
    }
    expect(readdirSync(join(spool, 'journal', SOURCE))).toEqual([]);
    expect(run(['store', 'push', '--store', store.url, '--spool', spool], { cwd }).stdout).toBe(`nothing waits in the spool ${spool}\n`);
  }, 60_000);
});
