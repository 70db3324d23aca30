import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { run, startServe } from '../helpers/cli.js';
import { hubSnapshot, monthlyFolder } from '../helpers/monthly-folder.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * One timestamp form in every CSV and JSON report (docs/accounting.md#report-timestamps):
 * RFC 3339 UTC with exactly six fraction digits. The folders mix whole-second instants with
 * Nomad's nanosecond ones and a capture time to the millisecond, as real captures do, so a
 * report that prints each instant in its own precision mixes widths in one column.
 */

const REPORT_FORM = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
/** Snapshot file names start like instants too; they are names, kept as the files are called. */
const LOOKS_LIKE_AN_INSTANT = /^\d{4}-\d{2}-\d{2}T(?!.*\.json)/;

/** Every string in a JSON value that starts like an instant, with its path. */
function instantsIn(value: unknown, path = '$'): [string, string][] {
  if (typeof value === 'string') return LOOKS_LIKE_AN_INSTANT.test(value) ? [[path, value]] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => instantsIn(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => instantsIn(v, `${path}.${k}`));
  return [];
}

/** Every CSV cell that starts like an instant, with its column. */
function instantCells(csv: string): [string, string][] {
  const parsed = Papa.parse<Record<string, string>>(csv.trim(), { header: true });
  expect(parsed.errors).toEqual([]);
  return parsed.data.flatMap((row) => Object.entries(row).filter(([, v]) => LOOKS_LIKE_AN_INSTANT.test(v)));
}

function expectReportForm(found: [string, string][], atLeast: number): void {
  expect(found.length).toBeGreaterThanOrEqual(atLeast);
  expect(found.filter(([, v]) => !REPORT_FORM.test(v))).toEqual([]);
}

/**
 * The monthly folder plus, on 2024-09-20, a notebook that Nomad reported to the nanosecond,
 * captured at a time with milliseconds (as `hourmeter snapshot` writes it).
 */
function mixedFolder(): string {
  const cwd = monthlyFolder();
  const f = {
    id: 'f', namespace: 'hub', job_id: 'job-f', job_name: 'jupyter-f', user: 'foo', group: 'phusers', component: 'jupyter',
    node: 'n1', status: 'complete', created: null, start: '2024-09-20T08:30:15.123456789Z', end: '2024-09-20T09:00:00.5Z', modified: null,
    resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
  };
  writeFileSync(join(cwd, 'snapshots', '2024-09-20T12:00:00Z.json'), JSON.stringify(hubSnapshot('2024-09-20T12:00:00.250Z', [f])));
  return cwd;
}

const json = (args: string[], cwd: string): unknown => {
  const r = run(args, { cwd });
  expect(r.stdout.startsWith('{')).toBe(true);
  return JSON.parse(r.stdout);
};

describe('one timestamp form in every CSV and JSON report', () => {
  it('the monthly details CSV: one width in the start and end columns, nanoseconds cut to microseconds', () => {
    const cwd = mixedFolder();
    const r = run(['report', 'monthly', '--month', '2024-09', '--details', '--out', 'reports'], { cwd });
    expect(r.code).toBe(0);
    const details = Papa.parse<Record<string, string>>(readFileSync(join(cwd, 'reports', 'monthly', '202409-details.csv'), 'utf8').trim(), { header: true }).data;
    // Hand-worked: A clipped to the month starts at its first instant; F keeps its fraction.
    expect(details.map((d) => [d.allocation, d.start, d.end])).toEqual([
      ['a', '2024-09-01T00:00:00.000000Z', '2024-09-01T12:00:00.000000Z'],
      ['c', '2024-09-10T00:00:00.000000Z', '2024-09-10T06:00:00.000000Z'],
      ['f', '2024-09-20T08:30:15.123456Z', '2024-09-20T09:00:00.500000Z'],
      ['b', '2024-09-30T00:00:00.000000Z', '2024-10-01T00:00:00.000000Z'],
    ]);
    // F held 1 core for 29 min 45.376544 s: 0.495938 CPU-hours, printed to two places.
    expect(details.find((d) => d.allocation === 'f')!.cpu_hours).toBe('0.50');
    expectReportForm(Object.entries(JSON.parse(readFileSync(join(cwd, 'reports', 'monthly', '202409-coverage.json'), 'utf8')) as object).flatMap(([k, v]) => instantsIn(v, k)), 4);
  });

  it('stats, top, index status and userdb export, in JSON and CSV', () => {
    const cwd = mixedFolder();
    const period = ['--from', '2024-09-01', '--to', '2024-09-30', '--max-gap', '30d'];
    const stats = json(['stats', ...period, '--by', 'user', '-o', 'json'], cwd) as { diagnostics: { first_snapshot: string; last_snapshot: string } };
    // A month reads the snapshots around it too: the first is in August, the last in October.
    expect([stats.diagnostics.first_snapshot, stats.diagnostics.last_snapshot]).toEqual(['2024-08-31T18:00:00.000000Z', '2024-10-01T12:00:00.000000Z']);
    expectReportForm(instantsIn(stats), 6);
    expectReportForm(instantCells(run(['stats', ...period, '--by', 'user', '-o', 'csv'], { cwd }).stdout), 2);

    const now = ['--now', '2024-10-01T14:00:00Z'];
    const top = json(['top', ...now, '-o', 'json'], cwd);
    expect(instantsIn(top)).toEqual([['$.snapshot.captured_at', '2024-10-01T12:00:00.000000Z'], ['$.allocations[0].since', '2024-09-30T00:00:00.000000Z']]);
    expect(instantCells(run(['top', ...now, '-o', 'csv'], { cwd }).stdout)).toEqual([['since', '2024-09-30T00:00:00.000000Z']]);

    const status = json(['index', 'status', '--json'], cwd) as { snapshots: { first: string; last: string }; last_ingest: { finished_at: string } };
    expect([status.snapshots.first, status.snapshots.last]).toEqual(['2024-08-31T18:00:00.000000Z', '2024-10-01T12:00:00.000000Z']);
    expectReportForm(instantsIn(status), 3);

    // users.json keeps what `snapshot` wrote: Date's three fraction digits.
    mkdirSync(join(cwd, 'userdb'));
    writeFileSync(join(cwd, 'userdb', 'users.json'), JSON.stringify({ foo: { name: 'Foo', email: null, first_seen: '2024-09-01T10:01:36.120Z', last_seen: '2024-09-20T12:00:00.250Z', groups: [] } }));
    expect(instantsIn(json(['userdb', 'export', '--json'], cwd))).toEqual([['$.foo.first_seen', '2024-09-01T10:01:36.120000Z'], ['$.foo.last_seen', '2024-09-20T12:00:00.250000Z']]);
    expect(instantCells(run(['userdb', 'export', '-o', 'csv'], { cwd }).stdout)).toEqual([['first_seen', '2024-09-01T10:01:36.120000Z'], ['last_seen', '2024-09-20T12:00:00.250000Z']]);
  });

  it('quota check, show and report, and the HTTP API', async () => {
    const cwd = quotaFolder();
    const now = ['--now', QUOTA_NOW];
    const check = json(['quota', 'check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2', ...now, '-o', 'json'], cwd) as { now: string; retry_at: string };
    // Hand-worked in quota.test.ts: alice's 24 GiB-hours + 4 GiB x 2 h pass 30; the window frees enough 30 min later.
    expect([check.now, check.retry_at]).toEqual(['2024-10-02T00:00:00.000000Z', '2024-10-02T00:30:00.000000Z']);
    expectReportForm(instantsIn(check), 6);
    expectReportForm(instantsIn(json(['quota', 'show', '--user', 'bob', ...now, '-o', 'json'], cwd)), 4);
    expectReportForm(instantsIn(json(['quota', 'report', ...now, '-o', 'json'], cwd)), 4);

    const { url } = await startServe(cwd, ['--now', QUOTA_NOW, '--workers', '1']);
    const health = (await (await fetch(`${url}/health`)).json()) as { latest_snapshot: string };
    expect(health.latest_snapshot).toBe('2024-10-01T23:00:00.000000Z');
    const stats = await (await fetch(`${url}/stats?from=2024-10-01&to=2024-10-01`)).json();
    expectReportForm(instantsIn(stats), 6);
  });
});
