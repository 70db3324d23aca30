import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import Papa from 'papaparse';
import { FIXTURES, run, tempDir } from '../helpers/cli.js';
import { monthlyFolder as folder } from '../helpers/monthly-folder.js';

/** Monthly reports on the hand-computed folder of test/helpers/monthly-folder.ts. */

const HEADER = 'component,group_name,user_name,gpu_hours,cpu_hours,memory_gb_hours,total_hours,report_date';

describe('hourmeter report monthly', () => {
  it('writes PrimeHub columns per component, group and user, clipped to the month', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--month', '2024-09', '--details'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2024-09: 2 rows, 3 allocations written to reports/monthly/202409.csv and reports/monthly/202409-details.csv\n');
    // deployment: 1 core x 24 h, 2 GiB x 24 h. jupyter/foo: GPU 1 x 12 h; CPU 2 x 12 + 4 x 6 = 48;
    // memory 4 x 12 + 1 x 6 = 54; wall clock 12 + 6 = 18 h.
    expect(readFileSync(join(cwd, 'reports/monthly/202409.csv'), 'utf8')).toBe(
      `${HEADER}\ndeployment,phusers,,0.00,24.00,48.00,24.00,202409\njupyter,phusers,foo,12.00,48.00,54.00,18.00,202409\n`,
    );
    const details = readFileSync(join(cwd, 'reports/monthly/202409-details.csv'), 'utf8').trim().split('\n');
    expect(details[0]).toBe(
      'cluster,namespace,job_id,job_name,allocation,component,group_name,user_name,start,end,running,end_estimated,cpu_cores,cpu_mhz,gpu,memory_gib,disk_gib,gpu_hours,cpu_hours,memory_gb_hours,total_hours,report_date',
    );
    expect(details.slice(1)).toEqual([
      '(unnamed),hub,job-a,jupyter-a,a,jupyter,phusers,foo,2024-09-01T00:00:00.000000Z,2024-09-01T12:00:00.000000Z,false,false,2,0,1,4,0,12.00,24.00,48.00,12.00,202409',
      '(unnamed),hub,job-c,jupyter-c,c,jupyter,phusers,foo,2024-09-10T00:00:00.000000Z,2024-09-10T06:00:00.000000Z,false,false,4,0,0,1,0,0.00,24.00,6.00,6.00,202409',
      // Still running when September ends.
      '(unnamed),hub,job-b,deployment-b,b,deployment,phusers,,2024-09-30T00:00:00.000000Z,2024-10-01T00:00:00.000000Z,true,false,1,0,0,2,0,0.00,24.00,48.00,24.00,202409',
    ]);
  });

  it('without --month writes this month and last month; October counts the open allocation up to the last snapshot', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--now', '2024-10-05T08:00:00Z', '--out', 'out'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2024-09: 2 rows written to out/monthly/202409.csv\n2024-10: 1 rows written to out/monthly/202410.csv\n');
    expect(readFileSync(join(cwd, 'out/monthly/202410.csv'), 'utf8')).toBe(`${HEADER}\ndeployment,phusers,,0.00,12.00,24.00,12.00,202410\n`);
  });

  it('prints one month to stdout with --out -, and August holds the first half of A', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--month', '2024-08', '--out', '-'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${HEADER}\njupyter,phusers,foo,12.00,24.00,48.00,12.00,202408\n`);
  });

  it('gives the same numbers from the index and from the files', () => {
    const cwd = folder();
    const a = run(['report', 'monthly', '--month', '2024-09', '--details', '--out', '-'], { cwd });
    const b = run(['report', 'monthly', '--month', '2024-09', '--details', '--out', '-', '--no-index'], { cwd });
    expect(a.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
  });

  it('detail rows sum to the summary rows on the AI4OS fixture (up to the 2-decimal rounding of each row)', () => {
    const cwd = tempDir();
    const args = ['report', 'monthly', '--month', '2024-09', '--snapshots', join(FIXTURES, 'ai4os/snapshots'), '--db', join(cwd, 'index.sqlite'), '--out', '-'];
    const parse = (text: string) => Papa.parse<Record<string, string>>(text, { header: true, skipEmptyLines: true }).data;
    const summary = parse(run(args, { cwd }).stdout);
    const details = parse(run([...args, '--details'], { cwd }).stdout);
    expect(summary.length).toBe(73);
    expect(details.length).toBe(154);
    const key = (r: Record<string, string>) => [r.component, r.group_name, r.user_name].join('|');
    for (const column of ['gpu_hours', 'cpu_hours', 'memory_gb_hours', 'total_hours']) {
      const sums = new Map<string, { total: number; rows: number }>();
      for (const d of details) {
        const s = sums.get(key(d)) ?? { total: 0, rows: 0 };
        sums.set(key(d), { total: s.total + Number(d[column]), rows: s.rows + 1 });
      }
      expect(sums.size).toBe(summary.length);
      for (const row of summary) {
        const s = sums.get(key(row))!;
        // Each printed value is off by at most 0.005: the summary once, every detail row once.
        expect(Math.abs(s.total - Number(row[column]))).toBeLessThanOrEqual(0.005 * (s.rows + 1) + 1e-9);
      }
    }
  });

  it.each([
    ['a month that is not YYYY-MM', ['--month', '2024-9'], /^hourmeter: --month "2024-9" is not a month: use YYYY-MM, e.g. 2024-09\n$/],
    ['month 13', ['--month', '2024-13'], /^hourmeter: --month "2024-13" is not a month/],
    ['--out - with two months', ['--out', '-'], /^hourmeter: --out - prints one month: give --month as well\n$/],
    ['a bad --now', ['--now', 'yesterday'], /^hourmeter: --now "yesterday" is not an RFC 3339 instant/],
  ])('%s: exit 2 with one line', (_, args, message) => {
    const cwd = folder();
    const r = run(['report', 'monthly', ...args], { cwd });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });
});
