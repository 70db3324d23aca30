import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, run, withAi4osFixture } from '../helpers/cli.js';

/**
 * A filter value that no allocation in the snapshots carries (a typo, most often) gets a
 * warning naming the closest known value; the report is printed as before, exit 0.
 * Namespaces in the AI4OS fixture: ai4eosc, ai4life, imagine. No job has a group.
 */

/** The filter warnings of a run's stderr (other warnings, about gaps say, are not these tests' business). */
const filterWarnings = (stderr: string) => stderr.split('\n').filter((l) => l.includes(' matches nothing '));
const warning = (line: string) => `hourmeter: warning: ${line}`;

/** The users of the fixture that held resources: owners of a job that started (a job only ever "starting" never did). */
function usersThatRan(): Set<string> {
  const dir = join(FIXTURES, 'ai4os/snapshots');
  const users = new Set<string>();
  for (const f of readdirSync(dir)) {
    const doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, { owner: string; status: string; alloc_start: string | null }[]>;
    for (const jobs of Object.values(doc)) for (const j of jobs) if (j.alloc_start && ['running', 'dead', 'down'].includes(j.status)) users.add(j.owner);
  }
  return users;
}

const USER = '596775f7730e40d64727ce9b7b3d20ec758e05690f652e177de1c5c4b58ff031@egi.eu';
/** Listed once, in a 2024-09-01 file, and never again. */
const EARLY_USER = '88d9696fdd46eb006d2240a3789c3f18cf84d3f5a03534df2ab81e2e9e217385@egi.eu';

for (const [label, extra] of [['from the index', []], ['with --no-index', ['--no-index']]] as const) {
  describe(`stats filters that match nothing, ${label}`, () => {
    it('--namespace ai4lfe: a warning naming ai4life; the report is the one without it', () => {
      const cwd = withAi4osFixture();
      const r = run(['stats', '--namespace', 'ai4lfe', '--namespace', 'imagine', '-o', 'csv', ...extra], { cwd });
      expect(r.code).toBe(0);
      expect(filterWarnings(r.stderr)).toEqual([warning('--namespace ai4lfe matches nothing in the snapshots; the closest namespace is ai4life')]);
      const alone = run(['stats', '--namespace', 'imagine', '-o', 'csv', ...extra], { cwd });
      expect(filterWarnings(alone.stderr)).toEqual([]);
      expect(r.stdout).toBe(alone.stdout);
      expect(r.stdout.split('\n')[1]).toMatch(/^imagine,/);
      // Case aside, it is the same name: still a warning, since filters match exactly.
      expect(filterWarnings(run(['stats', '--namespace', 'AI4Life', '-o', 'csv', ...extra], { cwd }).stderr)).toEqual([
        warning('--namespace AI4Life matches nothing in the snapshots; the closest namespace is ai4life'),
      ]);
    });

    it('--user nobody and --group x: no close value, or none at all; the empty report is printed', () => {
      const cwd = withAi4osFixture();
      const users = usersThatRan();
      expect(users.size).toBe(73);
      const r = run(['stats', '--user', 'nobody', '--group', 'x', '-o', 'json', ...extra], { cwd });
      expect(r.code).toBe(0);
      expect(filterWarnings(r.stderr)).toEqual([
        warning('--user nobody matches nothing in the snapshots, and none of the 73 users there is close to it; check the spelling'),
        warning('--group x matches nothing in the snapshots: no allocation there has a group'),
      ]);
      const j = JSON.parse(r.stdout);
      expect(j.rows).toEqual([]);
      expect(j.total.cpu_hours).toBe(0);
      // A user id without its @egi.eu: the full id is 7 edits away, a third of 64 is 22.
      const bare = USER.slice(0, -'@egi.eu'.length);
      expect(filterWarnings(run(['stats', '--user', bare, ...extra], { cwd }).stderr)).toEqual([warning(`--user ${bare} matches nothing in the snapshots; the closest user is ${USER}`)]);
    });

    it('filters that match something in the history give no warning, even with no usage in the period', () => {
      const cwd = withAi4osFixture();
      const r = run(['stats', '--namespace', 'ai4life', '--namespace', 'ai4eosc', '--user', USER, '--by', 'namespace,user', '-o', 'json', ...extra], { cwd });
      expect(filterWarnings(r.stderr)).toEqual([]);
      expect(JSON.parse(r.stdout).rows.length).toBeGreaterThan(0);
      // This user ran on 2024-09-01 only, and no snapshot is older than that day.
      for (const args of [
        ['--user', EARLY_USER, '--from', '2024-09-12', '--to', '2024-09-12'],
        ['--namespace', 'ai4life', '--from', '2024-08-01', '--to', '2024-08-02'],
      ]) {
        const quiet = run(['stats', ...args, '-o', 'json', ...extra], { cwd });
        expect(quiet.code).toBe(0);
        expect(filterWarnings(quiet.stderr)).toEqual([]);
        expect(JSON.parse(quiet.stdout).rows).toEqual([]);
      }
      expect(JSON.parse(run(['stats', '--user', EARLY_USER, '--from', '2024-09-01', '--to', '2024-09-01', '-o', 'json', ...extra], { cwd }).stdout).total.allocations).toBe(1);
    });
  });

  describe(`summarize --namespace that matches nothing, ${label}`, () => {
    it('warns once, naming the closest namespace, and writes the files asked for', () => {
      const cwd = withAi4osFixture();
      const r = run(['summarize', '--namespace', 'ai4lfe', '--namespace', 'imagine', '--from', '2024-09-03', '--to', '2024-09-04', '--quiet', ...extra], { cwd });
      expect(r.code).toBe(0);
      expect(filterWarnings(r.stderr)).toEqual([warning('--namespace ai4lfe matches nothing in the snapshots; the closest namespace is ai4life')]);
      expect(existsSync(join(cwd, 'summaries', 'imagine-full-agg.csv'))).toBe(true);
      expect(existsSync(join(cwd, 'summaries', 'ai4lfe-full-agg.csv'))).toBe(true);
      // The warning about an empty namespace is not repeated for it.
      expect(r.stderr).not.toContain('ai4lfe: ');
    });

    it('a known namespace without usage in the period is told as such, not as a typo', () => {
      const cwd = withAi4osFixture();
      const r = run(['summarize', '--namespace', 'ai4life', '--from', '2024-08-01', '--to', '2024-08-02', '--quiet', ...extra], { cwd });
      expect(r.code).toBe(0);
      expect(filterWarnings(r.stderr)).toEqual([]);
      expect(r.stderr).toContain(warning('ai4life: no allocation held resources and no snapshot covered it in 2024-08-01 to 2024-08-02, though it appears at other times in the snapshots'));
    });
  });
}

describe('filters with and without the index', () => {
  it('give the same rows: a full read looks filters up in a dictionary filled before the report', () => {
    const cwd = withAi4osFixture();
    const args = ['stats', '--namespace', 'imagine', '--namespace', 'ai4eosc', '--user', USER, '--by', 'namespace,user', '-o', 'csv'];
    const indexed = run(args, { cwd });
    expect(indexed.stdout.split('\n').filter((l) => l.includes(USER)).length).toBeGreaterThan(0);
    expect(run([...args, '--no-index'], { cwd }).stdout).toBe(indexed.stdout);
  });
});

describe('top --namespace that matches nothing', () => {
  it('warns about a name the latest snapshot does not hold, naming the closest one there', () => {
    const cwd = withAi4osFixture();
    const r = run(['top', '--namespace', 'imagin', '--now', '2024-09-12T19:00:00Z'], { cwd });
    expect(r.code).toBe(0);
    expect(filterWarnings(r.stderr)).toEqual([warning('--namespace imagin matches nothing in the latest snapshot, 2024-09-12T18:01:20.json; the closest namespace is imagine')]);
    expect(r.stdout).toMatch(/^Snapshot 2024-09-12T18:01:20Z \(2024-09-12T18:01:20\.json\), 58m old: 0 allocations holding resources in imagin\n/);
    expect(filterWarnings(run(['top', '--namespace', 'ai4life', '--namespace', 'imagine', '--now', '2024-09-12T19:00:00Z'], { cwd }).stderr)).toEqual([]);
  });

  it('says nothing about a namespace the latest snapshot lists with nothing running', () => {
    const cwd = withAi4osFixture();
    // 2024-09-12T06:01:41 lists ai4life with no job at all: the latest, once the two after it are gone.
    for (const f of ['2024-09-12T12:00:27.json', '2024-09-12T18:01:20.json']) rmSync(join(cwd, 'snapshots', f));
    const r = run(['top', '--namespace', 'ai4life', '--now', '2024-09-12T07:01:41Z'], { cwd });
    expect(r.code).toBe(0);
    expect(filterWarnings(r.stderr)).toEqual([]);
    expect(r.stdout).toMatch(/^Snapshot 2024-09-12T06:01:41Z \(2024-09-12T06:01:41\.json\), 1h 0m old: 0 allocations holding resources in ai4life\n/);
  });
});
