import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { monthlyFolder } from '../helpers/monthly-folder.js';
import { QUOTA_FILE, QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/** Every command that writes CSV takes --delimiter (a comma by default; the summaries keep ";"). */

const header = (stdout: string) => stdout.split('\n')[0];

describe('--delimiter on every command that writes CSV', () => {
  it('report monthly, top and userdb export', () => {
    const cwd = monthlyFolder();
    const monthly = run(['report', 'monthly', '--month', '2024-09', '--out', '-', '--delimiter', ';'], { cwd });
    expect(monthly.code).toBe(0);
    expect(header(monthly.stdout)).toBe('component;group_name;user_name;gpu_hours;cpu_hours;memory_gb_hours;total_hours;report_date');
    const top = run(['top', '-o', 'csv', '--delimiter', 'tab', '--now', '2024-10-01T12:00:00Z'], { cwd });
    expect(top.code).toBe(0);
    expect(header(top.stdout)).toMatch(/^user\tuser_name\tnamespace\tjob_id\t/);
    writeFileSync(join(cwd, 'users.json'), JSON.stringify({ foo: { name: 'Foo Bar', email: 'foo@example.org' } }));
    expect(run(['userdb', 'import', 'users.json'], { cwd }).code).toBe(0);
    const users = run(['userdb', 'export', '-o', 'csv', '--delimiter', ';'], { cwd });
    expect(users.stdout.split('\n').find((l) => l.startsWith('foo;'))).toMatch(/^foo;Foo Bar;foo@example\.org/);
  });

  it('quota report', () => {
    const cwd = quotaFolder();
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE);
    const r = run(['quota', 'report', '-o', 'csv', '--delimiter', ';', '--now', QUOTA_NOW], { cwd });
    expect(r.code).toBe(0);
    expect(header(r.stdout)).toBe('user;groups;resource;window;unit;used;limit;remaining;percent;source;policies');
  });
});
