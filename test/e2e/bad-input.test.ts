import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FIXTURE_GAP, run, tempDir, withAi4osFixture } from '../helpers/cli.js';
import { hubSnapshot } from '../helpers/monthly-folder.js';

/**
 * Bad content in snapshot files: each is skipped with a warning naming the file, the
 * record and the field (exit 0), fails the run under --strict (exit 3), and leaves the
 * numbers of everything else as they are.
 */

const PERIOD = ['--from', '2024-09-03', '--to', '2024-09-10'];

/** An allocation of namespace `hub` running since 2024-09-01 00:00 on 2 cores and 1 GiB. */
const alloc = (id: string, resources: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  id, namespace: 'hub', job_id: `job-${id}`, job_name: null, user: 'foo', group: null, component: null, node: 'n1',
  status: 'running', created: null, start: '2024-09-01T00:00:00Z', end: null, modified: null,
  resources: { cpu_cores: 2, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0, ...resources }, ...extra,
});

const SIX_HOURLY = ['2024-09-01T00:00:00Z', '2024-09-01T06:00:00Z', '2024-09-01T12:00:00Z', '2024-09-01T18:00:00Z', '2024-09-02T00:00:00Z'];

/**
 * Native snapshots every 6 h of 2024-09-01, each listing `a` (so the day is 48 CPU-hours and
 * 24 GiB-hours); the 12:00 one holds `text` instead when given.
 */
function nativeFolder(text?: string): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  for (const at of SIX_HOURLY) {
    writeFileSync(join(cwd, 'snapshots', `${at}.json`), at === '2024-09-01T12:00:00Z' && text !== undefined ? text : JSON.stringify(hubSnapshot(at, [alloc('a')])));
  }
  return cwd;
}

const DAY = ['--from', '2024-09-01', '--to', '2024-09-01'];
/** What stats says of the day when only `a` counts. */
const A_ALONE = { namespace: 'hub', cpu_hours: 48, cpu_mhz_hours: 0, gpu_hours: 0, memory_gib_hours: 24, disk_gib_hours: 0, allocation_hours: 24, jobs: 1, users: 1, allocations: 1 };

/** The stats of the day, as JSON, checking the one warning line and the skip count. */
function dayStats(cwd: string, warning: string, extra: string[] = []) {
  const r = run(['stats', ...DAY, '-o', 'json', ...extra], { cwd });
  expect(r.stderr).toBe(`hourmeter: warning: ${warning}\n`);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.diagnostics.skipped).toHaveLength(1);
  return out;
}

function expectStrictFailure(cwd: string, message: string, args: string[] = ['stats', ...DAY]): void {
  const r = run([...args, '--strict'], { cwd });
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(`hourmeter: ${message}\n`);
  expect(r.code).toBe(3);
}

describe('a record with a non-finite, negative or absurd amount', () => {
  it('an AI4OS record with 1e308 cores outside the period: stats and summarize still answer, with a warning', () => {
    const cwd = withAi4osFixture();
    const clean = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    const file = '2024-09-12T20:00:00.json';
    writeFileSync(
      join(cwd, 'snapshots', file),
      '{"ai4eosc": [{"job_ID": "big", "status": "running", "alloc_start": "2024-09-12T00:00:00Z", "resources": {"cpu_num": 1e308, "cpu_MHz": 1, "gpu_num": 0, "memory_MB": 1, "disk_MB": 1}}]}',
    );
    const warning = `skipped 1 record in ${file}: job big in ai4eosc: resources.cpu_num is 1e+308, above the maximum of 10,000 cores`;
    const r = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`hourmeter: warning: ${warning}\nhourmeter: warning: ${FIXTURE_GAP}\n`);
    // The file lies outside the period: the numbers are those of the fixture alone.
    expect(JSON.parse(r.stdout).rows).toEqual(JSON.parse(clean.stdout).rows);

    const s = run(['summarize', ...PERIOD, '--namespace', 'ai4eosc'], { cwd });
    expect(s.code).toBe(0);
    expect(readFileSync(join(cwd, 'summaries', 'ai4eosc-full-agg.csv'), 'utf8')).not.toMatch(/Infinity|NaN|null/);

    expectStrictFailure(cwd, `${file}: implausible amount; fix the file, or run without --strict to skip such records`, ['stats', ...PERIOD]);
  });

  it('an index made before such records were skipped reads the files again', () => {
    const cwd = withAi4osFixture();
    const file = '2024-09-12T20:00:00.json';
    writeFileSync(
      join(cwd, 'snapshots', file),
      '{"ai4eosc": [{"job_ID": "big", "status": "running", "alloc_start": "2024-09-12T00:00:00Z", "resources": {"cpu_num": 1e308, "cpu_MHz": 1, "gpu_num": 0, "memory_MB": 1, "disk_MB": 1}}]}',
    );
    const warning = `hourmeter: warning: skipped 1 record in ${file}: job big in ai4eosc: resources.cpu_num is 1e+308, above the maximum of 10,000 cores\n`;
    expect(run(['stats', ...PERIOD, '-o', 'csv'], { cwd }).stderr).toBe(`${warning}hourmeter: warning: ${FIXTURE_GAP}\n`);
    // The index's schema version as the hourmeter before this change left it: such an index
    // may hold the record's amount, so the files are read (and the record reported) again.
    const db = new Database(join(cwd, 'snapshots', '.hourmeter', 'index.sqlite'));
    db.pragma('user_version = 6');
    db.close();
    expect(run(['stats', ...PERIOD, '-o', 'csv'], { cwd }).stderr).toBe(`${warning}hourmeter: warning: ${FIXTURE_GAP}\n`);
  });

  it('the AI4OS method skips the record too, and fails under --strict', () => {
    const cwd = withAi4osFixture();
    const args = ['stats', '--method', 'ai4os', '--from', '2024-09-12', '--to', '2024-09-12'];
    const file = '2024-09-12T20:00:00.json';
    // Skipping the record must give what the file gives without it.
    writeFileSync(join(cwd, 'snapshots', file), '{"ai4eosc": []}');
    const without = run(args, { cwd });
    writeFileSync(
      join(cwd, 'snapshots', file),
      '{"ai4eosc": [{"job_ID": "neg", "status": "running", "alloc_start": "2024-09-12T00:00:00Z", "resources": {"cpu_num": 1, "cpu_MHz": 1, "gpu_num": -4, "memory_MB": 1, "disk_MB": 1}}]}',
    );
    const r = run(args, { cwd });
    const warning = `skipped 1 record in ${file}: job neg in ai4eosc: resources.gpu_num is -4, below zero`;
    expect(r.stderr).toBe(`hourmeter: warning: ${warning}; use --strict to fail instead\n`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(without.stdout);
    expect(r.stdout).not.toMatch(/Infinity|NaN/);
    expectStrictFailure(cwd, `${file}: implausible amount: job neg in ai4eosc: resources.gpu_num is -4, below zero; fix the file, or run without --strict to skip such records`, args);
  });

  it('a native record with cpu_mhz 1e308 is left out: no null in JSON, no Infinity in the table', () => {
    const cwd = nativeFolder(JSON.stringify(hubSnapshot('2024-09-01T12:00:00Z', [alloc('a'), alloc('z', { cpu_mhz: 1e308 })])));
    const warning = 'skipped 1 record in 2024-09-01T12:00:00Z.json: allocation z: resources.cpu_mhz is 1e+308, above the maximum of 100,000,000 MHz';
    const out = dayStats(cwd, warning);
    expect(out.rows).toEqual([A_ALONE]);
    expect(out.diagnostics.skipped).toEqual([{ reason: 'implausible amount', count: 1 }]);
    const table = run(['stats', ...DAY], { cwd });
    expect(table.stdout).not.toMatch(/Infinity|In,fin|NaN|null/);
    expect(table.stdout).toMatch(/│ hub +│ +48\.00 │/);
    expectStrictFailure(cwd, '2024-09-01T12:00:00Z.json: implausible amount; fix the file, or run without --strict to skip such records');
  });

  const natives: [string, Record<string, unknown>, string][] = [
    ['an overlong number (1e999, read as Infinity)', { memory_mib: '1e999' }, 'resources.memory_mib is Infinity, not a finite number'],
    ['negative cores', { cpu_cores: -2 }, 'resources.cpu_cores is -2, below zero'],
    ['more than 64 TiB of memory', { memory_mib: 64 * 1024 * 1024 + 1 }, 'resources.memory_mib is 67108865, above the maximum of 67,108,864 MiB (64 TiB)'],
    ['more than 1 PiB of disk', { disk_mib: 2 ** 30 + 1 }, 'resources.disk_mib is 1073741825, above the maximum of 1,073,741,824 MiB (1 PiB)'],
    ['more than 1,024 GPUs', { gpu: 1025 }, 'resources.gpu is 1025, above the maximum of 1,024 GPUs'],
  ];
  for (const [name, resources, detail] of natives) {
    it(`a native record with ${name}: skipped, the field named`, () => {
      // 1e999 must reach the file as a number: JSON.stringify would write null.
      const text = JSON.stringify(hubSnapshot('2024-09-01T12:00:00Z', [alloc('a'), alloc('z', resources)])).replace('"1e999"', '1e999');
      const cwd = nativeFolder(text);
      expect(dayStats(cwd, `skipped 1 record in 2024-09-01T12:00:00Z.json: allocation z: ${detail}`).rows).toEqual([A_ALONE]);
      expectStrictFailure(cwd, '2024-09-01T12:00:00Z.json: implausible amount; fix the file, or run without --strict to skip such records');
    });
  }

  it('amounts at the maxima are read', () => {
    const max = { cpu_cores: 10_000, cpu_mhz: 1e8, memory_mib: 64 * 1024 * 1024, disk_mib: 2 ** 30, gpu: 1024 };
    const cwd = nativeFolder(JSON.stringify(hubSnapshot('2024-09-01T12:00:00Z', [alloc('a'), alloc('m', max, { start: '2024-09-01T11:00:00Z', status: 'complete', end: '2024-09-01T12:00:00Z' })])));
    const r = run(['stats', ...DAY, '-o', 'json', '--strict'], { cwd });
    expect(r.stderr).toBe('');
    // One hour of m on top of a's day.
    expect(JSON.parse(r.stdout).total).toEqual({
      cpu_hours: 48 + 10_000, cpu_mhz_hours: 1e8, gpu_hours: 1024, memory_gib_hours: 24 + 64 * 1024, disk_gib_hours: 1024 * 1024,
      allocation_hours: 25, jobs: 2, users: 1, allocations: 2,
    });
  });

  it('a native queued job with an absurd count is skipped', () => {
    const doc = { ...hubSnapshot('2024-09-01T12:00:00Z', [alloc('a')]), queued: [{ namespace: 'hub', job_id: 'q', job_name: null, user: null, group: null, component: null, submitted: null, queued: 1e308, resources: null }] };
    const cwd = nativeFolder(JSON.stringify(doc));
    const out = dayStats(cwd, 'skipped 1 record in 2024-09-01T12:00:00Z.json: queued job q in hub: queued is 1e+308, above the maximum of 1,000,000 allocations');
    expect(out.rows).toEqual([A_ALONE]);
  });
});

/**
 * `mib` MiB of zeros inside a JSON string, gzipped as one member per MiB: the same member
 * repeated, so the test never holds the inflated text.
 */
function gzipBomb(mib: number): Buffer {
  const zeros = gzipSync(Buffer.alloc(1024 * 1024, '0'), { level: 9 });
  return Buffer.concat([gzipSync('{"ai4eosc": [{"job_ID": "'), ...Array<Buffer>(mib).fill(zeros), gzipSync('", "status": "running"}]}')]);
}

describe('a gzip bomb', () => {
  it('is skipped as corrupt once it unzips past its cap, without inflating it all; the other files count as before', () => {
    const cwd = withAi4osFixture();
    const clean = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    const bomb = gzipBomb(64);
    // 64 MiB from about 65 KB: far over 200 times its size and over the 16 MiB floor.
    expect(bomb.length).toBeLessThan(100 * 1024);
    const file = '2024-09-05T12:00:11.json.gz';
    writeFileSync(join(cwd, 'snapshots', file), bomb);
    const r = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    const [warning, ...rest] = r.stderr.split('\n');
    expect(warning).toMatch(
      new RegExp(
        `^hourmeter: warning: skipped ${file.replaceAll('.', '\\.')}: gzip bomb \\(it unzips to more than 16\\.0 MiB from \\d+\\.\\d KiB; ` +
          'hourmeter unzips a file to at most 200 times its size \\(and always up to 16\\.0 MiB\\), as no snapshot shrinks that much\\); it is recorded in the index',
      ),
    );
    expect(rest).toEqual([`hourmeter: warning: ${FIXTURE_GAP}`, '']);
    const out = JSON.parse(r.stdout);
    expect(out.rows).toEqual(JSON.parse(clean.stdout).rows);
    expect(out.diagnostics.skipped).toEqual([{ reason: 'gzip bomb', count: 1 }]);

    const strict = run(['stats', ...PERIOD, '--strict', '--no-index'], { cwd });
    expect(strict.code).toBe(3);
    expect(strict.stdout).toBe('');
    expect(strict.stderr).toMatch(new RegExp(`^hourmeter: ${file.replaceAll('.', '\\.')}: gzip bomb \\(it unzips to more than 16\\.0 MiB from `));
  });

  it('a file that shrank more than 200 times but unzips to less than 16 MiB is read', () => {
    const cwd = nativeFolder();
    const at = '2024-09-01T12:00:00Z';
    // 8 MiB of spaces in the raw block of a: about 1000 to 1.
    const doc = hubSnapshot(at, [alloc('a', {}, { raw: { note: ' '.repeat(8 * 1024 * 1024) } })]);
    rmSync(join(cwd, 'snapshots', `${at}.json`));
    writeFileSync(join(cwd, 'snapshots', `${at}.json.gz`), gzipSync(JSON.stringify(doc)));
    const r = run(['stats', ...DAY, '-o', 'json', '--strict'], { cwd });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).rows).toEqual([A_ALONE]);
  });
});

describe('a UTF-8 byte order mark', () => {
  const BOM = '\ufeff';
  it('at the start of a native file, plain or gzipped, is read past', () => {
    for (const gzip of [false, true]) {
      const cwd = nativeFolder();
      const at = '2024-09-01T12:00:00Z';
      // b runs 12:00 to 18:00 on 1 core: 6 CPU-hours more.
      const b = alloc('b', { cpu_cores: 1 }, { start: at, status: 'complete', end: '2024-09-01T18:00:00Z' });
      const text = BOM + JSON.stringify(hubSnapshot(at, [alloc('a'), b]));
      rmSync(join(cwd, 'snapshots', `${at}.json`));
      writeFileSync(join(cwd, 'snapshots', gzip ? `${at}.json.gz` : `${at}.json`), gzip ? gzipSync(text) : text);
      const r = run(['stats', ...DAY, '-o', 'json', '--strict'], { cwd });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).total).toMatchObject({ cpu_hours: 54, memory_gib_hours: 30, allocations: 2 });
    }
  });
  it('at the start of an AI4OS file, is read past', () => {
    const cwd = withAi4osFixture();
    const clean = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    const file = join(cwd, 'snapshots', '2024-09-05T12:00:11.json');
    writeFileSync(file, BOM + readFileSync(file, 'utf8'));
    const r = run(['stats', ...PERIOD, '-o', 'json', '--strict'], { cwd });
    expect(r.stderr).toBe(`hourmeter: warning: ${FIXTURE_GAP}\n`);
    expect(r.stdout).toBe(clean.stdout);
  });
});

describe('records that contradict themselves or each other', () => {
  it('one allocation id listed twice with different content: the first listing counts, with a warning', () => {
    const at = '2024-09-01T12:00:00Z';
    // The second listing of a claims 100 cores; the first (2 cores) is used.
    const cwd = nativeFolder(JSON.stringify(hubSnapshot(at, [alloc('a'), alloc('a', { cpu_cores: 100 })])));
    const out = dayStats(cwd, `skipped 1 record in ${at}.json: allocation a is listed 2 times with different content; the first listing is used`);
    expect(out.rows).toEqual([A_ALONE]);
    expect(out.diagnostics.skipped).toEqual([{ reason: 'conflicting records', count: 1 }]);
    expectStrictFailure(cwd, `${at}.json: conflicting records; fix the file, or run without --strict to skip such records`);
    // The same through a full read of the files.
    expect(dayStats(cwd, `skipped 1 record in ${at}.json: allocation a is listed 2 times with different content; the first listing is used; use --strict to fail instead`, ['--no-index']).rows).toEqual([A_ALONE]);
  });

  it('the same record listed twice, identical, is counted once and says nothing', () => {
    const cwd = nativeFolder(JSON.stringify(hubSnapshot('2024-09-01T12:00:00Z', [alloc('a'), alloc('a')])));
    const r = run(['stats', ...DAY, '-o', 'json', '--strict'], { cwd });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).rows).toEqual([A_ALONE]);
  });

  it('a finished record whose end is before its start is skipped, naming both fields', () => {
    const at = '2024-09-01T12:00:00Z';
    const z = alloc('z', {}, { status: 'complete', start: '2024-09-01T10:00:00Z', end: '2024-09-01T09:00:00Z' });
    const cwd = nativeFolder(JSON.stringify(hubSnapshot(at, [alloc('a'), z])));
    const out = dayStats(cwd, `skipped 1 record in ${at}.json: allocation z: end 2024-09-01T09:00:00Z is before start 2024-09-01T10:00:00Z`);
    expect(out.rows).toEqual([A_ALONE]);
    expect(out.diagnostics.skipped).toEqual([{ reason: 'end before start', count: 1 }]);
    expectStrictFailure(cwd, `${at}.json: end before start; fix the file, or run without --strict to skip such records`);
  });

  it('an AI4OS dead job whose alloc_end is before its alloc_start is skipped', () => {
    const cwd = withAi4osFixture();
    const clean = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    const file = '2024-09-05T12:00:11.json';
    const doc = JSON.parse(readFileSync(join(cwd, 'snapshots', file), 'utf8')) as Record<string, unknown[]>;
    doc.ai4eosc!.push({ job_ID: 'back', status: 'dead', alloc_start: '2024-09-05T10:00:00Z', alloc_end: '2024-09-05T08:00:00Z', resources: { cpu_num: 1, cpu_MHz: 0, gpu_num: 0, memory_MB: 0, disk_MB: 0 } });
    writeFileSync(join(cwd, 'snapshots', file), JSON.stringify(doc));
    const r = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.stderr).toBe(`hourmeter: warning: skipped 1 record in ${file}: job back in ai4eosc: alloc_end 2024-09-05T08:00:00Z is before alloc_start 2024-09-05T10:00:00Z\nhourmeter: warning: ${FIXTURE_GAP}\n`);
    expect(JSON.parse(r.stdout).rows).toEqual(JSON.parse(clean.stdout).rows);
  });
});

describe('file names with control characters', () => {
  it('are printed escaped in warnings and errors, one line each', () => {
    const cwd = withAi4osFixture();
    // A folder whose name holds an escape sequence and a newline, with a corrupt file in it.
    const folder = 'bad\x1b[31mred\nline';
    mkdirSync(join(cwd, 'snapshots', folder));
    writeFileSync(join(cwd, 'snapshots', folder, '2024-09-05T12:00:11.json'), '{"ai4eosc": [');
    // A file whose name is no capture time, with an escape that would retitle the terminal.
    writeFileSync(join(cwd, 'snapshots', 'evil\x1b]0;owned\x07.json'), '{}');
    const shown = 'bad\\x1b[31mred\\nline/2024-09-05T12:00:11.json';
    const r = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe('hourmeter: warning: ignored evil\\x1b]0;owned\\x07.json: its name is not a capture time (YYYY-MM-DDTHH:MM:SSZ.json or the AI4OS YYYY-MM-DDTHH:MM:SS.json)');
    expect(lines[1]).toMatch(new RegExp(`^hourmeter: warning: skipped ${shown.replace(/[\\[.]/g, '\\$&')}: corrupt or truncated JSON \\(`));
    expect(lines.slice(2)).toEqual([`hourmeter: warning: ${FIXTURE_GAP}`, '']);
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f]/);

    const strict = run(['stats', ...PERIOD, '--strict', '--no-index'], { cwd });
    expect(strict.code).toBe(3);
    expect(strict.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
    expect(strict.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^hourmeter: ${shown.replace(/[\\[.]/g, '\\$&')}: corrupt or truncated JSON`));
  });
});
