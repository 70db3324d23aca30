import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { MISSED_DAY_COVERAGE, MISSED_DAY_LINE, missedDayFolder } from '../helpers/missed-day-folder.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/** Coverage on the folder of missed-day-folder.ts, whose first snapshot is at 2024-09-01T00:01. */
const coverageFolder = () => missedDayFolder('2024-09-01T00:01:00Z');

const stats = (cwd: string, from: string, to: string, ...more: string[]) => run(['stats', '--from', from, '--to', to, ...more], { cwd });

describe('coverage: every report says what its snapshots cover', () => {

  it('a period fully covered, first snapshot at 00:01: one sampled stretch, no warning, exit 0 even under --require-coverage', () => {
    const cwd = coverageFolder();
    for (const [from, to] of [
      ['2024-09-01', '2024-09-01'],
      ['2024-09-04', '2024-09-04'],
    ]) {
      const r = stats(cwd, from!, to!, '-o', 'json', '--require-coverage');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const nextDay = to === '2024-09-01' ? '2024-09-02' : '2024-09-05';
      expect(JSON.parse(r.stdout).coverage).toEqual({
        covered_fraction: 1,
        max_gap_hours: 18,
        stretches: [{ start: `${from}T00:00:00.000000Z`, end: `${nextDay}T00:00:00.000000Z`, kind: 'sampled' }],
        until: null,
        warning: null,
      });
      const table = stats(cwd, from!, to!);
      expect(table.stdout).not.toContain('Coverage:');
      expect(table.stderr).toBe('');
    }
  });

  it('a missed day: the 30 h gap is uncovered, told under the table; --require-coverage exits 1', () => {
    const cwd = coverageFolder();
    const line = MISSED_DAY_LINE;
    const json = stats(cwd, '2024-09-02', '2024-09-04', '-o', 'json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.coverage).toEqual(MISSED_DAY_COVERAGE);
    // Seen on both sides of the gap, the allocation counts through it: 72 core-hours.
    expect(report.total.cpu_hours).toBe(72);
    expect(json.stderr).toBe(`hourmeter: warning: ${line}\n`);

    const table = stats(cwd, '2024-09-02', '2024-09-04');
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    const bottom = lines.findIndex((l) => l.startsWith('└'));
    expect(lines[bottom + 1]).toBe(`Coverage: ${line}`);
    expect(table.stderr).toBe('');

    const csv = stats(cwd, '2024-09-02', '2024-09-04', '-o', 'csv');
    expect(csv.stdout.split('\n')[1]).toMatch(/^hub,72,/);
    expect(csv.stderr).toBe(`hourmeter: warning: ${line}\n`);

    const required = stats(cwd, '2024-09-02', '2024-09-04', '--require-coverage');
    expect(required.code).toBe(1);
    expect(required.stdout).toContain(`Coverage: ${line}`);
    expect(required.stderr).toBe(`hourmeter: --require-coverage: ${line}\n`);

    // A max gap of 30 h accepts the gap.
    const wide = stats(cwd, '2024-09-02', '2024-09-04', '-o', 'json', '--max-gap', '30h', '--require-coverage');
    expect(wide.code).toBe(0);
    expect(JSON.parse(wide.stdout).coverage.stretches).toEqual([{ start: '2024-09-02T00:00:00.000000Z', end: '2024-09-05T00:00:00.000000Z', kind: 'sampled' }]);
    expect(stats(cwd, '2024-09-02', '2024-09-04', '--max-gap', 'soon').stderr).toContain('--max-gap "soon" is not a duration');
  });

  it('a period past the last snapshot: unknown, not zero', () => {
    const cwd = coverageFolder();
    const r = stats(cwd, '2024-09-05', '2024-09-09', '-o', 'json', '--require-coverage');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.coverage.covered_fraction).toBe(18 / 120);
    expect(report.coverage.stretches).toEqual([
      { start: '2024-09-05T00:00:00.000000Z', end: '2024-09-05T18:00:00.000000Z', kind: 'sampled' },
      { start: '2024-09-05T18:00:00.000000Z', end: '2024-09-10T00:00:00.000000Z', kind: 'uncovered' },
    ]);
    // Open at the last snapshot: counted up to it, 18 core-hours on 09-05.
    expect(report.total.cpu_hours).toBe(18);
    expect(r.stderr).toBe('hourmeter: --require-coverage: no snapshot after 2024-09-05T18:00:00Z: 4.25 of 5 days are unknown, not zero\n');
  });

  it('a period still running is covered up to now (--now): the rest has not happened yet', () => {
    const cwd = coverageFolder();
    // 2 h after the last snapshot (09-05T18:00): nothing is missing so far.
    const r = stats(cwd, '2024-09-05', '2024-09-06', '-o', 'json', '--require-coverage', '--now', '2024-09-05T20:00:00Z');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).coverage).toEqual({
      covered_fraction: 1,
      max_gap_hours: 18,
      stretches: [{ start: '2024-09-05T00:00:00.000000Z', end: '2024-09-05T20:00:00.000000Z', kind: 'sampled' }],
      until: '2024-09-05T20:00:00.000000Z',
      warning: null,
    });
    // A day later, 24 h of the 42 h so far have gone by without a snapshot.
    const late = stats(cwd, '2024-09-05', '2024-09-06', '--now', '2024-09-06T18:00:00Z');
    expect(late.stdout).toContain('Coverage: no snapshot after 2024-09-05T18:00:00Z: 24 of 42 h so far are unknown, not zero\n');
  });

  it('a period before the first snapshot', () => {
    const cwd = coverageFolder();
    const r = stats(cwd, '2024-08-30', '2024-09-01', '-o', 'json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    // 48 h 1 min before the first snapshot, of 72 h.
    expect(report.coverage.covered_fraction).toBe((72 * 60 - 2881) / (72 * 60));
    expect(report.coverage.stretches).toEqual([
      { start: '2024-08-30T00:00:00.000000Z', end: '2024-09-01T00:01:00.000000Z', kind: 'uncovered' },
      { start: '2024-09-01T00:01:00.000000Z', end: '2024-09-02T00:00:00.000000Z', kind: 'sampled' },
    ]);
    expect(r.stderr).toBe('hourmeter: warning: no snapshot before 2024-09-01T00:01:00Z: 2 of 3 days are unknown, not zero\n');
  });

  it('the same coverage with and without the index', () => {
    const cwd = coverageFolder();
    const a = JSON.parse(stats(cwd, '2024-08-31', '2024-09-07', '-o', 'json').stdout).coverage;
    const b = JSON.parse(stats(cwd, '2024-08-31', '2024-09-07', '-o', 'json', '--no-index').stdout).coverage;
    expect(b).toEqual(a);
    expect(a.stretches.map((s: { kind: string }) => s.kind)).toEqual(['uncovered', 'sampled', 'uncovered', 'sampled', 'uncovered']);
  });
});

describe('coverage of quota answers: the longest window, [now - window, now)', () => {
  // Snapshots 10-01T00:00, 06:00 and 23:00; now 10-02T00:00, 1d windows (quota-folder.ts).
  // Intervals 6 h and 17 h: median 11.5 h, so the default max gap is 34.5 h.
  const quota = (cwd: string, ...args: string[]) => run(['quota', ...args, '--now', QUOTA_NOW], { cwd });
  const narrow = {
    covered_fraction: 7 / 24,
    max_gap_hours: 10,
    stretches: [
      { start: '2024-10-01T00:00:00.000000Z', end: '2024-10-01T06:00:00.000000Z', kind: 'sampled' },
      { start: '2024-10-01T06:00:00.000000Z', end: '2024-10-01T23:00:00.000000Z', kind: 'uncovered' },
      { start: '2024-10-01T23:00:00.000000Z', end: '2024-10-02T00:00:00.000000Z', kind: 'sampled' },
    ],
    until: null,
    warning: 'no snapshot between 2024-10-01T06:00:00Z and 2024-10-01T23:00:00Z (17 h): 17 of 24 h are unknown, not zero',
  };

  it('check, show and report carry it in JSON; covered by default', () => {
    const cwd = quotaFolder();
    const covered = { covered_fraction: 1, max_gap_hours: 34.5, stretches: [{ start: '2024-10-01T00:00:00.000000Z', end: '2024-10-02T00:00:00.000000Z', kind: 'sampled' }], until: null, warning: null };
    for (const args of [['check', '--user', 'alice'], ['show', '--user', 'bob'], ['report']]) {
      const r = quota(cwd, ...args, '-o', 'json');
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout).coverage).toEqual(covered);
    }
  });

  it('--max-gap 10h leaves the 17 h gap uncovered: told in JSON, under the table, and --require-coverage fails the report', () => {
    const cwd = quotaFolder();
    const show = quota(cwd, 'show', '--user', 'bob', '--max-gap', '10h', '-o', 'json');
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout).coverage).toEqual(narrow);
    expect(show.stderr).toBe(`hourmeter: warning: ${narrow.warning}\n`);
    const table = quota(cwd, 'show', '--user', 'bob', '--max-gap', '10h');
    expect(table.stdout.trimEnd().split('\n').at(-1)).toBe(`Coverage: ${narrow.warning}`);
    expect(table.stderr).toBe('');
    const report = quota(cwd, 'report', '--max-gap', '10h', '--require-coverage', '-o', 'csv');
    expect(report.code).toBe(1);
    expect(report.stdout.split('\n')[0]).toBe('user,groups,resource,window,unit,used,limit,remaining,percent,source,policies');
    expect(report.stderr).toBe(`hourmeter: --require-coverage: ${narrow.warning}\n`);
    expect(quota(cwd, 'report', '--require-coverage').code).toBe(0);
  });
});
