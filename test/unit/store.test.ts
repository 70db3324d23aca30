import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregateTracks } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import type { GapPolicy } from '../../src/accounting/types.js';
import { writeHistory } from '../../src/simulator/index.js';
import { windowDiagnostics } from '../../src/snapshots/catalogue.js';
import { listSnapshots } from '../../src/snapshots/files.js';
import { loadHistory } from '../../src/snapshots/full-read.js';
import { unchangedSinceIngest } from '../../src/store/freshness.js';
import { ingest, type IngestProgress, type IngestResult } from '../../src/store/ingest.js';
import { monthlyReport } from '../../src/reports/monthly.js';
import { parseMonth } from '../../src/accounting/months.js';
import { planIngest } from '../../src/store/plan.js';
import { openIndex, SCHEMA_VERSION, type Db } from '../../src/store/schema.js';
import { indexStatus, verifyIndex } from '../../src/store/status.js';
import { filesView, indexView, type HistoryView } from '../../src/store/view.js';
import { IndexNames } from '../../src/store/segments.js';
import { TrackTable } from '../../src/store/tracks.js';
import { openIndexStore } from '../../src/history/sqlite.js';
import { HashedKeys, hash64 } from '../../src/store/hashed-keys.js';
import { FlavourTable, TrackColumns } from '../../src/accounting/columns.js';
import type { Track } from '../../src/accounting/reconstruct.js';
import { tempDir } from '../helpers/cli.js';

/**
 * The index must give exactly what a full read of the files gives, however it was built:
 * in one go, file by file, after tampering, removal or late files, or after a migration.
 */

async function simulated(format: 'native' | 'legacy', seed: number, days = 4, gzip = false): Promise<string> {
  const dir = tempDir();
  await writeHistory(dir, { format, seed, days, intervalMinutes: 60, targetConcurrent: 40, start: '2024-09-01T00:00:00Z', missed: 0.05, gzip });
  return dir;
}

/** Files of a folder in capture order (names sort by time). */
function names(dir: string): string[] {
  return readdirSync(dir).filter((n) => /\.json(\.gz)?$/.test(n)).sort();
}

async function ingestDir(db: Db, dir: string, opts: { rebuild?: boolean; warn?: (l: string) => void; segmentTracks?: number } = {}): Promise<IngestResult> {
  return ingest(db, (await listSnapshots(dir)).files, { warn: opts.warn ?? (() => {}), rebuild: opts.rebuild, segmentTracks: opts.segmentTracks });
}

function freshDb(): Db {
  return openIndex(join(tempDir(), 'index.sqlite'));
}

const PERIODS: [string, string][] = [
  ['2024-09-01', '2024-09-04'],
  ['2024-09-02', '2024-09-02'],
  ['2024-08-25', '2024-09-01'],
  ['2024-09-04', '2024-09-10'],
];

/** Every number a report shows, for a few periods, gap policies and groupings. */
function reports(view: HistoryView) {
  const out: unknown[] = [];
  for (const [from, to] of PERIODS) {
    const period = resolvePeriod(from, to, 'UTC');
    for (const gapPolicy of ['midpoint', 'last-seen', 'next'] as GapPolicy[]) {
      const { tracks, names, files, rows } = view.read(period);
      const batches = [...tracks];
      // The size the entries are made at: at least the rows read (more rows only cost room).
      expect(rows).toBeGreaterThanOrEqual(batches.reduce((n, b) => n + b.length, 0));
      // `tracks` counts what was read, which the index narrows to the period: left out.
      const { tracks: _, ...result } = aggregateTracks(batches, names, period, ['namespace', 'user'], {}, { gapPolicy, gcWindowUs: null }, { expectedRows: rows });
      out.push(result, windowDiagnostics(files));
    }
  }
  return out;
}

async function directReports(dir: string) {
  return reports(filesView(await loadHistory(await listSnapshots(dir), { strict: false, warn: () => {} })));
}

/** The allocation table as data, for comparing two indexes row by row (segments aside). */
const tracksTable = (db: Db) =>
  (db.prepare('SELECT * FROM allocations UNION ALL SELECT * FROM live_allocations ORDER BY key').all() as { segment?: number; slot?: number }[]).map(({ segment: _, slot: __, ...row }) => row);

describe('ingest', () => {
  for (const [format, gzip] of [['native', false], ['legacy', false], ['native', true]] as const) {
    it(`${format}${gzip ? ', gzipped' : ''}: file by file, in chunks, or in one go, the index equals a full read`, async () => {
      const src = await simulated(format, 7, 4, gzip);
      if (gzip) expect(names(src).every((n) => n.endsWith('.json.gz'))).toBe(true);
      const all = names(src);
      expect(all.length).toBeGreaterThan(80);
      const direct = await directReports(src);

      const once = freshDb();
      const r = await ingestDir(once, src);
      expect(r).toMatchObject({ mode: 'append', reason: null, files: all.length, corrupt: 0 });
      expect(reports(indexView(once))).toEqual(direct);

      // Appended one file at a time: every ingest resumes the saved reconstruction.
      const dst = tempDir();
      const byFile = freshDb();
      for (const n of all) {
        copyFileSync(join(src, n), join(dst, n));
        const step = await ingestDir(byFile, dst, { segmentTracks: 16 });
        expect(step.files).toBe(1);
      }
      expect(tracksTable(byFile)).toEqual(tracksTable(once));
      expect(reports(indexView(byFile))).toEqual(direct);
      // Each mix of amounts is stored once, however many ingests met it.
      const flavours = (db: Db) => FlavourTable.decode(db.prepare('SELECT amounts FROM flavours').pluck().get() as Buffer);
      const mixes = (t: FlavourTable) => Array.from({ length: t.count }, (_, f) => JSON.stringify(t.amounts(f)));
      expect(mixes(flavours(byFile)).sort()).toEqual(mixes(flavours(once)).sort());
      expect(new Set(mixes(flavours(byFile))).size).toBe(flavours(byFile).count);

      // Uneven chunks, and an ingest with nothing new.
      const dst2 = tempDir();
      const chunked = freshDb();
      for (const [a, b] of [[0, 5], [5, 6], [6, 50], [50, all.length]] as const) {
        for (const n of all.slice(a, b)) copyFileSync(join(src, n), join(dst2, n));
        expect((await ingestDir(chunked, dst2, { segmentTracks: 7 })).mode).toBe('append');
      }
      expect((await ingestDir(chunked, dst2)).mode).toBe('none');
      expect(tracksTable(chunked)).toEqual(tracksTable(once));
    });
  }

  it('a file edited in place, size and mtime kept, is caught by verify; the next ingest re-reads', async () => {
    const dir = await simulated('legacy', 11, 2);
    const victim = join(dir, names(dir)[10]!);
    // A whole second: restoring a fractional mtime through a float API may miss it by 1 ms.
    utimesSync(victim, 1_700_000_000, 1_700_000_000);
    const db = freshDb();
    await ingestDir(db, dir);
    const text = readFileSync(victim, 'latin1');
    const m = /"cpu_num": (\d)/.exec(text)!;
    const tampered = text.slice(0, m.index) + `"cpu_num": ${m[1] === '9' ? '8' : Number(m[1]) + 1}` + text.slice(m.index + m[0].length);
    expect(tampered.length).toBe(text.length);
    writeFileSync(victim, tampered, 'latin1');
    utimesSync(victim, 1_700_000_000, 1_700_000_000);

    // Size and mtime are unchanged: a plain ingest cannot tell.
    expect(await ingestDir(db, dir)).toMatchObject({ mode: 'none', reason: null });
    const v = verifyIndex(db, dir, await listSnapshots(dir));
    expect(v).toEqual({ checked: names(dir).length, mismatched: [names(dir)[10]], missing: [], unindexed: 0 });
    const again = await ingestDir(db, dir);
    expect(again.mode).toBe('rebuild');
    expect(again.reason).toContain(`1 file changed (${names(dir)[10]})`);
    expect(reports(indexView(db))).toEqual(await directReports(dir));
    expect(verifyIndex(db, dir, await listSnapshots(dir)).mismatched).toEqual([]);
  });

  it('a size change, a removed file and a late file each make the fold start over', async () => {
    const dir = await simulated('native', 12, 2);
    const db = freshDb();
    await ingestDir(db, dir);
    const all = names(dir);

    writeFileSync(join(dir, all[3]!), readFileSync(join(dir, all[3]!), 'utf8') + '\n');
    let r = await ingestDir(db, dir);
    expect(r).toMatchObject({ mode: 'rebuild', reason: `1 file changed (${all[3]})` });

    unlinkSync(join(dir, all[5]!));
    r = await ingestDir(db, dir);
    expect(r).toMatchObject({ mode: 'rebuild', reason: `1 file removed (${all[5]})` });
    expect(reports(indexView(db))).toEqual(await directReports(dir));

    // Put back late: it sorts before the newest file already read.
    copyFileSync(join(dir, all[6]!), join(tempDir(), 'keep.json'));
    writeFileSync(join(dir, all[5]!), readFileSync(join(dir, all[6]!)));
    r = await ingestDir(db, dir);
    expect(r).toMatchObject({ mode: 'rebuild', reason: `1 file added before the last ingested snapshot (${all[5]})` });
    expect(reports(indexView(db))).toEqual(await directReports(dir));
  });

  it("a report's listing (no sizes) of unchanged folders skips the catalogue, but never a new file, a corrupt one or one verify marked", async () => {
    const dir = await simulated('legacy', 17, 2);
    const all = names(dir);
    const OLD = 1_700_000_000;
    const report = async (db: Db) => {
      utimesSync(dir, OLD, OLD); // older than the 2 s a folder mtime needs to be trusted
      const listing = await listSnapshots(dir, '--snapshots', { stat: false });
      return ingest(db, listing.files, { warn: () => {}, folders: listing.folders });
    };
    // The last file is held back; another is broken for now.
    const last = join(dir, all[all.length - 1]!);
    const lastText = readFileSync(last);
    unlinkSync(last);
    const broken = join(dir, all[3]!);
    const brokenText = readFileSync(broken);
    writeFileSync(broken, brokenText.subarray(0, 50));
    const db = freshDb();
    expect(await report(db)).toMatchObject({ mode: 'append', corrupt: 1 });

    // Completed in place, the folder's mtime put back: the corrupt file is statted and re-read.
    writeFileSync(broken, brokenText);
    expect((await report(db)).mode).toBe('rebuild');
    expect(await report(db)).toMatchObject({ mode: 'none' });

    // A file arrives and the folder's mtime is put back: the count tells.
    writeFileSync(last, lastText);
    expect(await report(db)).toMatchObject({ mode: 'append', files: 1 });

    // A file verify marked is statted and read again.
    db.prepare('UPDATE snapshots SET sha256 = NULL, mtime_ms = -1 WHERE name = ?').run(all[5]);
    expect((await report(db)).mode).toBe('rebuild');
    expect(db.prepare('SELECT sha256 IS NOT NULL FROM snapshots WHERE name = ?').pluck().get(all[5])).toBe(1);
    expect(reports(indexView(db))).toEqual(await directReports(dir));
  });

  it('a report may skip listing only while no folder moved since the last ingest, nothing waits for a retry, and the folder mtimes are old enough', async () => {
    const dir = await simulated('native', 21, 2);
    const sub = join(dir, 'older');
    mkdirSync(sub);
    const all = names(dir);
    renameSync(join(dir, all[0]!), join(sub, all[0]!));
    writeFileSync(join(dir, 'notes.json'), '{}');
    const OLD = 1_700_000_000;
    const db = freshDb();
    const update = async (age: 'old' | 'new' = 'old') => {
      if (age === 'old') for (const d of [dir, sub]) utimesSync(d, OLD, OLD);
      const listing = await listSnapshots(dir, '--snapshots', { stat: false });
      return ingest(db, listing.files, { warn: () => {}, folders: listing.folders, unnamed: listing.unnamed });
    };
    expect(await unchangedSinceIngest(db, dir)).toBeNull(); // never ingested
    expect(await update()).toMatchObject({ mode: 'append', files: all.length });
    expect(await unchangedSinceIngest(db, dir)).toEqual(['notes.json']);

    // A file lands in the sub-folder: its mtime moves, and the next report lists.
    copyFileSync(join(dir, all[all.length - 1]!), join(sub, 'x.tmp'));
    renameSync(join(sub, 'x.tmp'), join(sub, `2024-09-03T00:00:00Z.json`));
    expect(await unchangedSinceIngest(db, dir)).toBeNull();
    expect(await update()).toMatchObject({ mode: 'append', files: 1 });
    expect(await unchangedSinceIngest(db, dir)).toEqual(['notes.json']);

    // A folder that moved in the last seconds is not trusted (coarse clocks): list again.
    utimesSync(dir, new Date(), new Date());
    expect(await update('new')).toMatchObject({ mode: 'none' });
    expect(await unchangedSinceIngest(db, dir)).toBeNull();
    expect(await update()).toMatchObject({ mode: 'none' });
    expect(await unchangedSinceIngest(db, dir)).toEqual(['notes.json']);

    // A corrupt file waits to be read again when it changes: every report lists.
    writeFileSync(join(dir, '2024-09-03T01:00:00Z.json'), '{');
    expect(await update()).toMatchObject({ mode: 'append', corrupt: 1 });
    expect(await unchangedSinceIngest(db, dir)).toBeNull();
  });

  it('a corrupt file is recorded with its reason, reported once, and read again only when it changes', async () => {
    const dir = await simulated('native', 13, 2);
    const all = names(dir);
    const bad = join(dir, all[4]!);
    const good = readFileSync(bad);
    writeFileSync(bad, good.subarray(0, 100));
    const db = freshDb();
    const warnings: string[] = [];
    const r = await ingestDir(db, dir, { warn: (l) => warnings.push(l) });
    expect(r.corrupt).toBe(1);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^skipped ${all[4]}: corrupt or truncated JSON`))]);
    const st = indexStatus(db, 'x', await listSnapshots(dir));
    expect(st.snapshots).toMatchObject({ catalogued: all.length, corrupt: 1 });
    expect(st.corrupt_files).toEqual([{ name: all[4], reason: 'corrupt or truncated JSON', detail: expect.any(String) }]);

    // Not retried: nothing new, nothing read, nothing said.
    warnings.length = 0;
    expect((await ingestDir(db, dir, { warn: (l) => warnings.push(l) })).mode).toBe('none');
    expect(warnings).toEqual([]);
    const period = resolvePeriod('2024-09-01', '2024-09-02', 'UTC');
    expect(windowDiagnostics(indexView(db).read(period).files).skipped).toEqual([{ reason: 'corrupt or truncated JSON', count: 1 }]);

    // Repaired: the fold starts over from it and the skip is gone.
    writeFileSync(bad, good);
    expect((await ingestDir(db, dir)).mode).toBe('rebuild');
    expect(indexStatus(db, 'x', await listSnapshots(dir)).snapshots.corrupt).toBe(0);
    expect(reports(indexView(db))).toEqual(await directReports(dir));
  });

  it('an empty folder gives an empty index, and the first files are then appended', async () => {
    const src = await simulated('legacy', 14, 1);
    const dir = tempDir();
    const db = freshDb();
    expect(await ingestDir(db, dir)).toMatchObject({ mode: 'none', files: 0 });
    for (const n of names(src)) copyFileSync(join(src, n), join(dir, n));
    expect(await ingestDir(db, dir)).toMatchObject({ mode: 'append', files: names(src).length });
    expect(reports(indexView(db))).toEqual(await directReports(dir));
  });
});

describe('schema', () => {
  it('an index of schema version 1 migrates to the current one, then reads the files again for what it lacked', async () => {
    const dir = await simulated('legacy', 15, 2);
    const path = join(tempDir(), 'index.sqlite');
    // Version 1 as an older hourmeter made it: built, then without what versions 2 to 9 added.
    let db = openIndex(path);
    await ingestDir(db, dir);
    const tracks = tracksTable(db);
    db.exec(`DROP TABLE ingest_runs; DROP TABLE folders; ALTER TABLE allocations ADD COLUMN reach_us INTEGER;
      CREATE INDEX allocations_by_reach ON allocations (reach_us) WHERE reach_us IS NOT NULL;
      DROP TABLE names; DROP TABLE segments; ALTER TABLE allocations DROP COLUMN segment; ALTER TABLE allocations DROP COLUMN slot;
      DROP TABLE flavours; DROP INDEX snapshots_read; DROP INDEX snapshots_problems; DROP TABLE live_allocations;
      DROP TABLE journal_files; DROP TABLE journal_sources; DROP TABLE journal_markers;`);
    db.pragma('user_version = 1');
    db.close();

    db = openIndex(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(9);
    expect(db.prepare('SELECT count(*) FROM ingest_runs').pluck().get()).toBe(0);
    // Version 4 packs tracks into segments, which version 1 never kept: the derived tables
    // are emptied, and the next ingest reads every file again.
    expect(db.prepare('SELECT count(*) FROM snapshots').pluck().get()).toBe(0);
    expect(tracksTable(db)).toEqual([]);
    expect(await ingestDir(db, dir)).toMatchObject({ mode: 'append', files: names(dir).length });
    expect(tracksTable(db)).toEqual(tracks);
    expect(reports(indexView(db))).toEqual(await directReports(dir));
  });

  it('a fresh index is made at version 1 then migrated, the same as one made at once', () => {
    const path = join(tempDir(), 'old.sqlite');
    openIndex(path, { create: true, version: 1 }).close();
    const migrated = openIndex(path);
    const current = freshDb();
    const schema = (db: Db) => db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all();
    expect(schema(migrated)).toEqual(schema(current));
  });

  it('an index from a newer hourmeter is refused with a way out', () => {
    const path = join(tempDir(), 'index.sqlite');
    const db = openIndex(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openIndex(path)).toThrow(new RegExp(`newer than this hourmeter's ${SCHEMA_VERSION}: upgrade hourmeter, or delete the index \\(it is a cache`));
  });
});

describe('planIngest', () => {
  const file = (name: string, timeUs: number, bytes = 10, mtimeMs = 1) => ({ path: name, name, timeUs, namedAs: 'native' as const, gzip: false, bytes, mtimeMs });
  const entry = (name: string, timeUs: number, bytes = 10, mtimeMs = 1) => ({ name, timeUs, bytes, mtimeMs, sha256: 'x' });
  it('sorts new, changed, touched, removed and early files', () => {
    const catalogue = new Map([
      ['a', entry('a', 10)],
      ['b', entry('b', 20)],
      ['c', entry('c', 30)],
      ['d', entry('d', 40)],
    ]);
    const plan = planIngest([file('a', 10), file('b', 20, 11), file('c', 30, 10, 2), file('e', 25), file('d2', 40), file('f', 50)], catalogue);
    expect(plan.fresh.map((f) => f.name)).toEqual(['d2', 'f']);
    expect(plan.changed).toEqual(['b']);
    expect(plan.touched.map((t) => t.file.name)).toEqual(['c']);
    expect(plan.removed).toEqual(['d']);
    expect(plan.early).toEqual(['e']);
  });
});

describe('memory', () => {
  it('tracks evicted from memory after every file and loaded back when listed again give the same index', async () => {
    const dir = await simulated('native', 16, 3);
    const a = freshDb();
    await ingestDir(a, dir);
    const b = freshDb();
    await ingest(b, (await listSnapshots(dir)).files, { warn: () => {}, flushEvery: 1, segmentTracks: 5 });
    expect(tracksTable(b)).toEqual(tracksTable(a));
    expect(reports(indexView(b))).toEqual(await directReports(dir));
  });
});

describe('reading', () => {
  it('a report reads one committed state, whatever another process commits meanwhile', async () => {
    const dir = await simulated('native', 19, 2);
    const path = join(tempDir(), 'index.sqlite');
    const a = openIndex(path);
    await ingestDir(a, dir);
    const period = resolvePeriod('2024-09-01', '2024-09-02', 'UTC');
    const report = (view: HistoryView) => {
      const { tracks, names } = view.read(period);
      return aggregateTracks(tracks, names, period, ['namespace'], {}, { gapPolicy: 'midpoint', gcWindowUs: null });
    };
    const view = indexView(a);
    const before = report(view);
    expect(before.rows.length).toBeGreaterThan(0);
    const b = openIndex(path);
    const inside = view.consistently(() => {
      const { tracks, names } = view.read(period);
      const stream = tracks[Symbol.iterator]();
      const first = stream.next();
      // Another process renames the names (a rebuild renumbers them) while we read; flavours aside.
      b.exec("UPDATE names SET value = value || '-x' WHERE value NOT LIKE '%,%'");
      const rest = { [Symbol.iterator]: () => stream };
      return aggregateTracks([first.value!, ...rest], names, period, ['namespace'], {}, { gapPolicy: 'midpoint', gcWindowUs: null });
    });
    expect(inside).toEqual(before);
    // Outside, the next report sees the change.
    expect(report(view).rows.map((r) => r.namespace)).toEqual(before.rows.map((r) => `${r.namespace}-x`));
    b.close();
  });

  it('a store that keeps segments decoded and appends on its own connection reads what it appended', async () => {
    const src = await simulated('legacy', 29, 4);
    const all = names(src);
    const dir = tempDir();
    const half = Math.floor(all.length / 2);
    for (const n of all.slice(0, half)) copyFileSync(join(src, n), join(dir, n));
    const store = openIndexStore(join(tempDir(), 'index.sqlite'), { create: true, keepSegments: true });
    const quiet = { dir, warn: () => {}, note: () => {} };
    await store.append(await listSnapshots(dir), quiet);
    const consistent = () => store.view.consistently(() => reports(store.view));
    const before = consistent();
    expect(before).toEqual(await directReports(dir));
    for (const n of all.slice(half)) copyFileSync(join(src, n), join(dir, n));
    expect((await store.append(await listSnapshots(dir), quiet)).files).toBe(all.length - half);
    // Its own commit leaves data_version as it was: the kept segments must go with the append.
    const after = consistent();
    expect(after).not.toEqual(before);
    expect(after).toEqual(await directReports(dir));
    store.close();
  });

  it('a reader that keeps segments decoded gives the same reports, and drops them when another connection commits', async () => {
    const src = await simulated('legacy', 23, 4);
    const all = names(src);
    const dir = tempDir();
    const half = Math.floor(all.length / 2);
    for (const n of all.slice(0, half)) copyFileSync(join(src, n), join(dir, n));
    const path = join(tempDir(), 'index.sqlite');
    const writer = openIndex(path);
    await ingestDir(writer, dir);
    const reader = openIndex(path, { create: false });
    const kept = indexView(reader, { keepSegments: true });
    const consistent = (view: HistoryView) => view.consistently(() => reports(view));
    expect(consistent(kept)).toEqual(reports(indexView(writer)));
    // Asked again, from what it kept: the same.
    expect(consistent(kept)).toEqual(reports(indexView(writer)));
    // Another connection ingests the rest (segments rewritten, names added): the kept reader sees it.
    for (const n of all.slice(half)) copyFileSync(join(src, n), join(dir, n));
    expect((await ingestDir(writer, dir)).files).toBe(all.length - half);
    const after = consistent(kept);
    expect(after).toEqual(reports(indexView(writer)));
    expect(after).toEqual(await directReports(dir));
    reader.close();
    writer.close();
  });
});

describe('segments', () => {
  const HOUR = 3_600_000_000;
  const track = (job: string, startH: number, endH: number | null): Track => ({
    key: `nomad:${job}`, namespace: 'ns', jobId: job, jobName: null, user: 'u', group: null, component: null, node: null,
    amounts: { cpuMilli: 1000, cpuMhz: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 },
    startUs: startH * HOUR, state: endH === null ? 'holding' : 'ended', lastHoldingUs: endH === null ? 10 * HOUR : null,
    endUs: endH === null ? null : endH * HOUR, nextUs: null, listedTerminal: false, nextKind: null, listedHolding: false, last: null,
  });
  const sealed = { listed: false, unlistedHolding: false, lastHoldingUs: null };
  const live = { listed: true, unlistedHolding: false, lastHoldingUs: 10 * HOUR };
  /** Segment id → the job ids packed in it, with their start and end hours. */
  const contents = (db: Db) => {
    const names = new IndexNames(db);
    const out: Record<number, string[]> = {};
    for (const { id, data } of db.prepare('SELECT id, data FROM segments ORDER BY id').all() as { id: number; data: Buffer }[]) {
      const c = TrackColumns.decode(data);
      out[id] = Array.from({ length: c.length }, (_, i) =>
        c.state[i] === 0 ? '(blank)' : `${names.name(c.job[i]!)}:${c.start[i]! / HOUR}-${(Number.isNaN(c.end[i]!) ? c.lastHolding[i]! : c.end[i]!) / HOUR}`,
      );
    }
    return out;
  };

  it('sealed tracks fill segments in turn; one loaded back is blanked in its segment', () => {
    const db = freshDb();
    let table = new TrackTable(db, 4);
    for (const [i, job] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) table.save(track(job, i, i + 1), sealed);
    table.save(track('g', 2, null), live);
    table.finish();
    expect(contents(db)).toEqual({ [-1]: ['g:2-10'], 1: ['a:0-1', 'b:1-2', 'c:2-3', 'd:3-4'], 2: ['e:4-5', 'f:5-6'] });
    const bounds = db.prepare('SELECT id, min_start_us / 3600000000 AS lo, max_reach_us / 3600000000 AS hi FROM segments ORDER BY id').all();
    expect(bounds).toEqual([{ id: -1, lo: 2, hi: 10 }, { id: 1, lo: 0, hi: 4 }, { id: 2, lo: 4, hi: 6 }]);

    // The next ingest takes the live tracks back; b is listed again and runs on; g ends; h is new and ends.
    table = new TrackTable(db, 4);
    expect(table.takeLiveTracks().map((t) => t.key)).toEqual(['nomad:g']);
    expect(table.load('nomad:g')).toBeUndefined();
    const b = table.load('nomad:b')!;
    expect(b.endUs).toBe(2 * HOUR);
    table.save({ ...track('b', 1, null), lastHoldingUs: null }, live);
    table.save(track('g', 2, 9), sealed);
    table.save(track('h', 7, 8), sealed);
    table.finish();
    expect(contents(db)).toEqual({ [-1]: ['b:1-10'], 1: ['a:0-1', '(blank)', 'c:2-3', 'd:3-4'], 2: ['e:4-5', 'f:5-6', 'g:2-9', 'h:7-8'] });
    // Every track counts once: where the table says it is packed.
    expect(db.prepare('SELECT key, segment, slot FROM allocations UNION ALL SELECT key, segment, slot FROM live_allocations ORDER BY key').all()).toEqual([
      ['a', 1, 0], ['b', null, null], ['c', 1, 2], ['d', 1, 3], ['e', 2, 0], ['f', 2, 1], ['g', 2, 2], ['h', 2, 3],
    ].map(([k, segment, slot]) => ({ key: `nomad:${k}`, segment, slot })));

    // A track loaded back from the segment still open is blanked there.
    table = new TrackTable(db, 4);
    table.save(track('i', 8, 9), sealed);
    table.load('nomad:i');
    table.save(track('i', 8, 12), sealed);
    table.finish();
    expect(contents(db)[3]).toEqual(['(blank)', 'i:8-12']);
  });

  it('a bulk load fills the emptied tables without their lookup indexes, finds keys saved earlier by their hashes, and makes the indexes at the end', () => {
    const db = freshDb();
    const indexes = () => (db.prepare("SELECT name FROM sqlite_master WHERE name IN ('allocations_by_key', 'names_by_value') ORDER BY name").pluck().all() as string[]);
    const table = new TrackTable(db, 4);
    table.bulkLoad();
    expect(indexes()).toEqual([]);
    for (const [i, job] of ['a', 'b', 'c', 'd', 'e'].entries()) table.save(track(job, i, i + 1), sealed);
    // b is listed again in a later file of the same ingest: its row is found, then replaced.
    expect(table.load('nomad:b')!.endUs).toBe(2 * HOUR);
    expect(table.load('nomad:never')).toBeUndefined();
    table.save({ ...track('b', 1, null), lastHoldingUs: null }, live);
    table.finish();
    expect(indexes()).toEqual(['allocations_by_key', 'names_by_value']);
    expect(db.prepare('SELECT key, segment, slot FROM allocations UNION ALL SELECT key, segment, slot FROM live_allocations ORDER BY key').all()).toEqual([
      ['a', 1, 0], ['b', null, null], ['c', 1, 2], ['d', 1, 3], ['e', 2, 0],
    ].map(([k, segment, slot]) => ({ key: `nomad:${k}`, segment, slot })));
    expect(contents(db)).toEqual({ [-1]: ['b:1-10'], 1: ['a:0-1', '(blank)', 'c:2-3', 'd:3-4'], 2: ['e:4-5'] });
    // Each name once, found again through the hashes while the index was gone.
    expect(db.prepare('SELECT value FROM names ORDER BY id').pluck().all()).toEqual(['ns', 'u', 'a', 'b', 'c', 'd', 'e']);
    // The next ingest takes b back as live, and finds a through the index again.
    const next = new TrackTable(db, 4);
    expect(next.takeLiveTracks().map((t) => [t.key, t.state])).toEqual([['nomad:b', 'holding']]);
    expect(next.load('nomad:a')!.endUs).toBe(HOUR);
  });
  it('in a bulk load, a key whose row went live leaves its row id to the next new key; neither is mistaken for the other', () => {
    const db = freshDb();
    const table = new TrackTable(db, 4);
    table.bulkLoad();
    table.save(track('a', 0, 1), sealed);
    table.save(track('b', 1, 2), sealed);
    table.load('nomad:b');
    table.save({ ...track('b', 1, null), lastHoldingUs: null }, live);
    // b's row (the last) is gone: c takes its row id.
    table.save(track('c', 2, 3), sealed);
    expect(db.prepare("SELECT rowid FROM allocations WHERE key = 'nomad:c'").pluck().get()).toBe(2);
    expect(table.load('nomad:b')).toBeUndefined();
    expect(table.load('nomad:c')!.endUs).toBe(3 * HOUR);
    table.save(track('c', 2, 4), sealed);
    table.finish();
    expect(db.prepare('SELECT key, end_us / 3600000000 AS h FROM allocations UNION ALL SELECT key, end_us FROM live_allocations ORDER BY key').all()).toEqual([
      { key: 'nomad:a', h: 1 }, { key: 'nomad:b', h: null }, { key: 'nomad:c', h: 4 },
    ]);
    expect(contents(db)).toEqual({ [-1]: ['b:1-10'], 1: ['a:0-1', '(blank)', '(blank)', 'c:2-4'] });
  });
});

describe('HashedKeys', () => {
  it('gives back every number stored under a hash, across growth', () => {
    const keys = new HashedKeys(2);
    for (let i = 0; i < 1000; i++) keys.add(`key-${i}`, i * 3);
    expect(keys.size).toBe(1000);
    for (let i = 0; i < 1000; i++) expect(keys.candidates(`key-${i}`)).toContain(i * 3);
    expect(keys.candidates('key-1000')).toEqual([]);
    // A hash every key shares: each lookup lists all of them, for the caller to check.
    const colliding = new HashedKeys(2, () => [5, 9]);
    for (const [i, k] of ['x', 'y', 'z'].entries()) colliding.add(k, i);
    expect(colliding.candidates('anything')).toEqual([0, 1, 2]);
    expect(hash64('nomad:a')).not.toEqual(hash64('nomad:b'));
  });
});

describe('index changes under stress', () => {
  const lookupIndexes = (db: Db) =>
    db.prepare("SELECT name FROM sqlite_master WHERE name IN ('allocations_by_key', 'names_by_value') ORDER BY name").pluck().all() as string[];
  const failingAt = (n: number, rebuild = false) => ({
    warn: () => {},
    rebuild,
    progress: (p: IngestProgress) => {
      if (p.files === n) throw new Error('stopped at file ' + n);
    },
  });
  const blankRows = (db: Db) =>
    (db.prepare('SELECT data FROM segments').pluck().all() as Buffer[]).reduce((n, data) => {
      const c = TrackColumns.decode(data);
      for (let i = 0; i < c.length; i++) if (c.state[i] === 0) n++;
      return n;
    }, 0);
  /** Keys stored more than once, in either table or across both. */
  const duplicateKeys = (db: Db) =>
    db.prepare('SELECT key FROM (SELECT key FROM allocations UNION ALL SELECT key FROM live_allocations) GROUP BY key HAVING count(*) > 1').pluck().all();

  it('HashedKeys keeps numbers at both ends of its range, refuses those outside, and finds every colliding key across growth and wrap-around', () => {
    const keys = new HashedKeys(2);
    keys.add('first', 0);
    keys.add('last', 2 ** 31 - 2);
    expect(keys.candidates('first')).toEqual([0]);
    expect(keys.candidates('last')).toEqual([2 ** 31 - 2]);
    for (const bad of [2 ** 31 - 1, 2 ** 31, -1, 1.5, Number.NaN]) expect(() => keys.add('x', bad)).toThrow(RangeError);
    expect(keys.size).toBe(2);
    // Every key hashes to the last slot: the run wraps to the start of the table, then the table grows (16 slots to 2048).
    const wrapped = new HashedKeys(2, () => [-1, 7]);
    for (let i = 0; i < 1000; i++) wrapped.add(`k${i}`, 1000 - i);
    expect(wrapped.candidates('any').sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(wrapped.candidates('any').length).toBe(1000);
  });

  it('names interned during a bulk load stay unique past the bounded cache, without the index by value', () => {
    const db = freshDb();
    db.exec('BEGIN');
    const dict = new IndexNames(db);
    expect(dict.keepAll()).toBe(true);
    db.exec('DROP INDEX names_by_value');
    const n = 70_000;
    const ids = Array.from({ length: n }, (_, i) => dict.intern(`job-${i}`));
    // The cache was emptied at 65,536 names: the early ones are found again by their hashes.
    for (let i = 0; i < n; i += 997) expect(dict.intern(`job-${i}`)).toBe(ids[i]);
    expect(dict.lookup('job-70000')).toBeUndefined();
    expect(db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(n);
    db.exec('CREATE UNIQUE INDEX names_by_value ON names (value)');
    db.exec('COMMIT');
    // Another reader, with the index back.
    const again = new IndexNames(db);
    expect(again.lookup('job-12345')).toBe(ids[12345]);
    expect(again.name(ids[69_999]!)).toBe('job-69999');
  });

  it('an ingest that fails midway, its lookup indexes dropped, leaves the index as it was; the next ingest completes', async () => {
    const dir = await simulated('native', 31, 2);
    const files = async () => (await listSnapshots(dir)).files;
    const path = join(tempDir(), 'index.sqlite');
    let db = openIndex(path);
    // A first ingest, into empty tables: the bulk load drops both indexes, then fails.
    await expect(ingest(db, await files(), failingAt(10))).rejects.toThrow('stopped at file 10');
    expect(db.inTransaction).toBe(false);
    expect(lookupIndexes(db)).toEqual(['allocations_by_key', 'names_by_value']);
    expect(db.prepare('SELECT count(*) FROM snapshots').pluck().get()).toBe(0);
    expect(tracksTable(db)).toEqual([]);
    expect(db.prepare('SELECT count(*) FROM names').pluck().get()).toBe(0);

    // Another process opens it and ingests everything.
    db.close();
    db = openIndex(path);
    expect(await ingestDir(db, dir)).toMatchObject({ mode: 'append', files: names(dir).length });
    const clean = freshDb();
    await ingestDir(clean, dir);
    expect(tracksTable(db)).toEqual(tracksTable(clean));
    const direct = await directReports(dir);
    expect(reports(indexView(db))).toEqual(direct);

    // A rebuild that fails midway keeps the previous state whole, indexes included; on the same connection the next one completes.
    await expect(ingest(db, await files(), failingAt(30, true))).rejects.toThrow('stopped at file 30');
    expect(lookupIndexes(db)).toEqual(['allocations_by_key', 'names_by_value']);
    expect(tracksTable(db)).toEqual(tracksTable(clean));
    expect(reports(indexView(db))).toEqual(direct);
    expect((await ingestDir(db, dir)).mode).toBe('none');
    expect((await ingestDir(db, dir, { rebuild: true })).mode).toBe('rebuild');
    expect(lookupIndexes(db)).toEqual(['allocations_by_key', 'names_by_value']);
    expect(tracksTable(db)).toEqual(tracksTable(clean));
    expect(reports(indexView(db))).toEqual(direct);
    db.close();
  });

  it('another connection reads the last committed index, indexes and counts, while a rebuild holds the write transaction', async () => {
    const dir = await simulated('legacy', 33, 3);
    const path = join(tempDir(), 'index.sqlite');
    const writer = openIndex(path);
    await ingestDir(writer, dir);
    const reader = openIndex(path, { create: false });
    const listing = await listSnapshots(dir);
    const month = parseMonth('2024-09');
    const before = {
      reports: reports(indexView(reader)),
      details: monthlyReport(indexView(reader), month, 'UTC', { details: true }).details,
      allocations: indexStatus(reader, path, listing).allocations,
    };
    expect(before.allocations).toBeGreaterThan(50);
    const kept = indexView(reader, { keepSegments: true });
    const keptBefore = kept.consistently(() => reports(kept));
    expect(keptBefore).toEqual(before.reports);

    let checked = 0;
    const r = await ingest(writer, listing.files, {
      warn: () => {},
      rebuild: true,
      progress: (p) => {
        if (p.files !== 40) return;
        // The writer has dropped its lookup indexes and refilled part of the tables.
        expect(lookupIndexes(writer)).toEqual([]);
        expect(lookupIndexes(reader)).toEqual(['allocations_by_key', 'names_by_value']);
        expect(indexView(reader).consistently(() => reports(indexView(reader)))).toEqual(before.reports);
        expect(kept.consistently(() => reports(kept))).toEqual(before.reports);
        expect(monthlyReport(indexView(reader), month, 'UTC', { details: true }).details).toEqual(before.details);
        expect(indexStatus(reader, path, listing).allocations).toBe(before.allocations);
        checked++;
      },
    });
    expect(r.mode).toBe('rebuild');
    expect(checked).toBe(1);
    // After the commit, both read the same again.
    expect(lookupIndexes(reader)).toEqual(['allocations_by_key', 'names_by_value']);
    expect(kept.consistently(() => reports(kept))).toEqual(before.reports);
    expect(monthlyReport(indexView(reader), month, 'UTC', { details: true }).details).toEqual(before.details);
    reader.close();
    writer.close();
  });

  /**
   * Native snapshots where allocations leave the listing and come back: each of a few long
   * runners is missing from two files, so it vanishes, is sealed, and is listed again (loaded
   * back). One job's user is its own job id and its group a namespace: one name for three kinds.
   */
  const relisted = async (seed: number): Promise<{ dir: string; keys: string[] }> => {
    const dir = await simulated('native', seed, 3);
    type Alloc = { id: string; namespace: string; job_id: string; user: string | null; group: string | null };
    const files = names(dir).map((n) => ({ path: join(dir, n), json: JSON.parse(readFileSync(join(dir, n), 'utf8')) as { allocations: Alloc[] } }));
    const seenIn = new Map<string, number[]>();
    files.forEach((f, i) => f.json.allocations.forEach((a) => seenIn.set(a.id, [...(seenIn.get(a.id) ?? []), i])));
    const runners = [...seenIn].filter(([, at]) => at.length >= 12).slice(0, 6);
    expect(runners.length).toBe(6);
    const gaps = new Map(runners.map(([id, at]) => [id, new Set([at[3]!, at[8]!])]));
    const job = runners[0]![0];
    files.forEach((f, i) => {
      f.json.allocations = f.json.allocations.filter((a) => !gaps.get(a.id)?.has(i));
      for (const a of f.json.allocations) {
        if (a.id !== job) continue;
        a.user = a.job_id;
        a.group = 'imagine';
      }
      writeFileSync(f.path, JSON.stringify(f.json));
    });
    return { dir, keys: runners.map(([id]) => id) };
  };

  it('allocations listed again after they were sealed, within one ingest and across ingests, are stored once and read as a full read gives them', async () => {
    const { dir } = await relisted(35);
    const all = names(dir);
    const month = parseMonth('2024-09');
    const history = await loadHistory(await listSnapshots(dir), { strict: false, warn: () => {} });
    const direct = monthlyReport(filesView(history), month, 'UTC', { details: true });
    expect(direct.details!.length).toBeGreaterThan(50);
    const directNumbers = await directReports(dir);
    // In one go (a bulk load), evicting after every file: found again by their hashes.
    const once = freshDb();
    await ingest(once, (await listSnapshots(dir)).files, { warn: () => {}, flushEvery: 1, segmentTracks: 5 });
    // File by file: sealed in one ingest, listed again and live at the end of the next, sealed again later.
    const stepwise = freshDb();
    const dst = tempDir();
    for (const n of all) {
      copyFileSync(join(dir, n), join(dst, n));
      await ingest(stepwise, (await listSnapshots(dst)).files, { warn: () => {}, flushEvery: 1, segmentTracks: 5 });
    }
    const plain = freshDb();
    await ingestDir(plain, dir);
    for (const db of [once, stepwise, plain]) {
      expect(lookupIndexes(db)).toEqual(['allocations_by_key', 'names_by_value']);
      expect(db.prepare('SELECT count(*) FROM live_allocations').pluck().get()).toBeGreaterThan(0);
      expect(duplicateKeys(db)).toEqual([]);
      expect(reports(indexView(db))).toEqual(directNumbers);
      expect(monthlyReport(indexView(db), month, 'UTC', { details: true }).details).toEqual(direct.details);
      const keys = new Set(db.prepare('SELECT key FROM allocations UNION ALL SELECT key FROM live_allocations').pluck().all() as string[]);
      expect(indexStatus(db, 'x', await listSnapshots(dir)).allocations).toBe(keys.size);
      // The name shared by a job id and a user is stored once; so is the one shared by a namespace and a group.
      expect(db.prepare('SELECT count(*) FROM names GROUP BY value HAVING count(*) > 1').all()).toEqual([]);
      expect(indexView(db).knownValues('group')).toContain('imagine');
      expect(indexView(db).knownValues('namespace')).toContain('imagine');
    }
    expect(tracksTable(once)).toEqual(tracksTable(plain));
    expect(tracksTable(stepwise)).toEqual(tracksTable(plain));
    // Loaded back, their old rows were blanked: every listing again went through load().
    expect(blankRows(once)).toBeGreaterThanOrEqual(12);
    expect(blankRows(stepwise)).toBeGreaterThanOrEqual(12);
  });
});
