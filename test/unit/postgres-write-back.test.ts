import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyIndex, INDEX_TABLES, trackChanges, writeBack } from '../../src/store/postgres/index-replica.js';
import { migrate } from '../../src/store/postgres/schema.js';
import { openIndex, type Db } from '../../src/store/schema.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

/**
 * The index's way through a real PostgreSQL: rows written back (all of them, or only those a
 * fold touched, in batches smaller than the tables) and copied into another SQLite index
 * come back exactly, text with quotes and NULs of meaning (NULL), fractions, blobs, a pair
 * key and a row replaced under another rowid included.
 */

let server: Postgres;
let client: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  client = new pg.Client({ connectionString: server.url() });
  await client.connect();
  await migrate(client);
}, 60_000);
afterAll(async () => {
  await client?.end();
  server?.stop();
});

const TRACK = ['key', 'namespace', 'job_id', 'job_name', 'user', 'grp', 'component', 'node', 'cpu_milli', 'cpu_mhz', 'memory_bytes', 'disk_bytes', 'gpu', 'start_us', 'state', 'last_holding_us', 'end_us', 'next_us', 'listed_terminal', 'next_kind', 'listed_holding', 'listed', 'unlisted_holding', 'segment', 'slot'];

function allocation(db: Db, rowid: number, key: string, gpu: number): void {
  const values = [key, `ns'; DROP TABLE x; --`, `job-${rowid}`, null, `o"brien`, null, null, 'n1', 2000, 0, 1 << 30, 0, gpu, 1_725_148_800_000_000 + rowid, 'ended', null, 1_725_152_400_000_000, null, 1, null, 0, 0, 0, rowid % 3, rowid];
  db.prepare(`INSERT OR REPLACE INTO allocations (rowid, ${TRACK.map((c) => `"${c}"`).join(', ')}) VALUES (?, ${TRACK.map(() => '?').join(', ')})`).run(rowid, ...values);
}

function fill(db: Db): void {
  for (let i = 1; i <= 12; i++) allocation(db, i, `alloc-${i}`, i % 2 === 0 ? 0.5 : 1);
  for (let i = 1; i <= 7; i++) db.prepare('INSERT INTO names (id, value) VALUES (?, ?)').run(i, `name ${i} it's`);
  for (let i = 1; i <= 3; i++) db.prepare('INSERT INTO segments (id, tracks, min_start_us, max_reach_us, data) VALUES (?, ?, ?, ?, ?)').run(i, 10 * i, i, 100 * i, Buffer.from([0, i, 255, 92, 39]));
  for (let i = 1; i <= 4; i++) db.prepare('INSERT INTO watched_stretches (source, start_us, end_us) VALUES (?, ?, ?)').run(i % 2 ? 'nomad-a' : 'k8s-b', i * 1000, i * 1000 + 500);
  db.prepare("INSERT INTO snapshots (name, time_us, bytes, mtime_ms, covered) VALUES ('2024-09-01T00:00:00Z.json', 1, 10, 0, '[\"a\"]')").run();
  db.prepare("INSERT INTO meta (key, value) VALUES ('last_us', '1725152400000000')").run();
}

/** Every index table's rows, in key order. */
function dump(db: Db): Record<string, unknown[]> {
  return Object.fromEntries(
    INDEX_TABLES.map((t) => {
      const key = t.key === 'rowid' ? ['rowid'] : t.key;
      const columns = t.key === 'rowid' ? ['rowid', ...t.columns] : t.columns;
      return [t.name, db.prepare(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM "${t.name}" ORDER BY ${key.map((c) => `"${c}"`).join(', ')}`).raw(true).all()];
    }),
  );
}

async function copied(): Promise<Record<string, unknown[]>> {
  const again = openIndex(':memory:', { create: true });
  await copyIndex(client, again, 'all');
  try {
    return dump(again);
  } finally {
    again.close();
  }
}

describe('writing the index back to PostgreSQL and copying it again', () => {
  it('gives back every row, in batches of 5 and of 2, whole and then only what a fold touched', async () => {
    const db = openIndex(':memory:', { create: true });
    fill(db);
    await client.query('BEGIN');
    await writeBack(client, db, true, 5);
    await client.query('COMMIT');
    const first = await copied();
    expect(first).toEqual(dump(db));
    expect(first.allocations).toHaveLength(12);
    expect((first.allocations as unknown[][])[1]![13]).toBe(0.5);
    expect((first.segments as unknown[][])[2]![4]).toEqual(Buffer.from([0, 3, 255, 92, 39]));

    // A fold's touches: an update, a delete, a row replaced under another rowid (its old row
    // goes without a delete of its own), a pair key removed, a name added.
    trackChanges(db);
    db.prepare("UPDATE allocations SET state = 'holding', end_us = NULL WHERE key = 'alloc-3'").run();
    db.prepare("DELETE FROM allocations WHERE key = 'alloc-5'").run();
    allocation(db, 40, 'alloc-7', 2);
    db.prepare("DELETE FROM watched_stretches WHERE source = 'k8s-b' AND start_us = 2000").run();
    db.prepare("INSERT INTO names (id, value) VALUES (8, 'eight')").run();
    await client.query('BEGIN');
    await writeBack(client, db, false, 2);
    await client.query('COMMIT');
    const second = await copied();
    expect(second).toEqual(dump(db));
    expect(second.allocations).toHaveLength(11);
    expect((second.allocations as unknown[][]).map((r) => r[0])).toEqual([1, 2, 3, 4, 6, 8, 9, 10, 11, 12, 40]);
    expect(second.watched_stretches).toHaveLength(3);
    expect((await client.query('SELECT count(*)::int AS n FROM index_names')).rows[0].n).toBe(8);
    db.close();
  });
});
