import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import { BIN, FIXTURE_GAP, run, runAsync, tempDir, withAi4osFixture } from '../helpers/cli.js';
import { SCHEMA_VERSION } from '../../src/store/schema.js';

/** The index as operators meet it: through `stats` and `hourmeter index`, as processes. */

const PERIOD = ['--from', '2024-09-03', '--to', '2024-09-10'];

describe('stats through the index', () => {
  it('gives byte for byte what --no-index gives, cold, warm, and after the index is deleted', () => {
    const cwd = withAi4osFixture();
    for (const format of ['table', 'json', 'csv']) {
      for (const by of ['namespace', 'namespace,user']) {
        const args = ['stats', ...PERIOD, '--by', by, '-o', format];
        const direct = run([...args, '--no-index'], { cwd });
        const cold = run(args, { cwd });
        const warm = run(args, { cwd });
        expect(direct.code).toBe(0);
        expect(cold).toEqual(direct);
        expect(warm).toEqual(direct);
      }
    }
    expect(existsSync(join(cwd, 'snapshots/.hourmeter/index.sqlite'))).toBe(true);
    const before = run(['stats', '-o', 'json'], { cwd });
    rmSync(join(cwd, 'snapshots/.hourmeter'), { recursive: true });
    const rebuilt = run(['stats', '-o', 'json'], { cwd });
    expect(rebuilt).toEqual(before);
    expect(JSON.parse(rebuilt.stdout).diagnostics.snapshots).toBeGreaterThan(20);
  });

  it('--db keeps the index elsewhere, and the snapshot folder is left untouched', () => {
    const cwd = withAi4osFixture();
    const db = join(cwd, 'cache/hm.sqlite');
    const r = run(['stats', ...PERIOD, '--db', db, '-o', 'csv'], { cwd });
    expect(r.code).toBe(0);
    expect(existsSync(db)).toBe(true);
    expect(existsSync(join(cwd, 'snapshots/.hourmeter'))).toBe(false);
    expect(run(['stats', ...PERIOD, '-o', 'csv'], { cwd, env: { HOURMETER_DB: db } }).stdout).toBe(r.stdout);
  });

  it('a corrupt file: warned about once, counted in every report, and fatal under --strict', () => {
    const cwd = withAi4osFixture();
    const name = readdirSync(join(cwd, 'snapshots')).find((n) => n.startsWith('2024-09-05'))!;
    writeFileSync(join(cwd, 'snapshots', name), '{"ai4eosc": [');
    const first = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(first.code).toBe(0);
    const gap = `hourmeter: warning: ${FIXTURE_GAP}\n`;
    expect(first.stderr).toBe(`hourmeter: warning: skipped ${name}: corrupt or truncated JSON (Unexpected end of JSON input); it is recorded in the index and read again only when it changes\n${gap}`);
    const second = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(second.stderr).toBe(gap);
    expect(second.stdout).toBe(first.stdout);
    expect(JSON.parse(second.stdout).diagnostics.skipped).toEqual([{ reason: 'corrupt or truncated JSON', count: 1 }]);
    expect(run(['stats', ...PERIOD, '-o', 'json', '--no-index'], { cwd }).stdout).toBe(first.stdout);

    for (const extra of [[], ['--no-index']]) {
      const strict = run(['stats', ...PERIOD, '--strict', ...extra], { cwd });
      expect(strict.code).toBe(3);
      expect(strict.stderr).toContain(`hourmeter: ${name}: corrupt or truncated JSON (Unexpected end of JSON input); fix or move the file`);
    }
    const status = JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout);
    expect(status.corrupt_files).toEqual([{ name, reason: 'corrupt or truncated JSON', detail: 'Unexpected end of JSON input' }]);
  });
});

describe('hourmeter index', () => {
  it('update, status, verify: a tampered file is caught, and the next report re-reads it', () => {
    const cwd = withAi4osFixture();
    expect(run(['index', 'status'], { cwd })).toMatchObject({ code: 2, stderr: expect.stringContaining('no index at snapshots/.hourmeter/index.sqlite yet: run `hourmeter index update`') });
    const files = readdirSync(join(cwd, 'snapshots')).filter((n) => n.endsWith('.json')).sort();
    const up = run(['index', 'update'], { cwd });
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(new RegExp(`^read ${files.length} snapshot files, [\\d.]+ MB as stored, in [\\d.]+ s`));
    expect(run(['index', 'update'], { cwd }).stdout).toBe('index is up to date: no new snapshot files\n');

    const status = JSON.parse(run(['index', 'status', '-o', 'json'], { cwd }).stdout);
    expect(status).toMatchObject({
      path: 'snapshots/.hourmeter/index.sqlite',
      schema_version: SCHEMA_VERSION,
      pending: { new: 0, changed: 0, removed: 0, early: 0 },
      last_ingest: { mode: 'append', corrupt: 0, reason: null },
      corrupt_files: [],
    });
    expect(status.snapshots.catalogued).toBe(files.length);

    // An old folder mtime, so that reports trust the catalogue for its files.
    utimesSync(join(cwd, 'snapshots'), new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const before = run(['stats', ...PERIOD, '-o', 'json'], { cwd }).stdout;
    // An edit that keeps size and mtime: `touch -r` puts the old mtime back.
    // The newest file: allocations are counted with the resources they were last listed with.
    const newest = files[files.length - 1]!;
    const victim = join(cwd, 'snapshots', newest);
    const copy = join(cwd, 'orig.json');
    writeFileSync(copy, readFileSync(victim));
    const text = readFileSync(victim, 'latin1');
    writeFileSync(victim, text.replaceAll('"cpu_num": 1,', '"cpu_num": 7,'), 'latin1');
    expect(readFileSync(victim, 'latin1')).not.toBe(text);
    execFileSync('touch', ['-r', copy, victim]);
    const v = run(['index', 'verify'], { cwd });
    expect(v.code).toBe(1);
    expect(v.stdout).toContain(`changed since it was indexed: ${newest}`);
    expect(v.stderr).toContain('1 changed and 0 missing snapshot files; the next ingest re-reads what depends on them');
    const after = run(['stats', ...PERIOD, '-o', 'json'], { cwd }).stdout;
    expect(after).toBe(run(['stats', ...PERIOD, '-o', 'json', '--no-index'], { cwd }).stdout);
    expect(after).not.toBe(before);
    expect(JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout).last_ingest).toMatchObject({ mode: 'rebuild', reason: `1 file changed (${newest})` });
    expect(run(['index', 'verify'], { cwd }).code).toBe(0);
  });

  it('a report notices a file replaced by a rename (the folder changes) without statting the others', () => {
    const cwd = withAi4osFixture();
    const dir = join(cwd, 'snapshots');
    // An old folder mtime, as after a day of cron runs (a recent one is never trusted).
    utimesSync(dir, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const before = run(['stats', ...PERIOD, '-o', 'json'], { cwd }).stdout;
    const files = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
    const newest = files[files.length - 1]!;
    writeFileSync(join(cwd, 'new.json'), readFileSync(join(dir, newest), 'latin1').replaceAll('"cpu_num": 1,', '"cpu_num": 3,'), 'latin1');
    renameSync(join(cwd, 'new.json'), join(dir, newest));
    const after = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(after.stdout).not.toBe(before);
    expect(after.stdout).toBe(run(['stats', ...PERIOD, '-o', 'json', '--no-index'], { cwd }).stdout);
    expect(JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout).last_ingest).toMatchObject({ mode: 'rebuild', reason: `1 file changed (${newest})` });
  });

  it('a report skips listing a folder that has not moved since the last ingest, and says and counts the same', () => {
    const cwd = withAi4osFixture();
    const dir = join(cwd, 'snapshots');
    writeFileSync(join(dir, 'notes.json'), '{}');
    const old = new Date('2026-01-01T00:00:00Z');
    utimesSync(dir, old, old);
    const args = ['stats', ...PERIOD, '--by', 'namespace,user', '-o', 'json'];
    // The first report makes the index's folder inside it, which moves the mtime once.
    expect(run(args, { cwd }).code).toBe(0);
    utimesSync(dir, old, old);
    const listed = run([...args, '--debug'], { cwd });
    const remembered = run([...args, '--debug'], { cwd });
    expect(listed.stderr).toMatch(/list and update the index/);
    expect(remembered.stderr).toMatch(/no folder moved since the last ingest/);
    const warnings = (r: { stderr: string }) => r.stderr.split('\n').filter((l) => !l.includes('debug'));
    expect(warnings(remembered)).toEqual(warnings(listed));
    expect(warnings(listed)[0]).toMatch(/^hourmeter: warning: ignored notes\.json: its name is not a capture time/);
    expect(remembered.stdout).toBe(listed.stdout);
    expect(JSON.parse(remembered.stdout).diagnostics.skipped).toEqual([{ reason: 'file name is not a capture time', count: 1 }]);
    expect(remembered.stdout).toBe(run([...args, '--no-index'], { cwd }).stdout);

    // summarize takes its files from the catalogue then: the same files as a listing.
    const summaries = (name: string, extra: string[] = []) => {
      expect(run(['summarize', '--summaries', name, ...extra], { cwd }).code).toBe(0);
      return readdirSync(join(cwd, name)).sort().map((f) => [f, readFileSync(join(cwd, name, f), 'utf8')]);
    };
    expect(summaries('a')).toEqual(summaries('b', ['--no-index']));

    // A new file moves the folder's mtime: the next report lists, and reads it.
    const files = readdirSync(dir).filter((n) => /^\d.*\.json$/.test(n)).sort();
    writeFileSync(join(dir, '2024-09-10T23:00:00.json'), readFileSync(join(dir, files[files.length - 1]!)));
    const after = run([...args, '--debug'], { cwd });
    expect(after.stderr).toMatch(/list and update the index/);
    expect(after.stdout).toBe(run([...args, '--no-index'], { cwd }).stdout);
  });

  it('rebuild reads everything again and gives the same numbers', () => {
    const cwd = withAi4osFixture();
    const a = run(['stats', '-o', 'json'], { cwd }).stdout;
    const r = run(['index', 'rebuild'], { cwd });
    expect(r.stdout).toMatch(/^rebuilt from \d+ snapshot files, [\d.]+ MB as stored, in [\d.]+ s, [\d.]+ MB\/s \(asked to rebuild\)\n$/);
    expect(run(['stats', '-o', 'json'], { cwd }).stdout).toBe(a);
  });

  it('a progress bar on a terminal only', () => {
    const cwd = withAi4osFixture();
    // Enough files to count as a long ingest (a cron's few new files draw no bar).
    const many = join(cwd, 'many');
    mkdirSync(many);
    const doc = readFileSync(join(cwd, 'snapshots', readdirSync(join(cwd, 'snapshots')).filter((n) => n.endsWith('.json')).sort()[0]!));
    for (let i = 0; i < 300; i++) writeFileSync(join(many, `2024-01-${String(1 + Math.floor(i / 120)).padStart(2, '0')}T${String(Math.floor((i % 120) / 5)).padStart(2, '0')}:${String((i % 5) * 10).padStart(2, '0')}:00.json`), doc);
    const piped = run(['index', 'update', '--snapshots', many], { cwd });
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    rmSync(join(many, '.hourmeter'), { recursive: true });
    // `script` runs the command on a pseudo-terminal and records what it wrote.
    const log = join(cwd, 'tty.log');
    execFileSync('script', ['-qec', `${process.execPath} ${BIN} index update --snapshots ${many}`, log], { cwd, env: { PATH: process.env.PATH ?? '', TERM: 'xterm', COLUMNS: '120' } });
    const typed = readFileSync(log, 'utf8');
    expect(typed).toMatch(/ingesting snapshots \[[=-]+\] \d+\/300 files/);
  });
});

describe('snapshots written while an index is being updated', () => {
  const cluster = createCluster({ seed: 21, days: 1, intervalMinutes: 30, targetConcurrent: 30 });
  const iso = (us: number) => new Date(us / 1000).toISOString();
  let fake: FakeNomad;
  beforeAll(async () => {
    fake = await startFakeNomad({ cluster, token: 't', now: cluster.snapshots[0]!.timeUs });
  });
  afterAll(async () => fake.close());

  it('every snapshot lands in the index exactly once, and the numbers equal a full read', async () => {
    const cwd = tempDir();
    const env = { NOMAD_ADDR: fake.url, NOMAD_TOKEN: 't' };
    const times = cluster.snapshots.slice(0, 24).map((s) => s.timeUs);
    // One writer (cron's snapshots in turn) and two readers updating the index meanwhile.
    let writing = true;
    const writer = (async () => {
      for (const [i, t] of times.entries()) {
        fake.setNow(t);
        // Every other capture gzipped: the index reads both.
        const r = await runAsync(['snapshot', '--now', iso(t), ...(i % 2 ? ['--gzip'] : [])], { cwd, env });
        expect(r.code).toBe(0);
      }
      writing = false;
    })();
    const reader = async () => {
      let rounds = 0;
      while (writing && rounds < 200) {
        rounds++;
        const r = await runAsync(['index', 'update'], { cwd });
        if (r.code === 2 && r.stderr.includes('holds no snapshot files')) continue;
        expect(r.code, r.stderr).toBe(0);
      }
      return rounds;
    };
    mkdirSync(join(cwd, 'snapshots'), { recursive: true });
    const [, a, b] = await Promise.all([writer, reader(), reader()]);
    expect(a + b).toBeGreaterThan(2);
    const viaIndex = await runAsync(['stats', '-o', 'json'], { cwd });
    const direct = await runAsync(['stats', '-o', 'json', '--no-index'], { cwd });
    expect(viaIndex.code).toBe(0);
    expect(viaIndex.stdout).toBe(direct.stdout);
    expect(JSON.parse(viaIndex.stdout).diagnostics.snapshots).toBe(24);
    const status = JSON.parse((await runAsync(['index', 'status', '--json'], { cwd })).stdout);
    expect(status.snapshots.catalogued).toBe(24);
    expect(readdirSync(join(cwd, 'snapshots')).filter((n) => n.endsWith('.json.gz'))).toHaveLength(12);
    expect(status.pending).toEqual({ new: 0, changed: 0, removed: 0, early: 0 });
    // Every ingest appended; none had to start over.
    expect(status.last_ingest.mode).toBe('append');
  });
});
