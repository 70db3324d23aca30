import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, run, withAi4osFixture } from '../helpers/cli.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * Tables name users from the user database, shortening long ids only as far as COLUMNS needs;
 * JSON and CSV carry the name as `user_name` next to the whole id. The AI4OS fixture's
 * user-db.json names 69 users; two of them share the name Léa Bianchi, and a3130acc… and
 * ce0343a4… are not in it.
 */

const LAURA = '2bd340090d88c1a719fe30e12e7fc9fe66f51d6bc5e9ed236177d48fa50fd0c9@egi.eu';
const IVAN = 'd3aca83fb2ae256ae88eff162be4525871a9525e4160f961bd79b5349dc3fe54@egi.eu';
const UNNAMED = 'a3130acce83e916e3f70860fbd270c26a2eae1ebf82e9e775622a37df045dee7@egi.eu';

/** The AI4OS fixture with its user database imported into ./userdb. */
function namedFixture(): string {
  const cwd = withAi4osFixture();
  const imported = run(['userdb', 'import', join(FIXTURES, 'ai4os/user-db.json')], { cwd });
  expect(imported.code).toBe(0);
  return cwd;
}

const DAY = ['--from', '2024-09-10', '--to', '2024-09-10'];
const widest = (text: string) => Math.max(...text.split('\n').map((l) => [...l].length));

describe('names, not hashes, in stats --by user', () => {
  it('the table shows names, ids shortened in the middle as far as the width needs', () => {
    const cwd = namedFixture();
    const wide = run(['stats', ...DAY, '--by', 'user'], { cwd });
    expect(wide.code).toBe(0);
    // At 200 columns the whole id fits next to the name.
    expect(wide.stdout).toContain(`│ Laura Lindqvist (${LAURA})    │     14.32 │      3.32 │           419.44 │          52.55 │     32,126.25 │    2 │     1 │`);
    const narrow = run(['stats', ...DAY, '--by', 'user'], { cwd, env: { COLUMNS: '80' } });
    expect(narrow.code).toBe(0);
    const table = narrow.stdout.split('\n').filter((l) => /^[┌│├└]/.test(l));
    expect(widest(table.join('\n'))).toBe(80);
    const rows = table.filter((l) => l.startsWith('│ '));
    expect(rows).toContain('│ Laura Lindqvist    │  14.32 │   3.32 │    419.44 │      52.55 │    2 │     1 │');
    // Unknown users keep their id, shortened with the domain kept; a shared name keeps the start of each id.
    expect(rows).toContain('│ a3130acce8…@egi.eu │   4.12 │   0.00 │      4.02 │      50.23 │    1 │     1 │');
    expect(rows).toContain('│ Léa Bianchi (b81…) │  96.00 │   0.00 │     93.75 │   1,171.88 │    1 │     1 │');
    expect(rows).toContain('│ Léa Bianchi (c22…) │  97.54 │   6.10 │     95.25 │     119.06 │    1 │     1 │');
  });

  it('JSON rows and CSV gain user_name after user, null or empty when unknown; ids stay whole', () => {
    const cwd = namedFixture();
    const json = JSON.parse(run(['stats', ...DAY, '--by', 'namespace,user', '-o', 'json'], { cwd }).stdout) as { rows: Record<string, unknown>[]; bounds: { low: { rows: Record<string, unknown>[] } } };
    const laura = json.rows.find((r) => r.user === LAURA)!;
    expect(Object.keys(laura).slice(0, 3)).toEqual(['namespace', 'user', 'user_name']);
    expect(laura.user_name).toBe('Laura Lindqvist');
    expect(json.rows.find((r) => r.user === UNNAMED)!.user_name).toBeNull();
    expect(json.bounds.low.rows.find((r) => r.user === LAURA)!.user_name).toBe('Laura Lindqvist');
    const csv = run(['stats', ...DAY, '--by', 'user', '-o', 'csv'], { cwd }).stdout.split('\n');
    expect(csv[0]).toBe('user,user_name,cpu_hours,gpu_hours,memory_gib_hours,disk_gib_hours,cpu_mhz_hours,allocation_hours,jobs,users,allocations,period_start,period_end,tz');
    expect(csv[1]).toBe(`${LAURA},Laura Lindqvist,14.322273076666667,3.3233807691666666,419.4411508333333,52.54766376139323,32126.250768666665,4.352130769166667,2,1,2,2024-09-10T00:00:00.000000Z,2024-09-11T00:00:00.000000Z,UTC`);
    expect(csv.find((l) => l.startsWith(UNNAMED))).toMatch(new RegExp(`^${UNNAMED},,4\\.115,`));
  });

  it('--userdb points at another folder; an unreadable one is warned about (users by id), fails under --strict, and is not read by namespace', () => {
    const cwd = namedFixture();
    const moved = run(['stats', ...DAY, '--by', 'user', '-o', 'csv', '--userdb', 'elsewhere'], { cwd });
    expect(moved.stdout.split('\n')[1]).toMatch(new RegExp(`^${LAURA},,14\\.`));
    writeFileSync(join(cwd, 'userdb', 'users.json'), '{');
    const byUser = run(['stats', ...DAY, '--by', 'user', '-o', 'csv'], { cwd });
    expect(byUser.code).toBe(0);
    expect(byUser.stderr).toMatch(/^hourmeter: warning: userdb\/users\.json: .*; fix or move the file .*; users show by id until then\n$/);
    expect(byUser.stdout.split('\n')[1]).toMatch(new RegExp(`^${LAURA},,14\\.`));
    const strict = run(['stats', ...DAY, '--by', 'user', '--strict'], { cwd });
    expect(strict.code).toBe(3);
    expect(strict.stderr).toContain('userdb/users.json');
    const top = run(['top', '--now', '2024-09-12T19:00:00Z', '-o', 'csv'], { cwd });
    expect(top.code).toBe(0);
    expect(top.stderr).toContain('users show by id');
    expect(top.stdout.split('\n')[1]).toMatch(new RegExp(`^${IVAN},,imagine,`));
    const byNamespace = run(['stats', ...DAY, '-o', 'csv'], { cwd });
    expect(byNamespace.code).toBe(0);
    expect(byNamespace.stderr).toBe('');
    expect(byNamespace.stdout.split('\n')[0]).toBe('namespace,cpu_hours,gpu_hours,memory_gib_hours,disk_gib_hours,cpu_mhz_hours,allocation_hours,jobs,users,allocations,period_start,period_end,tz');
  });
});

describe('names, not hashes, in top', () => {
  const NOW = ['--now', '2024-09-12T19:00:00Z'];

  it('fits 80 columns: compact layout, names alone, job ids shortened, a shared name told apart', () => {
    const cwd = namedFixture();
    const r = run(['top', ...NOW], { cwd, env: { COLUMNS: '80' } });
    expect(r.code).toBe(0);
    expect(widest(r.stdout)).toBe(80);
    expect(r.stdout.split('\n').slice(0, 7)).toEqual([
      'Snapshot 2024-09-12T18:01:20Z (2024-09-12T18:01:20.json), 58m old: 17',
      'allocations holding resources',
      '┌────────────────────┬───────────┬───────────┬─────┬───────┬─────────┬─────────┐',
      '│ User               │ Namespace │ Job       │ GPU │   CPU │ Mem GiB │     For │',
      '├────────────────────┼───────────┼───────────┼─────┼───────┼─────────┼─────────┤',
      '│ Ivan Dubois        │ imagine   │ 372b…50ec │   4 │  8.00 │   62.50 │  14d 8h │',
      '│ Léa Bianchi (c22…) │ ai4eosc   │ 14b7…8dbe │   1 │ 16.00 │   15.63 │   2d 0h │',
    ]);
    expect(r.stdout).toContain('│ Léa Bianchi (b81…) │ imagine   │ a376…f548 │   0 │  4.00 │    3.91 │  3d 11h │');
  });

  it('at 200 columns keeps every column and the ids next to the names, shortened only to fit', () => {
    const cwd = namedFixture();
    const r = run(['top', ...NOW], { cwd });
    expect(r.code).toBe(0);
    expect(widest(r.stdout)).toBe(200);
    expect(r.stdout).toContain(
      '│ Ivan Dubois (d3aca83fb2ae256ae88eff162be4525871a9525e4160f…@egi.eu) │ imagine   │ 372b10d8-3a15-43f1-ac1b-a431759f50ec │ -    │   4 │      8.00 │      62.50 │ 2024-08-29T09:36:04.479632Z │  14d 8h │',
    );
  });

  it('JSON and CSV carry user_name next to the whole id', () => {
    const cwd = namedFixture();
    const j = JSON.parse(run(['top', ...NOW, '-o', 'json'], { cwd }).stdout) as { allocations: Record<string, unknown>[] };
    expect(j.allocations[0]).toMatchObject({ user: IVAN, user_name: 'Ivan Dubois', job_id: '372b10d8-3a15-43f1-ac1b-a431759f50ec' });
    const csv = run(['top', ...NOW, '-o', 'csv'], { cwd }).stdout.split('\n');
    expect(csv[0]!.startsWith('user,user_name,namespace,')).toBe(true);
    expect(csv[1]!.startsWith(`${IVAN},Ivan Dubois,imagine,372b10d8-3a15-43f1-ac1b-a431759f50ec,`)).toBe(true);
  });
});

describe('names, not hashes, in quota report', () => {
  it('the table shows the name next to the id; CSV keeps its columns', () => {
    const cwd = quotaFolder();
    const db = JSON.parse(readFileSync(join(cwd, 'userdb', 'users.json'), 'utf8')) as Record<string, { name: string | null }>;
    db.alice!.name = 'Alice Martin';
    writeFileSync(join(cwd, 'userdb', 'users.json'), JSON.stringify(db));
    const r = run(['quota', 'report', '--now', QUOTA_NOW], { cwd });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('│ Alice Martin (alice) │ regular │ memory   │ 1d     │ 24.00 │ 30.00 │ GiB-hours │  80.0% │');
    expect(r.stdout).toContain('│ bob                  │ gpu     │ gpu      │ 1d     │ 18.00 │ 20.00 │ GPU-hours │  90.0% │');
    expect(run(['quota', 'report', '--now', QUOTA_NOW, '-o', 'csv'], { cwd }).stdout.split('\n')[0]).toBe('user,groups,resource,window,unit,used,limit,remaining,percent,source,policies');
  });
});
