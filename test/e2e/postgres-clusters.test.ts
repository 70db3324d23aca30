import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import type { Cluster } from '../../src/simulator/model.js';
import { run, runAsync, startServe, tempDir } from '../helpers/cli.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { migratedStore, stoppedAfterEach } from '../helpers/store.js';
import { sleep, startCli } from '../helpers/watch.js';

/**
 * Many writers and many readers on one PostgreSQL store (docs/store.md, docs/accounting.md#clusters):
 * three fake Nomad clusters captured at once, A and B by `snapshot` loops (the same simulated
 * history: they share every namespace name and allocation id), C by a watcher, while two
 * `serve` processes answer for 60 s. Afterwards every report equals the one of a sequential
 * run: A and B captured one snapshot after another into a folder, and C's journal (a
 * watcher's lines are its own) read in order from that folder.
 */

const TOKEN = 'c1u5ter-token-77';
const MIN = 60_000_000;
const options = { days: 1, intervalMinutes: 60, durationDistribution: 'lognormal' as const, targetConcurrent: 10, medianDurationMinutes: 90 };
const shared = createCluster({ seed: 41, ...options });
const other = createCluster({ seed: 42, ...options });
const DAY = new Date(shared.startUs / 1000).toISOString().slice(0, 10);
const iso = (us: number) => new Date(us / 1000).toISOString();
/** A and B: a snapshot every 2 h of the simulated day. */
const ROUNDS = Array.from({ length: 12 }, (_, k) => shared.startUs + k * 120 * MIN);
const CONCURRENT_MS = 60_000;

let db: Postgres;
beforeAll(async () => {
  db = await startPostgres();
}, 60_000);
afterAll(() => db?.stop());

const { fakes, children } = stoppedAfterEach();

async function fake(cluster: Cluster, nowUs: number): Promise<FakeNomad> {
  // A buffer larger than the day's writes: the watcher misses nothing however it is scheduled.
  const f = await startFakeNomad({ cluster, token: TOKEN, now: nowUs, heartbeatMs: 500, eventBufferSize: 100_000 });
  fakes.push(f);
  return f;
}

const env = (nomad: FakeNomad) => ({ NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN });

/** One cluster's snapshots, one after another, each at its round's simulated instant. */
async function snapshots(nomad: FakeNomad, name: string, cwd: string, store: string[], paceMs = 0): Promise<void> {
  for (const t of ROUNDS) {
    nomad.setNow(t);
    const r = await runAsync(['snapshot', '--cluster', name, '--now', iso(t), '-q', ...store], { cwd, env: env(nomad) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    if (paceMs > 0) await sleep(paceMs);
  }
}

/** The report every reader must agree on, as JSON. */
function report(cwd: string, where: string[], extra: string[] = []): { rows: unknown[]; total: unknown; bounds: unknown; coverage: unknown } {
  const r = run(['stats', '--from', DAY, '--to', DAY, '--by', 'cluster,namespace', '-o', 'json', ...where, ...extra], { cwd });
  expect(r.code, r.stderr).toBe(0);
  const { rows, total, bounds, coverage } = JSON.parse(r.stdout) as { rows: unknown[]; total: unknown; bounds: unknown; coverage: unknown };
  return { rows, total, bounds, coverage };
}

describe('three clusters into one store at once', () => {
  it('with a watcher and two serve processes answering for 60 s: every report equals a sequential run, per cluster and in total', async () => {
    const store = migratedStore(db, 'clusters');
    const cwd = tempDir();
    const [a, b, c] = await Promise.all([fake(shared, ROUNDS[0]!), fake(shared, ROUNDS[0]!), fake(other, other.startUs)]);

    // C: a watcher, whose clock is the server's; its list comes first.
    const watcher = startCli(cwd, ['watch', '--cluster', 'C', '--heartbeat', '1s', '--max-backoff', '1s', '--store', store.url], env(c));
    children.push(watcher.child);
    for (let i = 0; store.psql("SELECT count(*) FROM journal_lines WHERE line LIKE '%\"resynchronised\"%'").trim() === '0'; i++) {
      if (i > 200) throw new Error('the watcher did not list the cluster within 20 s');
      await sleep(100);
    }

    // Two readers, each folding what arrives every second, asked again and again meanwhile.
    const servers = await Promise.all([0, 1].map(() => startServe(tempDir(), ['--store', store.url, '--refresh', '1s'])));
    for (const s of servers) children.push(s.child);
    const started = Date.now();
    const answers = [0, 0];
    const failures: string[] = [];
    const ask = async (k: number) => {
      while (Date.now() - started < CONCURRENT_MS) {
        const r = await fetch(`${servers[k]!.url}/stats?by=cluster,namespace&from=${DAY}&to=${DAY}`);
        const text = await r.text();
        if (r.status === 200 && Array.isArray((JSON.parse(text) as { rows?: unknown }).rows)) answers[k]!++;
        else failures.push(`serve ${k}: ${r.status} ${text.slice(0, 200)}`);
        await sleep(200);
      }
    };
    // C's day plays out over about 45 s, past its end so that its open allocations reach the period's end.
    const playC = async () => {
      const step = 10 * MIN;
      for (let t = other.startUs + step; t <= other.startUs + 26 * 60 * MIN; t += step) {
        c.setNow(t);
        await sleep(280);
      }
    };
    await Promise.all([
      ask(0),
      ask(1),
      playC(),
      snapshots(a, 'A', cwd, ['--store', store.url], 3000),
      snapshots(b, 'B', cwd, ['--store', store.url], 3000),
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(CONCURRENT_MS);
    expect(failures).toEqual([]);
    // Both answered all along (a request every 0.2 s, whatever the folds cost).
    expect(answers[0]).toBeGreaterThan(20);
    expect(answers[1]).toBeGreaterThan(20);

    // The watcher's last line comes after the clock's last move: it ends with SIGTERM.
    await sleep(1500);
    watcher.child.kill('SIGTERM');
    const stopped = await watcher.done;
    expect(stopped.stderr).toBe('');
    expect(stopped.code).toBe(0);

    // The sequential run: A, then B, into a folder; C's captures, as stored, beside them.
    const seq = tempDir();
    const [a2, b2] = await Promise.all([fake(shared, ROUNDS[0]!), fake(shared, ROUNDS[0]!)]);
    await snapshots(a2, 'A', seq, []);
    await snapshots(b2, 'B', seq, []);
    const docs = JSON.parse(store.psql("SELECT json_agg(json_build_object('name', name, 'text', convert_from(content, 'UTF8'))) FROM snapshot_documents WHERE name LIKE 'C/%'")) as { name: string; text: string }[];
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      mkdirSync(dirname(join(seq, 'snapshots', d.name)), { recursive: true });
      writeFileSync(join(seq, 'snapshots', d.name), d.text);
    }
    const lines = JSON.parse(store.psql("SELECT json_agg(json_build_object('path', file, 'line', line) ORDER BY source, file, line_number) FROM journal_lines")) as { path: string; line: string }[];
    const files = new Map<string, string[]>();
    for (const l of lines) files.set(l.path, [...(files.get(l.path) ?? []), l.line]);
    for (const [path, text] of files) {
      // A stored journal file's name is its path in the folder (journal/<source>/<hour>Z.jsonl).
      mkdirSync(dirname(join(seq, 'snapshots', path)), { recursive: true });
      writeFileSync(join(seq, 'snapshots', path), text.join('\n') + '\n');
    }
    // Every capture once: A's and B's 12 rounds each, and C's lists.
    expect(store.psql("SELECT count(*) FROM snapshot_documents WHERE name LIKE 'A/%'").trim()).toBe('12');
    expect(store.psql("SELECT count(*) FROM snapshot_documents WHERE name LIKE 'B/%'").trim()).toBe('12');
    expect(store.psql('SELECT count(*) FROM (SELECT source, file, line_number FROM journal_lines GROUP BY 1, 2, 3 HAVING count(*) > 1) d').trim()).toBe('0');

    const elsewhere = tempDir();
    const concurrent = report(elsewhere, ['--store', store.url]);
    const sequential = report(seq, []);
    expect(concurrent).toEqual(sequential);
    for (const cluster of ['A', 'B', 'C']) {
      expect(report(elsewhere, ['--store', store.url], ['--cluster', cluster])).toEqual(report(seq, [], ['--cluster', cluster]));
    }
    // Three clusters, A and B alike to the allocation (one history, two clusters), C its own.
    const byCluster = (r: { rows: unknown[] }) => (r.rows as { cluster: string; namespace: string; cpu_hours: number }[]);
    const rowsOf = (name: string) => byCluster(concurrent).filter((r) => r.cluster === name).map(({ cluster: _, ...rest }) => rest);
    expect(rowsOf('A').length).toBeGreaterThan(1);
    expect(rowsOf('A')).toEqual(rowsOf('B'));
    expect(rowsOf('C').length).toBeGreaterThan(0);
    expect(new Set(byCluster(concurrent).map((r) => r.cluster))).toEqual(new Set(['A', 'B', 'C']));

    // The readers end where the CLI does, once they have folded the last captures.
    for (const s of servers) {
      let last: unknown = null;
      for (let i = 0; i < 100; i++) {
        last = await (await fetch(`${s.url}/stats?by=cluster,namespace&from=${DAY}&to=${DAY}`)).json();
        if (JSON.stringify((last as { rows: unknown }).rows) === JSON.stringify(concurrent.rows)) break;
        await sleep(200);
      }
      expect((last as { rows: unknown }).rows).toEqual(concurrent.rows);
    }
  }, 240_000);
});
