import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import { BIN, run, runAsync, tempDir, type RunResult } from '../helpers/cli.js';
import { hubSnapshot } from '../helpers/monthly-folder.js';

/**
 * The snapshot folder as a file system: symbolic links, files that cannot be read for a
 * while, and the temp files of a killed `snapshot`.
 *
 * The history (UTC, namespace hub): a snapshot every 6 h from 2024-09-01T00:00 to
 * 09-03T00:00 (9 files). alice runs 1 core and 1 GiB from 09-01T00:00 to the end; bob runs
 * `bobCores` cores and 1 GiB from 09-02T00:00, listed from that day's snapshots on. Both
 * are still running at the last snapshot, so on 09-01..09-02 alice has 48 CPU-hours and
 * 48 GiB-hours, bob 24 h at his cores and 24 GiB-hours.
 */

const PERIOD = ['--from', '2024-09-01', '--to', '2024-09-02', '--by', 'user'];
const OLD = new Date('2026-01-01T00:00:00Z');
const HOURS = [0, 6, 12, 18, 24, 30, 36, 42, 48];

const timeAt = (h: number) => new Date(Date.parse('2024-09-01T00:00:00Z') + h * 3_600_000).toISOString().slice(0, 19) + 'Z';
const fileAt = (h: number) => `${timeAt(h)}.json`;

const alloc = (id: string, user: string, cores: number, start: string) => ({
  id, namespace: 'hub', job_id: `job-${id}`, job_name: `nb-${id}`, user, group: null, component: 'jupyter',
  node: 'n1', status: 'running', created: null, start, end: null, modified: null,
  resources: { cpu_cores: cores, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
});

/** The snapshot at hour `h`; `carol` adds a 4-core allocation listed in this file only. */
function snapshotText(h: number, opts: { bobCores?: number; carol?: boolean } = {}): string {
  const allocations = [alloc('a', 'alice', 1, '2024-09-01T00:00:00Z')];
  if (h >= 24) allocations.push(alloc('b', 'bob', opts.bobCores ?? 2, '2024-09-02T00:00:00Z'));
  if (opts.carol) allocations.push(alloc('c', 'carol', 4, '2024-09-01T07:00:00Z'));
  return JSON.stringify(hubSnapshot(timeAt(h), allocations));
}

/** User, CPU-hours and memory GiB-hours per row, and the number of snapshots read. */
function usage(r: RunResult): { rows: [string, number, number][]; snapshots: number } {
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { rows: { user: string; cpu_hours: number; memory_gib_hours: number }[]; diagnostics: { snapshots: number } };
  return { rows: out.rows.map((x) => [x.user, x.cpu_hours, x.memory_gib_hours]), snapshots: out.diagnostics.snapshots };
}

const ALL = { rows: [['alice', 48, 48], ['bob', 48, 24]] as [string, number, number][], snapshots: 9 };

/** stats from the index and from the files: both must say the same. */
function bothWays(cwd: string, expected: { stdout: typeof ALL; stderr: string }): void {
  for (const extra of [[], ['--no-index']]) {
    const r = run(['stats', ...PERIOD, '-o', 'json', ...extra], { cwd });
    expect({ usage: usage(r), stderr: r.stderr, way: extra }).toEqual({ usage: expected.stdout, stderr: expected.stderr, way: extra });
  }
}

/**
 * Gives the folders an old mtime and lets the index record it: a report then trusts that
 * nothing moved in them and skips listing them (a recent mtime is never trusted).
 */
function settle(cwd: string, folders: string[]): void {
  for (const f of folders) utimesSync(f, OLD, OLD);
  expect(run(['index', 'update'], { cwd })).toMatchObject({ code: 0, stderr: expect.any(String) });
}

describe('symbolic links in the snapshot folder', () => {
  it('linked folders and files are followed, each counted once, with the index and without', () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    mkdirSync(join(dir, 'day1'), { recursive: true });
    mkdirSync(join(cwd, 'elsewhere', 'day2'), { recursive: true });
    mkdirSync(join(cwd, 'last'));
    for (const h of HOURS.slice(0, 4)) writeFileSync(join(dir, 'day1', fileAt(h)), snapshotText(h));
    for (const h of HOURS.slice(4, 8)) writeFileSync(join(cwd, 'elsewhere', 'day2', fileAt(h)), snapshotText(h));
    writeFileSync(join(cwd, 'last', fileAt(48)), snapshotText(48));
    // A linked folder, a second link to it, a link back to an ancestor, a linked file, and a
    // second link to a file already listed: 9 distinct files.
    symlinkSync('../elsewhere/day2', join(dir, 'day2'));
    symlinkSync(join(cwd, 'elsewhere', 'day2'), join(dir, 'day2-again'));
    symlinkSync('..', join(dir, 'day1', 'up'));
    symlinkSync(`../last/${fileAt(48)}`, join(dir, fileAt(48)));
    mkdirSync(join(dir, 'aliases'));
    symlinkSync(`../day1/${fileAt(0)}`, join(dir, 'aliases', fileAt(0)));
    bothWays(cwd, { stdout: ALL, stderr: '' });
    const status = JSON.parse(run(['index', 'status', '--json'], { cwd }).stdout) as { snapshots: { catalogued: number } };
    expect(status.snapshots.catalogued).toBe(9);
  });

  it('a dangling link is named in a warning, and read once its target appears', () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    mkdirSync(dir);
    mkdirSync(join(cwd, 'later'));
    for (const h of HOURS.slice(0, 8)) writeFileSync(join(dir, fileAt(h)), snapshotText(h));
    symlinkSync(`../later/${fileAt(48)}`, join(dir, fileAt(48)));
    const warning = `hourmeter: warning: ignored ${fileAt(48)}: a symbolic link to ../later/${fileAt(48)}, which does not resolve (ENOENT); restore its target or remove the link\n`;
    // Up to the last readable snapshot, 09-02T18:00: alice 42 h, bob 18 h at 2 cores.
    const partial = { rows: [['alice', 42, 42], ['bob', 36, 18]] as [string, number, number][], snapshots: 8 };
    bothWays(cwd, { stdout: partial, stderr: warning });
    settle(cwd, [dir, join(cwd, 'later')]);
    // Its target appears: no folder of the snapshot folder moves, and the report still sees it.
    writeFileSync(join(cwd, 'later', fileAt(48)), snapshotText(48));
    bothWays(cwd, { stdout: ALL, stderr: '' });
  });

  it('a report notices a file added to a linked folder, and a linked file replaced, after an ingest', () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    const day2 = join(cwd, 'elsewhere', 'day2');
    mkdirSync(dir);
    mkdirSync(day2, { recursive: true });
    mkdirSync(join(cwd, 'last'));
    for (const h of HOURS.slice(0, 4)) writeFileSync(join(dir, fileAt(h)), snapshotText(h));
    for (const h of HOURS.slice(4, 7)) writeFileSync(join(day2, fileAt(h)), snapshotText(h));
    writeFileSync(join(cwd, 'last', fileAt(48)), snapshotText(48));
    symlinkSync('../elsewhere/day2', join(dir, 'day2'));
    symlinkSync(`../last/${fileAt(48)}`, join(dir, fileAt(48)));
    const folders = [dir, day2, join(cwd, 'last')];
    // 09-02T18:00 is missing: bob is counted from the files around it, the same hours.
    bothWays(cwd, { stdout: { ...ALL, snapshots: 8 }, stderr: '' });

    settle(cwd, folders);
    writeFileSync(join(day2, fileAt(42)), snapshotText(42));
    bothWays(cwd, { stdout: ALL, stderr: '' });

    // The linked file's target replaced by a rename, as an atomic write does: bob had 4 cores at the last snapshot.
    settle(cwd, folders);
    writeFileSync(join(cwd, 'new.json'), snapshotText(48, { bobCores: 4 }));
    renameSync(join(cwd, 'new.json'), join(cwd, 'last', fileAt(48)));
    bothWays(cwd, { stdout: { rows: [['alice', 48, 48], ['bob', 96, 24]], snapshots: 9 }, stderr: '' });
  });
});

/**
 * Root reads any file whatever its mode, so the unreadable file is made real by running the
 * CLI as `nobody` (with setpriv) on a folder open to it; a file of root's with mode 000 is
 * then refused with EACCES, as on a production host.
 */
const asNobody = (args: string[], cwd: string): RunResult => {
  const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: cwd, TZ: 'UTC', COLUMNS: '200', NO_COLOR: '1', LANG: 'C.UTF-8' },
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};
const canDropRoot = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

describe.skipIf(!canDropRoot)('a file that could not be read', () => {
  it('is tried again on each ingest and read once it can be', () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    mkdirSync(dir);
    // carol (4 cores, 1 GiB, from 09-01T07:00) is listed at 12:00 only. Gone at 18:00, she
    // ended before 17:00 (native Nomad keeps an ended allocation listed for a 1 h GC
    // window): at the midpoint of 12:00 and 17:00, 14:30, so 7.5 h.
    for (const h of HOURS) writeFileSync(join(dir, fileAt(h)), snapshotText(h, { carol: h === 12 }));
    chmodSync(cwd, 0o777);
    chmodSync(dir, 0o777);
    const hidden = join(dir, fileAt(12));
    chmodSync(hidden, 0o000);
    const stats = (extra: string[] = []) => asNobody(['stats', ...PERIOD, '-o', 'json', ...extra], cwd);

    const first = stats();
    expect(usage(first)).toEqual({ ...ALL, snapshots: 8 });
    expect(first.stderr).toBe(
      `hourmeter: warning: skipped ${fileAt(12)}: unreadable file (EACCES: permission denied, open 'snapshots/${fileAt(12)}'); it is recorded in the index and read again once it can be read\n`,
    );
    // Still refused: tried, and nothing to do.
    expect(asNobody(['index', 'update'], cwd)).toMatchObject({ code: 0, stdout: 'index is up to date: no new snapshot files\n', stderr: '' });

    chmodSync(hidden, 0o644);
    const update = asNobody(['index', 'update'], cwd);
    expect(update.stderr).toBe('');
    expect(update.stdout).toMatch(new RegExp(`^read 9 snapshot files, .* \\(1 file readable again \\(${fileAt(12)}\\)\\)\\n$`));
    const withCarol = { rows: [['alice', 48, 48], ['bob', 48, 24], ['carol', 30, 7.5]] as [string, number, number][], snapshots: 9 };
    for (const extra of [[], ['--no-index']]) {
      const r = stats(extra);
      expect({ usage: usage(r), stderr: r.stderr }).toEqual({ usage: withCarol, stderr: '' });
    }
  });

  it('a sub-folder that could not be listed is listed again on each report and read once it can be', () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    const late = join(dir, 'late');
    mkdirSync(late, { recursive: true });
    for (const h of HOURS.slice(0, 8)) writeFileSync(join(dir, fileAt(h)), snapshotText(h));
    writeFileSync(join(late, fileAt(48)), snapshotText(48));
    chmodSync(cwd, 0o777);
    chmodSync(dir, 0o777);
    chmodSync(late, 0o700);
    const warning = 'hourmeter: warning: ignored the folder late: it cannot be listed (EACCES); its files are read once it can be\n';
    // Up to 09-02T18:00, as with the dangling link above.
    const partial = { rows: [['alice', 42, 42], ['bob', 36, 18]] as [string, number, number][], snapshots: 8 };
    for (const extra of [[], ['--no-index']]) {
      const r = asNobody(['stats', ...PERIOD, '-o', 'json', ...extra], cwd);
      expect({ usage: usage(r), stderr: r.stderr }).toEqual({ usage: partial, stderr: warning });
    }
    // Old mtimes, recorded by the index: nothing moves when the folder opens (chmod changes no mtime).
    for (const f of [dir, late]) utimesSync(f, OLD, OLD);
    expect(asNobody(['index', 'update'], cwd)).toMatchObject({ code: 0, stderr: warning });
    chmodSync(late, 0o755);
    for (const extra of [[], ['--no-index']]) {
      const r = asNobody(['stats', ...PERIOD, '-o', 'json', ...extra], cwd);
      expect({ usage: usage(r), stderr: r.stderr }).toEqual({ usage: ALL, stderr: '' });
    }
  });
});

describe('temp files of a killed snapshot', () => {
  const TOKEN = 'feed-temp-files';
  const cluster = createCluster({ seed: 5, days: 2, intervalMinutes: 60, targetConcurrent: 40 });
  const capturedAt = new Date(cluster.snapshots[10]!.timeUs / 1000).toISOString();
  let fake: FakeNomad;
  beforeAll(async () => {
    fake = await startFakeNomad({ cluster, token: TOKEN, now: cluster.snapshots[10]!.timeUs });
  });
  afterAll(async () => fake.close());

  it('the next snapshot removes those whose writer is gone; a report never reads them', async () => {
    const cwd = withHistory();
    const dir = join(cwd, 'snapshots');
    const state = join(dir, '.hourmeter');
    mkdirSync(state);
    mkdirSync(join(cwd, 'userdb'));
    // The pid of a process that has exited: a run killed with -9 leaves its temp files so.
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const live = process.pid;
    // Named as writeNewFile and replaceFile name them: .<final name>.<pid>.tmp, beside the final name.
    const leftovers = [join(dir, `.${fileAt(54)}.${gone}.tmp`), join(dir, `.${fileAt(60)}.gz.${gone}.tmp`), join(state, `.nomad-meta-cache.json.${gone}.tmp`), join(cwd, 'userdb', `.users.json.${gone}.tmp`)];
    // A complete snapshot file under a temp name: were it read, bob would have 9 cores.
    for (const f of leftovers) writeFileSync(f, snapshotText(54, { bobCores: 9 }));
    // Kept: a write of a live process, still recent; another program's temp file; a temp name hourmeter never writes there.
    const kept = [join(dir, `.${fileAt(66)}.${live}.tmp`), join(dir, `.notes.txt.${gone}.tmp`), join(state, `.index.sqlite.${gone}.tmp`)];
    for (const f of kept) writeFileSync(f, snapshotText(66, { bobCores: 9 }));
    // A live pid's temp file older than an hour: the pid was reused; the file is left over too.
    const stale = join(dir, `.${fileAt(72)}.${live}.tmp`);
    writeFileSync(stale, '{');
    utimesSync(stale, OLD, new Date(Date.now() - 2 * 3_600_000));

    bothWays(cwd, { stdout: ALL, stderr: '' });

    const r = await runAsync(['snapshot', '--now', capturedAt], { cwd, env: { NOMAD_ADDR: fake.url, NOMAD_TOKEN: TOKEN } });
    expect(r.code).toBe(0);
    const removed = [...leftovers, stale].map((f) => `hourmeter: warning: removed ${f.slice(cwd.length + 1)}, a temp file left by an interrupted run`);
    expect(r.stderr.split('\n').filter(Boolean).sort()).toEqual(removed.sort());
    for (const f of [...leftovers, stale]) expect(existsSync(f)).toBe(false);
    for (const f of kept) expect(existsSync(f)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.startsWith('.') && n !== '.hourmeter').sort()).toEqual(kept.filter((f) => f.startsWith(`${dir}/.`) && !f.startsWith(state)).map((f) => f.slice(dir.length + 1)).sort());
  });
});

/** The 9-file history in ./snapshots of a new temp folder. */
function withHistory(): string {
  const cwd = tempDir();
  mkdirSync(join(cwd, 'snapshots'));
  for (const h of HOURS) writeFileSync(join(cwd, 'snapshots', fileAt(h)), snapshotText(h));
  return cwd;
}
