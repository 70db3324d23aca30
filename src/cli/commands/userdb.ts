import { Command, Option } from 'commander';
import { toCsv } from '../../reports/csv.js';
import { plainTable, withRules } from '../../reports/table.js';
import { loadUserDb, type UserDb } from '../../userdb/store.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addOutputOptions, Settings } from '../options.js';

const COLUMNS = ['id', 'name', 'email', 'first_seen', 'last_seen', 'groups'] as const;

function rows(db: UserDb): Record<string, string>[] {
  return Object.entries(db).map(([id, u]) => ({
    id,
    name: u.name ?? '',
    email: u.email ?? '',
    first_seen: u.first_seen ?? '',
    last_seen: u.last_seen ?? '',
    groups: (u.groups ?? []).join(' '),
  }));
}

export function userdbCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('userdb')
    .summary('show or export the user database (ids, names, e-mails)')
    .description('The user database, userdb/users.json, collects owners from job meta at every snapshot and never drops one.');
  const addDir = (c: Command) => c.addOption(new Option('--userdb <dir>', 'user database folder (default: ./userdb)'));
  const show = new Command('show').summary('print the users as a table').description('Prints every known user.');
  addDir(show);
  addConfigOption(show);
  show.addHelpText('after', '\nExamples:\n  hourmeter userdb show');
  show.action(() => {
    const s = Settings.of(show, program);
    const list = rows(loadUserDb(s.string('userdb', 'userdb')));
    const t = plainTable({ head: ['User', 'Name', 'E-mail', 'First seen', 'Last seen', 'Groups'] });
    for (const r of list) t.push(COLUMNS.map((c) => r[c] ?? ''));
    if (list.length === 0) t.push([{ colSpan: 6, content: 'no users yet: run `hourmeter snapshot`' }]);
    io.stdout(withRules(t, { afterHeader: true, beforeLast: false }) + '\n');
  });
  const exp = new Command('export').summary('write the users as CSV or JSON').description('Writes every known user to stdout.');
  addDir(exp);
  addOutputOptions(exp, ['csv', 'json']);
  addConfigOption(exp);
  exp.addHelpText('after', '\nExamples:\n  hourmeter userdb export -o csv > users.csv\n  hourmeter userdb export --json');
  exp.action(() => {
    const s = Settings.of(exp, program);
    const db = loadUserDb(s.string('userdb', 'userdb'));
    const format = s.output(['csv', 'json'] as const);
    io.stdout(format === 'json' ? JSON.stringify(db, null, 2) + '\n' : toCsv(COLUMNS, rows(db)));
  });
  cmd.addCommand(show);
  cmd.addCommand(exp);
  cmd.addHelpText('after', '\nExamples:\n  hourmeter userdb show\n  hourmeter userdb export -o csv > users.csv');
  return cmd;
}
