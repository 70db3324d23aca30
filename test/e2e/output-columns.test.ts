import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { USERDB_COLUMNS } from '../../src/cli/commands/userdb.js';
import { POLICY_COLUMNS, QUOTA_REPORT_COLUMNS } from '../../src/reports/quota.js';
import type { Column } from '../../src/reports/output.js';
import { statsColumns } from '../../src/reports/stats-report.js';
import { TOP_COLUMNS } from '../../src/reports/top.js';
import { FIXTURES, run, withAi4osFixture } from '../helpers/cli.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * Every command with more than one output format, run as a process in each format: the
 * columns JSON, CSV and a table show are listed, and must agree. A table may leave out what
 * its column description says it leaves out (`omitted`), and a layout may drop a column the
 * description marks as conditional (compact: null, only); nothing else.
 */

type Columns = readonly Column<never>[];
type Json = Record<string, unknown>;

const at = (doc: unknown, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Json | undefined)?.[k], doc);

/** The columns of a JSON report: the keys of its rows, the name rows are filed under, and values every row shares. */
function jsonColumns(stdout: string, rowsAt: string | null, columns: Columns): string[] {
  const doc = JSON.parse(stdout) as Json;
  const rows = rowsAt === null ? doc : at(doc, rowsAt);
  const list = (Array.isArray(rows) ? rows : Object.values(rows as Json)) as Json[];
  expect(list.length).toBeGreaterThan(0);
  const keys = new Set(list.flatMap((r) => Object.keys(r)));
  for (const c of columns) {
    if (c.json === 'row name' && !Array.isArray(rows)) keys.add(c.key);
    if (typeof c.json === 'object' && at(doc, c.json.shared) !== undefined) keys.add(c.key);
  }
  return [...keys];
}

const csvColumns = (stdout: string): string[] => stdout.split('\n')[0]!.split(',');

/** The keys of a drawn table's columns, from its header row; a header no column declares shows as `?Header`. */
function tableColumns(stdout: string, columns: Columns): string[] {
  const lines = stdout.split('\n');
  const header = lines[lines.findIndex((l) => l.startsWith('┌')) + 1]!;
  const byHeader = new Map<string, string>();
  for (const c of columns) {
    if ('omitted' in c.table) continue;
    byHeader.set(c.table.header, c.key);
    if (c.table.compact) byHeader.set(c.table.compact, c.key);
  }
  return header
    .split('│')
    .slice(1, -1)
    .map((h) => h.trim())
    .map((h) => byHeader.get(h) ?? `?${h}`);
}

/** JSON, CSV and tables agree beyond the declared omissions; the description lists exactly JSON's columns. */
function expectAgreement(columns: Columns, json: string[], csv: string[] | null, tables: { keys: string[]; compact: boolean }[]): void {
  const sorted = (l: string[]) => [...l].sort();
  expect(sorted(columns.map((c) => c.key))).toEqual(sorted(json));
  if (csv !== null) expect(sorted(csv)).toEqual(sorted(json));
  const omitted = new Set(columns.filter((c) => 'omitted' in c.table).map((c) => c.key));
  const conditional = (compact: boolean) => new Set(columns.filter((c) => !('omitted' in c.table) && (c.table.only || (compact && c.table.compact === null))).map((c) => c.key));
  for (const table of tables) {
    const may = json.filter((k) => !omitted.has(k));
    const must = may.filter((k) => !conditional(table.compact).has(k));
    expect(table.keys.filter((k) => !may.includes(k)), 'table columns JSON lacks, or declared omitted').toEqual([]);
    expect(must.filter((k) => !table.keys.includes(k)), 'JSON columns the table forgot').toEqual([]);
  }
}

const DAY = ['--from', '2024-09-10', '--to', '2024-09-10'];
const HOURS = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'];
const NARROW = { COLUMNS: '80' };

describe('stats, top, quota and userdb export show the same columns in JSON, CSV and the table', () => {
  it('stats by namespace: CSV has allocation_hours as JSON does; the table keeps to the resources, narrow without MHz-hours', () => {
    const cwd = withAi4osFixture();
    const stats = (format: string, env?: Record<string, string>) => run(['stats', ...DAY, '-o', format], { cwd, env }).stdout;
    const columns = statsColumns({ group_by: ['namespace'], period: { from: '', to: '', timezone: '', start: '', end: '' } });
    const json = jsonColumns(stats('json'), 'rows', columns);
    const csv = csvColumns(stats('csv'));
    const wide = tableColumns(stats('table'), columns);
    const narrow = tableColumns(stats('table', NARROW), columns);
    expect(csv).toEqual(['namespace', ...HOURS, 'allocation_hours', 'jobs', 'users', 'allocations', 'period_start', 'period_end', 'tz']);
    expect(wide).toEqual(['namespace', ...HOURS, 'jobs', 'users']);
    expect(narrow).toEqual(['namespace', 'cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'jobs', 'users']);
    expectAgreement(columns, json, csv, [
      { keys: wide, compact: false },
      { keys: narrow, compact: true },
    ]);
  });

  it('stats by namespace and user: user_name in JSON and CSV, in the User column of the table', () => {
    const cwd = withAi4osFixture();
    const stats = (format: string) => run(['stats', ...DAY, '--by', 'namespace,user', '-o', format], { cwd }).stdout;
    const columns = statsColumns({ group_by: ['namespace', 'user'], period: { from: '', to: '', timezone: '', start: '', end: '' } });
    const json = jsonColumns(stats('json'), 'rows', columns);
    const csv = csvColumns(stats('csv'));
    const table = tableColumns(stats('table'), columns);
    expect(csv.slice(0, 4)).toEqual(['namespace', 'user', 'user_name', 'cpu_hours']);
    expect(table).toEqual(['namespace', 'user', ...HOURS, 'jobs', 'users']);
    expectAgreement(columns, json, csv, [{ keys: table, compact: false }]);
  });

  it('top: names, job names, allocation ids and status in JSON and CSV; narrow tables drop Since, and Node when no allocation has one', () => {
    const cwd = withAi4osFixture();
    const top = (format: string, env?: Record<string, string>) => run(['top', '--now', '2024-09-12T19:00:00Z', '-o', format], { cwd, env }).stdout;
    const json = jsonColumns(top('json'), 'allocations', TOP_COLUMNS);
    const csv = csvColumns(top('csv'));
    const wide = tableColumns(top('table'), TOP_COLUMNS);
    const narrow = tableColumns(top('table', NARROW), TOP_COLUMNS);
    expect(csv).toEqual(['user', 'user_name', 'namespace', 'job_id', 'job_name', 'allocation', 'node', 'status', 'gpu', 'cpu_cores', 'memory_gib', 'since', 'held_seconds']);
    expect(wide).toEqual(['user', 'namespace', 'job_id', 'node', 'gpu', 'cpu_cores', 'memory_gib', 'since', 'held_seconds']);
    // The AI4OS legacy files name no node.
    expect(narrow).toEqual(['user', 'namespace', 'job_id', 'gpu', 'cpu_cores', 'memory_gib', 'held_seconds']);
    expectAgreement(TOP_COLUMNS, json, csv, [
      { keys: wide, compact: false },
      { keys: narrow, compact: true },
    ]);
  });

  it('quota report: remaining, source and policies in JSON and CSV only', () => {
    const cwd = quotaFolder();
    const quota = (format: string) => run(['quota', 'report', '--now', QUOTA_NOW, '-o', format], { cwd }).stdout;
    const json = jsonColumns(quota('json'), 'rows', QUOTA_REPORT_COLUMNS);
    const csv = csvColumns(quota('csv'));
    const table = tableColumns(quota('table'), QUOTA_REPORT_COLUMNS);
    expect(csv).toEqual(['user', 'groups', 'resource', 'window', 'unit', 'used', 'limit', 'remaining', 'percent', 'source', 'policies']);
    expect(table).toEqual(['user', 'groups', 'resource', 'window', 'used', 'limit', 'unit', 'percent']);
    expectAgreement(QUOTA_REPORT_COLUMNS, json, csv, [{ keys: table, compact: false }]);
  });

  it('quota check and show: the table of limits against JSON policies, Requested only with a request', () => {
    const cwd = quotaFolder();
    const quota = (args: string[], format: string) => run(['quota', ...args, '--now', QUOTA_NOW, '-o', format], { cwd }).stdout;
    const check = ['check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2'];
    const show = ['show', '--user', 'alice'];
    const json = jsonColumns(quota(check, 'json'), 'policies', POLICY_COLUMNS);
    expect(jsonColumns(quota(show, 'json'), 'policies', POLICY_COLUMNS).sort()).toEqual([...json].sort());
    const checked = tableColumns(quota(check, 'table'), POLICY_COLUMNS);
    const shown = tableColumns(quota(show, 'table'), POLICY_COLUMNS);
    expect(checked).toEqual(['resource', 'window', 'used', 'limit', 'unit', 'requested', 'remaining', 'percent', 'allowed', 'retry_at', 'policies']);
    expect(shown).toEqual(checked.filter((k) => k !== 'requested'));
    expectAgreement(POLICY_COLUMNS, json, null, [
      { keys: checked, compact: false },
      { keys: shown, compact: false },
    ]);
  });

  it('userdb export: JSON files users under their id, CSV has it as a column, and userdb show as a table', () => {
    const cwd = withAi4osFixture();
    expect(run(['userdb', 'import', join(FIXTURES, 'ai4os/user-db.json')], { cwd }).code).toBe(0);
    const json = jsonColumns(run(['userdb', 'export', '-o', 'json'], { cwd }).stdout, null, USERDB_COLUMNS);
    const csv = csvColumns(run(['userdb', 'export', '-o', 'csv'], { cwd }).stdout);
    const table = tableColumns(run(['userdb', 'show'], { cwd }).stdout, USERDB_COLUMNS);
    expect(csv).toEqual(['id', 'name', 'email', 'first_seen', 'last_seen', 'groups']);
    expect(table).toEqual(csv);
    expectAgreement(USERDB_COLUMNS, json, csv, [{ keys: table, compact: false }]);
  });
});
