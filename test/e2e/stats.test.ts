import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectGolden, FIXTURE_GAP, FIXTURES, run, tempDir, withAi4osFixture } from '../helpers/cli.js';

const PERIOD = ['--from', '2024-09-03', '--to', '2024-09-10'];

describe('hourmeter stats on the AI4OS fixture folder', () => {
  it('prints the table', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', ...PERIOD], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectGolden('stats --from 2024-09-03 --to 2024-09-10', r.stdout);
  });

  it('prints JSON', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    expectGolden('stats --from 2024-09-03 --to 2024-09-10 -o json', r.stdout);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(['period', 'coverage', 'method', 'group_by', 'rows', 'total', 'bounds', 'diagnostics']);
    expect(j.period).toEqual({ from: '2024-09-03', to: '2024-09-10', timezone: 'UTC', start: '2024-09-03T00:00:00.000000Z', end: '2024-09-11T00:00:00.000000Z' });
    // The estimate lies inside the sure band.
    for (const k of ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours']) {
      expect(j.bounds.low.total[k]).toBeLessThanOrEqual(j.total[k]);
      expect(j.total[k]).toBeLessThanOrEqual(j.bounds.high.total[k]);
    }
    // --json is an alias of -o json
    expect(run(['stats', ...PERIOD, '--json'], { cwd }).stdout).toBe(r.stdout);
  });

  it('CSV rows say their period and zone, and take --delimiter', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--from', '2024-09-04', '--to', '2024-09-04', '--tz', 'Europe/Madrid', '-o', 'csv', '--delimiter', ';'], { cwd });
    expect(r.code).toBe(0);
    const [head, first] = r.stdout.split('\n');
    expect(head).toBe('namespace;cpu_hours;gpu_hours;memory_gib_hours;disk_gib_hours;cpu_mhz_hours;allocation_hours;jobs;users;allocations;period_start;period_end;tz');
    // Madrid is UTC+2 in September: the day runs from 22:00 UTC the day before.
    expect(first!.split(';').slice(-3)).toEqual(['2024-09-03T22:00:00.000000Z', '2024-09-04T22:00:00.000000Z', 'Europe/Madrid']);
  });

  it('nests groups in CSV', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--from', '2024-09-10', '--to', '2024-09-10', '--by', 'namespace,user', '-o', 'csv'], { cwd });
    expect(r.code).toBe(0);
    expectGolden('stats --from 2024-09-10 --to 2024-09-10 --by namespace,user -o csv', r.stdout);
  });

  it('uses days of another time zone, and narrow terminals get the compact table', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--from', '2024-09-04', '--to', '2024-09-04', '--tz', 'Europe/Madrid'], { cwd, env: { COLUMNS: '80' } });
    expect(r.code).toBe(0);
    expectGolden('stats --from 2024-09-04 --to 2024-09-04 --tz Europe-Madrid (COLUMNS=80)', r.stdout);
  });

  it('keeps the JSON shape when the period has no data', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--from', '2030-01-01', '--to', '2030-01-01', '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.rows).toEqual([]);
    expect(j.total).toEqual({ cpu_hours: 0, cpu_mhz_hours: 0, gpu_hours: 0, memory_gib_hours: 0, disk_gib_hours: 0, allocation_hours: 0, jobs: 0, users: 0, allocations: 0 });
    expect(j.bounds.low).toEqual({ rows: [], total: j.total });
    expect(Object.keys(j.diagnostics)).toEqual(['snapshots', 'first_snapshot', 'last_snapshot', 'largest_gap_hours', 'gap_policy', 'gc_window_hours', 'failed_scopes', 'open', 'vanished', 'skipped']);
  });

  it('defaults to the first and the last snapshot day, and reads settings from hourmeter.yaml', () => {
    const cwd = withAi4osFixture();
    const all = JSON.parse(run(['stats', '-o', 'json'], { cwd }).stdout);
    expect(all.period).toMatchObject({ from: '2024-09-01', to: '2024-09-12' });
    writeFileSync(join(cwd, 'hourmeter.yaml'), 'from: 2024-09-03\nto: 2024-09-10\noutput: json\n');
    const viaConfig = JSON.parse(run(['stats'], { cwd }).stdout);
    expect(viaConfig.period).toMatchObject({ from: '2024-09-03', to: '2024-09-10' });
    // a flag beats the config file, also between -o and its alias --json
    expect(JSON.parse(run(['stats', '--to', '2024-09-04'], { cwd }).stdout).period.to).toBe('2024-09-04');
    expect(run(['stats', '-o', 'csv'], { cwd }).stdout.split('\n')[0]).toBe('namespace,cpu_hours,gpu_hours,memory_gib_hours,disk_gib_hours,cpu_mhz_hours,allocation_hours,jobs,users,allocations,period_start,period_end,tz');
    expect(run(['stats', '--json', '-o', 'csv'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: use just one of -o csv and --json\n' });
    // Two -o flags are refused too: the second would otherwise win in silence.
    expect(run(['stats', '-o', 'json', '-o', 'csv'], { cwd })).toMatchObject({ code: 2, stdout: '', stderr: 'hourmeter: use just one of -o json and -o csv\n' });
    writeFileSync(join(cwd, 'hourmeter.yaml'), 'from: 2024-09-03\nto: 2024-09-10\njson: true\n');
    expect(run(['stats', '-o', 'csv'], { cwd }).stdout.startsWith('namespace,')).toBe(true);
    // One file serves every command: a key only another command has is no error for stats
    // (hourmeter loads just the command it runs, but all of them when a config file is read).
    writeFileSync(join(cwd, 'shared.yaml'), 'from: 2024-09-03\nto: 2024-09-10\nsummaries: out\nmax-age: 2h\n');
    expect(JSON.parse(run(['stats', '--config', 'shared.yaml', '-o', 'json'], { cwd }).stdout).period.from).toBe('2024-09-03');
    writeFileSync(join(cwd, 'shared.yaml'), 'from: 2024-09-03\nsummarise: out\n');
    expect(run(['stats', '--config', 'shared.yaml'], { cwd })).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown setting "summarise"') });
  });
});

describe('hourmeter stats --method ai4os', () => {
  it('equals the original usage_stats output, integer for integer', () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--method', 'ai4os', ...PERIOD, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(FIXTURES, 'ai4os/expected-usage-stats.json'), 'utf8')));
  });
  it("prints the original's tables", () => {
    const cwd = withAi4osFixture();
    const r = run(['stats', '--method', 'ai4os', ...PERIOD], { cwd });
    expect(r.stdout).toBe(readFileSync(join(FIXTURES, 'ai4os/expected-usage-stats.txt'), 'utf8'));
  });
  it('refuses --tz, --by and native files with exit 2', () => {
    const cwd = withAi4osFixture();
    expect(run(['stats', '--method', 'ai4os', '--tz', 'Europe/Madrid'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --method ai4os is UTC only (as the original): drop --tz\n' });
    expect(run(['stats', '--method', 'ai4os', '--by', 'user'], { cwd }).code).toBe(2);
    writeFileSync(join(cwd, 'snapshots', '2024-09-13T00:00:00Z.json'), JSON.stringify(nativeDoc('2024-09-13T00:00:00Z', [])));
    const r = run(['stats', '--method', 'ai4os'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2024-09-13T00:00:00Z.json is a native snapshot; use --method exact/);
  });
});

function nativeDoc(at: string, allocations: unknown[]) {
  return {
    format: 'hourmeter.snapshot',
    version: 1,
    captured_at: at,
    finished_at: at,
    source: { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' },
    scope: { requested: ['*'], namespaces: ['ai4eosc'], failed: [] },
    allocations,
    queued: [],
  };
}

describe('errors: one line naming the flag or file, with the exit code', () => {
  const usage: [string, string[], RegExp][] = [
    ['an impossible date', ['--from', '2025-02-30', '--to', '2025-03-01'], /^hourmeter: --from 2025-02-30 is not a real calendar date \(February has no day 30\): pick an existing day\n$/],
    ['--from after --to', ['--from', '2024-09-05', '--to', '2024-09-04'], /^hourmeter: --from 2024-09-05 is after --to 2024-09-04/],
    ['an unknown time zone', ['--tz', 'Europe/Atlantis'], /^hourmeter: --tz "Europe\/Atlantis" is not a known IANA time zone: use e.g. UTC or Europe\/Madrid\n$/],
    ['a missing folder', ['--snapshots', 'nowhere'], /^hourmeter: --snapshots nowhere: no such folder; point --snapshots at the folder that holds the snapshot files\n$/],
    ['an unknown --by key', ['--by', 'planet'], /^hourmeter: --by "planet": group by one of cluster, namespace, user, group, component, job/],
    ['a bad --gc-window', ['--gc-window', 'soon'], /^hourmeter: --gc-window "soon" is not a duration/],
    ['a year before 1970', ['--from', '0050-01-01', '--to', '2024-09-01'], /^hourmeter: --from 0050-01-01 is before 1970/],
    ['--from alone after the last snapshot day', ['--from', '2030-01-01'], /^hourmeter: --from 2030-01-01 is after the last snapshot day 2024-09-12: give --to as well/],
    ['--method ai4os with --gap-policy', ['--method', 'ai4os', '--gap-policy', 'next'], /^hourmeter: --method ai4os has no gap-policy/],
  ];
  for (const [name, args, message] of usage) {
    for (const strict of [false, true]) {
      it(`${name}${strict ? ' (--strict)' : ''}: exit 2`, () => {
        const cwd = withAi4osFixture();
        const r = run(['stats', ...args, ...(strict ? ['--strict'] : [])], { cwd });
        expect(r.code).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(message);
      });
    }
  }

  it('a bad date in the config file is named by its key, not by the flag', () => {
    const cwd = withAi4osFixture();
    writeFileSync(join(cwd, 'hourmeter.yaml'), 'from: 2024-02-30\n');
    expect(run(['stats'], { cwd })).toMatchObject({ code: 2, stdout: '', stderr: 'hourmeter: hourmeter.yaml: from 2024-02-30 is not a real calendar date (February has no day 30): pick an existing day\n' });
    writeFileSync(join(cwd, 'hourmeter.yaml'), 'from: 2024-09-05\nto: 2024-09-04\n');
    expect(run(['summarize'], { cwd }).stderr).toBe('hourmeter: hourmeter.yaml: from 2024-09-05 is after hourmeter.yaml: to 2024-09-04: the period runs from the first day to the last, both included\n');
    // A flag still names the flag, and beats the file.
    expect(run(['stats', '--to', '2024-09-40'], { cwd }).stderr).toBe('hourmeter: --to 2024-09-40 is not a real calendar date (September has no day 40): pick an existing day\n');
  });

  it('an empty folder: exit 2', () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'snapshots'));
    const r = run(['stats'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('hourmeter: --snapshots snapshots holds no snapshot files (*.json named by capture time); run `hourmeter snapshot` first or point --snapshots elsewhere\n');
  });

  const broken: [string, string, string, RegExp][] = [
    ['a corrupt or truncated JSON file', '2024-09-05T12:00:11.json', '{"ai4eosc": [{"job_ID": "x", "sta', /skipped 2024-09-05T12:00:11.json: corrupt or truncated JSON \(/],
    ['an unknown file format', '2024-09-05T12:00:11.json', '[1, 2, 3]', /skipped 2024-09-05T12:00:11.json: unknown file format \(/],
    ['an unsupported native version', '2024-09-05T12:00:11Z.json', '{"format": "hourmeter.snapshot", "version": 9}', /skipped 2024-09-05T12:00:11Z\.json: unsupported snapshot version \(version 9: this hourmeter reads version 1; upgrade hourmeter\)/],
    ['a native file without scope.namespaces', '2024-09-05T12:00:11Z.json', '{"format":"hourmeter.snapshot","version":1,"captured_at":"2024-09-05T12:00:11Z","scope":{},"allocations":[]}', /skipped 2024-09-05T12:00:11Z\.json: unknown file format \(a native snapshot needs "allocations" and "scope\.namespaces" lists\)/],
    ['a record missing fields', '2024-09-05T12:00:11.json', '{"ai4eosc": [{"status": "running", "resources": {}}]}', /skipped 1 record in 2024-09-05T12:00:11.json: job null in ai4eosc lacks job_ID, status or resources/],
  ];
  for (const [name, file, content, warning] of broken) {
    it(`${name}: skipped with a warning (exit 0), fails under --strict (exit 3)`, () => {
      const cwd = withAi4osFixture();
      writeFileSync(join(cwd, 'snapshots', file), content);
      const lenient = run(['stats', ...PERIOD, '-o', 'json'], { cwd });
      expect(lenient.code).toBe(0);
      expect(lenient.stderr).toMatch(new RegExp(`^hourmeter: warning: ${warning.source}`));
      // The one warning about the file, then the period's missed day (the fixture's own gap).
      expect(lenient.stderr.trim().split('\n').slice(1)).toEqual([`hourmeter: warning: ${FIXTURE_GAP}`]);
      expect(JSON.parse(lenient.stdout).diagnostics.skipped).toHaveLength(1);
      const strict = run(['stats', ...PERIOD, '--strict'], { cwd });
      expect(strict.code).toBe(3);
      expect(strict.stdout).toBe('');
      expect(strict.stderr).toMatch(new RegExp(`^hourmeter: ${file.replace('.', '\\.')}: `));
      expect(strict.stderr.trim().split('\n')).toHaveLength(1);
    });
  }
});
