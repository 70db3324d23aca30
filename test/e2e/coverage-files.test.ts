import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { MISSED_DAY_COVERAGE, MISSED_DAY_LINE, missedDayFolder } from '../helpers/missed-day-folder.js';

/** Coverage files of the commands that write files, on the folder of missed-day-folder.ts from 2024-08-01. */
const folder = () => missedDayFolder('2024-08-01T00:00:00Z');

const read = (cwd: string, path: string) => readFileSync(join(cwd, path), 'utf8');
const json = (cwd: string, path: string) => JSON.parse(read(cwd, path));

const GAP = 'no snapshot between 2024-09-02T18:00:00Z and 2024-09-04T00:00:00Z (30 h)';
/** summarize --from 2024-09-02 --to 2024-09-04: 30 h of the 72 are unknown. */
const SUMMARY_LINE = MISSED_DAY_LINE;
/** September: the gap, and 09-05T18:00 to 10-01T00:00 (606 h): 636 h, 26.5 of 30 days. */
const SEPTEMBER_LINE = `2024-09: ${GAP}; no snapshot after 2024-09-05T18:00:00Z: 26.5 of 30 days are unknown, not zero`;
const MISSED_DAY = 'hourmeter: warning: hub: no snapshot on 1 day (2024-09-03): running and queued jobs are left empty there; resource-hours still come from the lifetimes\n';
const HEADER = 'component,group_name,user_name,gpu_hours,cpu_hours,memory_gb_hours,total_hours,report_date';

describe('summarize writes coverage.json beside the summaries', () => {
  it('a missed day: the 30 h gap is uncovered, in coverage.json and on stderr', () => {
    const cwd = folder();
    const r = run(['summarize', '--from', '2024-09-02', '--to', '2024-09-04'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).at(-1)).toBe('wrote summaries/coverage.json');
    expect(r.stderr).toBe(`${MISSED_DAY}hourmeter: warning: ${SUMMARY_LINE}\n`);
    expect(readdirSync(join(cwd, 'summaries')).sort()).toEqual(['coverage.json', 'hub-full-agg.csv', 'hub-timeseries.csv', 'hub-users-agg.csv']);
    expect(json(cwd, 'summaries/coverage.json')).toEqual({
      period: { from: '2024-09-02', to: '2024-09-04', timezone: 'UTC', start: '2024-09-02T00:00:00.000000Z', end: '2024-09-05T00:00:00.000000Z' },
      coverage: MISSED_DAY_COVERAGE,
    });
  });

  it('--require-coverage exits 1 after writing; 0 when covered, or when --max-gap accepts the gap', () => {
    const cwd = folder();
    const failed = run(['summarize', '--from', '2024-09-02', '--to', '2024-09-04', '--require-coverage', '--quiet'], { cwd });
    expect(failed).toMatchObject({ code: 1, stdout: '', stderr: `${MISSED_DAY}hourmeter: --require-coverage: ${SUMMARY_LINE}\n` });
    expect(json(cwd, 'summaries/coverage.json').coverage.warning).toBe(SUMMARY_LINE);
    expect(existsSync(join(cwd, 'summaries/hub-timeseries.csv'))).toBe(true);

    const covered = run(['summarize', '--from', '2024-08-10', '--to', '2024-08-20', '--require-coverage', '--summaries', 'august'], { cwd });
    expect(covered).toMatchObject({ code: 0, stderr: '' });
    expect(json(cwd, 'august/coverage.json').coverage).toEqual({
      covered_fraction: 1,
      max_gap_hours: 18,
      stretches: [{ start: '2024-08-10T00:00:00.000000Z', end: '2024-08-21T00:00:00.000000Z', kind: 'sampled' }],
      until: null,
      warning: null,
    });

    const wide = run(['summarize', '--from', '2024-09-02', '--to', '2024-09-04', '--max-gap', '30h', '--require-coverage', '--summaries', 'wide'], { cwd });
    expect(wide).toMatchObject({ code: 0, stderr: MISSED_DAY });
    expect(json(cwd, 'wide/coverage.json').coverage.max_gap_hours).toBe(30);
    expect(run(['summarize', '--max-gap', 'soon'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --max-gap "soon" is not a duration: use e.g. 30m, 18h or 2d\n' });
  });

  it('a period still running is judged up to now: the rest has not happened yet', () => {
    const cwd = folder();
    // Up to 09-05T20:00, 2 h after the last snapshot: covered (and 09-06 has not begun).
    const running = run(['summarize', '--from', '2024-09-04', '--to', '2024-09-06', '--now', '2024-09-05T20:00:00Z', '--require-coverage'], { cwd });
    expect(running).toMatchObject({ code: 0, stderr: '' });
    expect(json(cwd, 'summaries/coverage.json')).toEqual({
      period: { from: '2024-09-04', to: '2024-09-06', timezone: 'UTC', start: '2024-09-04T00:00:00.000000Z', end: '2024-09-07T00:00:00.000000Z' },
      coverage: { covered_fraction: 1, max_gap_hours: 18, stretches: [{ start: '2024-09-04T00:00:00.000000Z', end: '2024-09-05T20:00:00.000000Z', kind: 'sampled' }], until: '2024-09-05T20:00:00.000000Z', warning: null },
    });
    // Long after: 09-05T18:00 to 09-07T00:00 (30 h) is unknown.
    const later = run(['summarize', '--from', '2024-09-04', '--to', '2024-09-06', '--now', '2026-01-01T00:00:00Z'], { cwd });
    expect(later.stderr).toBe(
      'hourmeter: warning: hub: no snapshot on 1 day (2024-09-06): running and queued jobs are left empty there; resource-hours still come from the lifetimes\n' +
        'hourmeter: warning: no snapshot after 2024-09-05T18:00:00Z: 1.25 of 3 days are unknown, not zero\n',
    );
    expect(json(cwd, 'summaries/coverage.json').coverage.until).toBe(null);
  });
});

describe('report monthly writes YYYYMM-coverage.json beside each month', () => {
  it('one coverage file per month; the warning names the month; --require-coverage exits 1 after writing', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--month', '2024-09', '--now', '2026-01-01T00:00:00Z'], { cwd });
    expect(r).toMatchObject({ code: 0, stdout: '2024-09: 1 rows written to reports/monthly/202409.csv\n', stderr: `hourmeter: warning: ${SEPTEMBER_LINE}\n` });
    // Counted up to the last snapshot: 09-01T00:00 to 09-05T18:00, 114 h of 1 core and 1 GiB.
    expect(read(cwd, 'reports/monthly/202409.csv')).toBe(`${HEADER}\njupyter,,alice,0.00,114.00,114.00,114.00,202409\n`);
    expect(json(cwd, 'reports/monthly/202409-coverage.json')).toEqual({
      period: { from: '2024-09-01', to: '2024-09-30', timezone: 'UTC', start: '2024-09-01T00:00:00.000000Z', end: '2024-10-01T00:00:00.000000Z' },
      coverage: {
        covered_fraction: 84 / 720,
        max_gap_hours: 18,
        stretches: [
          { start: '2024-09-01T00:00:00.000000Z', end: '2024-09-02T18:00:00.000000Z', kind: 'sampled' },
          { start: '2024-09-02T18:00:00.000000Z', end: '2024-09-04T00:00:00.000000Z', kind: 'uncovered' },
          { start: '2024-09-04T00:00:00.000000Z', end: '2024-09-05T18:00:00.000000Z', kind: 'sampled' },
          { start: '2024-09-05T18:00:00.000000Z', end: '2024-10-01T00:00:00.000000Z', kind: 'uncovered' },
        ],
        until: null,
        warning: SEPTEMBER_LINE.slice('2024-09: '.length),
      },
    });

    // August is sampled throughout; its file goes beside September's.
    const august = run(['report', 'monthly', '--month', '2024-08', '--require-coverage'], { cwd });
    expect(august).toMatchObject({ code: 0, stderr: '' });
    expect(readdirSync(join(cwd, 'reports/monthly')).sort()).toEqual(['202408-coverage.json', '202408.csv', '202409-coverage.json', '202409.csv']);
    expect(json(cwd, 'reports/monthly/202408-coverage.json').coverage).toEqual({
      covered_fraction: 1,
      max_gap_hours: 18,
      stretches: [{ start: '2024-08-01T00:00:00.000000Z', end: '2024-09-01T00:00:00.000000Z', kind: 'sampled' }],
      until: null,
      warning: null,
    });

    rmSync(join(cwd, 'reports'), { recursive: true });
    const required = run(['report', 'monthly', '--month', '2024-09', '--details', '--require-coverage', '--now', '2026-01-01T00:00:00Z'], { cwd });
    expect(required).toMatchObject({ code: 1, stderr: `hourmeter: --require-coverage: ${SEPTEMBER_LINE}\n` });
    expect(readdirSync(join(cwd, 'reports/monthly')).sort()).toEqual(['202409-coverage.json', '202409-details.csv', '202409.csv']);
    // A max gap of 700 h accepts both gaps.
    expect(run(['report', 'monthly', '--month', '2024-09', '--max-gap', '700h', '--require-coverage'], { cwd })).toMatchObject({ code: 0, stderr: '' });
  });

  it('with --out -, only the stderr line', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--month', '2024-09', '--out', '-', '--now', '2026-01-01T00:00:00Z'], { cwd });
    expect(r).toMatchObject({ code: 0, stdout: `${HEADER}\njupyter,,alice,0.00,114.00,114.00,114.00,202409\n`, stderr: `hourmeter: warning: ${SEPTEMBER_LINE}\n` });
    expect(existsSync(join(cwd, 'reports'))).toBe(false);
  });

  it('the default months: this month is judged up to now', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--now', '2024-09-04T12:00:00Z'], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2024-08: 1 rows written to reports/monthly/202408.csv\n2024-09: 1 rows written to reports/monthly/202409.csv\n');
    // September up to 09-04T12:00: 84 h, of which the gap's 30 h are unknown.
    expect(r.stderr).toBe(`hourmeter: warning: 2024-09: ${GAP}: 1.25 of 3.5 days so far are unknown, not zero\n`);
    const september = json(cwd, 'reports/monthly/202409-coverage.json');
    expect(september.coverage.until).toBe('2024-09-04T12:00:00.000000Z');
    expect(september.coverage.covered_fraction).toBe(54 / 84);
    expect(json(cwd, 'reports/monthly/202408-coverage.json').coverage.warning).toBe(null);
  });

  it('the default months long after the data: nothing written, exit 1; a month with data is written beside a skipped one', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--now', '2026-11-20T00:00:00Z'], { cwd });
    expect(r).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'hourmeter: 2026-10 and 2026-11: no snapshot in these months (the latest is 2024-09-05T18:00:00Z); nothing written. Give --month YYYY-MM for a month with data, e.g. --month 2024-09\n',
    });
    expect(existsSync(join(cwd, 'reports'))).toBe(false);

    // Before the data: the first snapshot is named instead.
    expect(run(['report', 'monthly', '--now', '2024-07-10T00:00:00Z'], { cwd }).stderr).toBe(
      'hourmeter: 2024-06 and 2024-07: no snapshot in these months (the first is 2024-08-01T00:00:00Z); nothing written. Give --month YYYY-MM for a month with data, e.g. --month 2024-08\n',
    );

    const october = run(['report', 'monthly', '--now', '2024-10-15T00:00:00Z'], { cwd });
    expect(october.code).toBe(0);
    expect(october.stdout).toBe('2024-09: 1 rows written to reports/monthly/202409.csv\n');
    expect(october.stderr).toBe(
      'hourmeter: warning: 2024-10: no snapshot in this month (the latest is 2024-09-05T18:00:00Z); not written. Give --month YYYY-MM for a month with data, e.g. --month 2024-09\n' +
        `hourmeter: warning: ${SEPTEMBER_LINE}\n`,
    );
    expect(readdirSync(join(cwd, 'reports/monthly')).sort()).toEqual(['202409-coverage.json', '202409.csv']);
  });

  it('a month asked for by name is written even without data, with the warning', () => {
    const cwd = folder();
    const r = run(['report', 'monthly', '--month', '2024-11', '--now', '2026-01-01T00:00:00Z'], { cwd });
    expect(r).toMatchObject({
      code: 0,
      stdout: '2024-11: 0 rows written to reports/monthly/202411.csv\n',
      stderr: 'hourmeter: warning: 2024-11: no snapshot after 2024-09-05T18:00:00Z: all 30 days are unknown, not zero\n',
    });
    expect(read(cwd, 'reports/monthly/202411.csv').trim()).toBe(HEADER);
    expect(json(cwd, 'reports/monthly/202411-coverage.json').coverage).toMatchObject({
      covered_fraction: 0,
      stretches: [{ start: '2024-11-01T00:00:00.000000Z', end: '2024-12-01T00:00:00.000000Z', kind: 'uncovered' }],
    });
  });
});

describe('plot copies the summaries\' coverage.json', () => {
  it('copies it beside the pages, warns, and shows the line on the index page; --require-coverage exits 1 after writing', () => {
    const cwd = folder();
    expect(run(['summarize', '--from', '2024-09-02', '--to', '2024-09-04'], { cwd }).code).toBe(0);
    const r = run(['plot'], { cwd });
    expect(r).toMatchObject({ code: 0, stderr: `hourmeter: warning: ${SUMMARY_LINE}\n` });
    expect(r.stdout.split('\n').filter(Boolean).at(-1)).toBe('wrote htmls/coverage.json');
    expect(readdirSync(join(cwd, 'htmls')).sort()).toEqual(['coverage.json', 'hub.html', 'index.html']);
    expect(read(cwd, 'htmls/coverage.json')).toBe(read(cwd, 'summaries/coverage.json'));
    expect(read(cwd, 'htmls/index.html')).toContain(`<p class="coverage">Coverage: ${SUMMARY_LINE}</p>`);

    rmSync(join(cwd, 'htmls'), { recursive: true });
    const required = run(['plot', '--require-coverage', '--quiet'], { cwd });
    expect(required).toMatchObject({ code: 1, stdout: '', stderr: `hourmeter: --require-coverage: ${SUMMARY_LINE}\n` });
    expect(readdirSync(join(cwd, 'htmls')).sort()).toEqual(['coverage.json', 'hub.html', 'index.html']);

    // Covered: no line, and exit 0 under --require-coverage.
    expect(run(['summarize', '--from', '2024-08-10', '--to', '2024-08-20'], { cwd }).code).toBe(0);
    expect(run(['plot', '--require-coverage', '--quiet'], { cwd })).toMatchObject({ code: 0, stderr: '' });
    expect(read(cwd, 'htmls/index.html')).not.toContain('class="coverage"');
  });

  it('summaries without coverage.json (written before it existed): nothing said, and none left beside the pages', () => {
    const cwd = folder();
    expect(run(['summarize', '--from', '2024-09-02', '--to', '2024-09-04'], { cwd }).code).toBe(0);
    expect(run(['plot', '--quiet'], { cwd }).code).toBe(0);
    rmSync(join(cwd, 'summaries/coverage.json'));
    const r = run(['plot', '--quiet'], { cwd });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    // The copy of the earlier plot would describe other summaries.
    expect(readdirSync(join(cwd, 'htmls')).sort()).toEqual(['hub.html', 'index.html']);
    expect(read(cwd, 'htmls/index.html')).not.toContain('class="coverage"');
    expect(run(['plot', '--require-coverage', '--quiet'], { cwd })).toMatchObject({
      code: 1,
      stderr: 'hourmeter: --require-coverage: summaries/coverage.json does not exist, so what the snapshots cover is unknown; run `hourmeter summarize` again to write it\n',
    });

    writeFileSync(join(cwd, 'summaries/coverage.json'), '{"period": {}');
    expect(run(['plot', '--quiet'], { cwd })).toMatchObject({ code: 3, stderr: expect.stringMatching(/^hourmeter: summaries\/coverage\.json: not valid JSON \(.*\); run `hourmeter summarize` again to rewrite it\n$/) });
  });
});
