import { appendFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

/**
 * Watchers' journals through the index, as operators meet them: `stats` from the index
 * gives byte for byte what `stats --no-index` gives, and the index reads only the journal
 * lines written since its last ingest.
 */

const SOURCE = 'nomad-127.0.0.1-4646';
const JOURNAL = `journal/${SOURCE}`;
const DAY = ['--from', '2026-11-05', '--to', '2026-11-05'];

interface Alloc {
  id: string;
  user: string;
  status: string;
  start: string;
  end: string | null;
  cores: number;
}

const record = (a: Alloc) => ({
  id: a.id, namespace: 'default', job_id: `job-${a.id}`, job_name: null, user: a.user, group: null, component: null, node: 'n1',
  status: a.status, created: null, start: a.start, end: a.end, modified: a.end ?? a.start,
  resources: { cpu_cores: a.cores, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
});

function snapshot(cwd: string, at: string, allocs: Alloc[]): void {
  const doc = {
    format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
    source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' },
    scope: { requested: ['*'], namespaces: ['default'], failed: [] },
    allocations: allocs.map(record), queued: [],
  };
  writeFileSync(join(cwd, 'snapshots', `${at}.json`), JSON.stringify(doc));
}

const us = (t: string) => t.replace('Z', '.000000Z');
const header = (at: string) => ({ type: 'journal', at: us(at), format: 'hourmeter.journal', version: 1, source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' } });
const change = (at: string, index: number, a: Alloc) => ({ type: 'allocation', at: us(at), index, event: 'AllocationUpdated', allocation: record(a) });
const alive = (at: string, index: number) => ({ type: 'alive', at: us(at), index });
const text = (lines: object[]) => lines.map((l) => JSON.stringify(l) + '\n').join('');

const a1 = { id: 'a1', user: 'alice', status: 'running', start: '2026-11-05T09:00:00Z', end: null, cores: 2 };
const a2 = { id: 'a2', user: 'bob', status: 'running', start: '2026-11-05T09:30:00Z', end: null, cores: 1 };
const a3 = { id: 'a3', user: 'alice', status: 'running', start: '2026-11-05T10:30:00Z', end: null, cores: 4 };

/**
 * A cron snapshot at 10:00, a watcher that lists the cluster at 10:05 (its resync file) and
 * journals the end of a2 (10:20), the start of a3 (10:30), a cron snapshot at 11:00, then the
 * end of a1 (11:10) and a heartbeat at 11:30, in two hourly files.
 */
function folder(): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots', JOURNAL), { recursive: true });
  snapshot(cwd, '2026-11-05T10:00:00Z', [a1, a2]);
  snapshot(cwd, '2026-11-05T10:05:00Z', [a1, a2]);
  snapshot(cwd, '2026-11-05T11:00:00Z', [a1, a3, { ...a2, status: 'complete', end: '2026-11-05T10:20:00Z' }]);
  writeFileSync(join(cwd, 'snapshots', JOURNAL, '2026-11-05T10Z.jsonl'), text([
    header('2026-11-05T10:04:59Z'),
    { type: 'connected', at: us('2026-11-05T10:04:59Z') },
    { type: 'resynchronised', at: us('2026-11-05T10:05:00Z'), index: 10, snapshot: '2026-11-05T10:05:00Z.json', namespaces: ['default'] },
    change('2026-11-05T10:20:00Z', 11, { ...a2, status: 'complete', end: '2026-11-05T10:20:00Z' }),
    change('2026-11-05T10:30:00Z', 12, a3),
    alive('2026-11-05T10:45:00Z', 12),
  ]));
  writeFileSync(join(cwd, 'snapshots', JOURNAL, '2026-11-05T11Z.jsonl'), text([
    header('2026-11-05T11:00:00Z'),
    change('2026-11-05T11:10:00Z', 13, { ...a1, status: 'complete', end: '2026-11-05T11:10:00Z' }),
    alive('2026-11-05T11:30:00Z', 13),
  ]));
  return cwd;
}

/** The report from the index, checked equal to the one without it; returns it parsed. */
function stats(cwd: string, by: string[] = []): { rows: Record<string, unknown>[]; total: Record<string, unknown> } {
  const args = ['stats', ...DAY, ...by, '-o', 'json'];
  const indexed = run(args, { cwd });
  expect(indexed.code).toBe(0);
  const direct = run([...args, '--no-index'], { cwd });
  expect(direct.code).toBe(0);
  expect(indexed.stdout).toBe(direct.stdout);
  return JSON.parse(indexed.stdout) as { rows: Record<string, unknown>[]; total: Record<string, unknown> };
}

const lastIngest = (cwd: string) => (JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout) as { last_ingest: Record<string, unknown>; journals: unknown }).last_ingest;
const journals = (cwd: string) => (JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout) as { journals: unknown }).journals;
const cpuHours = (report: { rows: Record<string, unknown>[] }, user: string) => report.rows.find((r) => r.user === user)?.cpu_hours;

describe('journals in the index', () => {
  it('stats from the index equals stats --no-index on snapshots and a journal, by namespace and user', () => {
    const cwd = folder();
    const byUser = stats(cwd, ['--by', 'namespace,user']);
    // a1: 09:00 to its end at 11:10, 2 cores; a2: 09:30 to 10:20, 1 core; a3: from 10:30,
    // 4 cores, holding at the watcher's last line (11:30).
    expect(cpuHours(byUser, 'alice')).toBeCloseTo(2 * (130 / 60) + 4 * 1, 9);
    expect(cpuHours(byUser, 'bob')).toBeCloseTo(50 / 60, 9);
    stats(cwd);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'append', files: 3, lines: 7 });
    expect(journals(cwd)).toEqual({ files: 2, lines: 9 });
  });

  it('reads only the lines appended since the last ingest, and still equals --no-index', () => {
    const cwd = folder();
    stats(cwd, ['--by', 'user']);
    // a3 ends at 11:40; the watcher is heard at 11:50.
    appendFileSync(join(cwd, 'snapshots', JOURNAL, '2026-11-05T11Z.jsonl'), text([change('2026-11-05T11:40:00Z', 14, { ...a3, status: 'complete', end: '2026-11-05T11:40:00Z' }), alive('2026-11-05T11:50:00Z', 14)]));
    const after = stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'append', files: 0, lines: 2, reason: null });
    expect(cpuHours(after, 'alice')).toBeCloseTo(2 * (130 / 60) + 4 * (70 / 60), 9);
    // Nothing new: nothing read.
    expect(run(['index', 'update'], { cwd }).stdout).toBe('index is up to date: no new snapshot files\n');

    // A cron snapshot after the lines, then a line after it: both appended.
    snapshot(cwd, '2026-11-05T12:00:00Z', [{ ...a1, status: 'complete', end: '2026-11-05T11:10:00Z' }]);
    writeFileSync(join(cwd, 'snapshots', JOURNAL, '2026-11-05T12Z.jsonl'), text([header('2026-11-05T12:00:01Z'), alive('2026-11-05T12:10:00Z', 14)]));
    const up = run(['index', 'update'], { cwd });
    expect(up.stdout).toMatch(/^read 1 snapshot files and 1 journal lines, /);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'append', files: 1, lines: 1 });
    stats(cwd, ['--by', 'namespace,user']);
  });

  it('starts the fold over when a journal file shrank or changed, or a line or a file falls before what was folded', () => {
    const cwd = folder();
    stats(cwd, ['--by', 'user']);
    const eleven = join(cwd, 'snapshots', JOURNAL, '2026-11-05T11Z.jsonl');
    const whole = readFileSync(eleven);
    // The last line (alive at 11:30) is cut off: a3 is then seen holding up to a1's end only.
    const cut = whole.length - text([alive('2026-11-05T11:30:00Z', 13)]).length;
    truncateSync(eleven, cut);
    const shrunk = stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'rebuild', reason: `journal file ${JOURNAL}/2026-11-05T11Z.jsonl shrank (${whole.length} to ${cut} bytes)` });
    expect(cpuHours(shrunk, 'alice')).toBeCloseTo(2 * (130 / 60) + 4 * (40 / 60), 9);

    // Rewritten: a space in the header moves every line; the file is one byte longer.
    const ten = join(cwd, 'snapshots', JOURNAL, '2026-11-05T10Z.jsonl');
    writeFileSync(ten, readFileSync(ten, 'utf8').replace('{"type":"journal"', '{ "type":"journal"'));
    stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'rebuild', reason: `journal file ${JOURNAL}/2026-11-05T10Z.jsonl changed before the part already read` });

    // A snapshot file whose time falls before journal lines already folded (11:10).
    snapshot(cwd, '2026-11-05T11:05:00Z', [a1, a3]);
    stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'rebuild', reason: `2026-11-05T11:05:00Z.json falls before journal lines of ${SOURCE} already ingested` });

    // A line before the last snapshot file (11:05 is folded; the source's last line is at 11:10, so its key is 11:10).
    snapshot(cwd, '2026-11-05T12:00:00Z', [a3]);
    stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'append', files: 1 });
    appendFileSync(eleven, text([alive('2026-11-05T11:55:00Z', 14)]));
    stats(cwd, ['--by', 'user']);
    expect(lastIngest(cwd)).toMatchObject({ mode: 'rebuild', reason: `journal lines of ${SOURCE} from 2026-11-05T11:55:00.000000Z fall before the last ingested snapshot` });
  });
});
