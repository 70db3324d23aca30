import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { renderOutput, tableColumns, tableParts, type Column, type Output } from '../../reports/output.js';
import { plainTable, withRules } from '../../reports/table.js';
import type { UserDb, UserRecord } from '../../userdb/store.js';
import { DataError, UsageError } from '../../util/errors.js';
import { timestampText } from '../../util/time.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addOutputOptions, outputFormat, QUIET, Settings, USERDB, type SharedOption } from '../options.js';
import { CSV_DELIMITER } from '../summary-options.js';
import { STORE } from '../store-options.js';
import { loadUsers, openUserDirectory } from '../user-directory.js';

/** A sighting time in the report form; a hand-edited value that is not a time is shown as it is. */
function seen(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  try {
    return timestampText(text) ?? text;
  } catch {
    return text;
  }
}

/** The database with its sighting times in the one timestamp form of reports. */
function exported(db: UserDb): UserDb {
  return Object.fromEntries(Object.entries(db).map(([id, u]) => [id, { ...u, first_seen: seen(u.first_seen), last_seen: seen(u.last_seen) }]));
}

type UserRow = UserRecord & { id: string };

const text = (v: string | null) => v ?? '';

/** JSON is the database itself, an object of user id → record; CSV and the table list its users. */
export const USERDB_COLUMNS: readonly Column<UserRow>[] = [
  { key: 'id', json: 'row name', table: { header: 'User', align: 'left', cell: (u) => u.id } },
  { key: 'name', table: { header: 'Name', align: 'left', cell: (u) => text(u.name) } },
  { key: 'email', table: { header: 'E-mail', align: 'left', cell: (u) => text(u.email) } },
  { key: 'first_seen', table: { header: 'First seen', align: 'left', cell: (u) => text(u.first_seen) } },
  { key: 'last_seen', table: { header: 'Last seen', align: 'left', cell: (u) => text(u.last_seen) } },
  { key: 'groups', csv: (u) => (u.groups ?? []).join(' '), table: { header: 'Groups', align: 'left', cell: (u) => (u.groups ?? []).join(' ') } },
];

function userdbOutput(db: UserDb): Output<UserRow> {
  const rows = Object.entries(db).map(([id, u]) => ({ ...u, id }));
  const table = () => {
    const { head, body } = tableParts(tableColumns(USERDB_COLUMNS), rows);
    const t = plainTable({ head });
    for (const cells of body) t.push(cells);
    if (rows.length === 0) t.push([{ colSpan: head.length, content: 'no users yet: run `hourmeter snapshot`' }]);
    return withRules(t, { afterHeader: true, beforeLast: false }) + '\n';
  };
  return { columns: USERDB_COLUMNS, rows, json: db, table };
}

const EXPORT_OUTPUT = outputFormat(['csv', 'json'] as const);

const OVERWRITE: SharedOption<boolean> = {
  name: 'overwrite',
  option: () => new Option('--overwrite', "replace names and e-mails the database already has with the file's"),
  read: (s) => s.flag('overwrite'),
};

export function userdbCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('userdb')
    .summary('show, export or import the user database (ids, names, e-mails)')
    .description('The user database, userdb/users.json (with --store, the users table of the PostgreSQL store), collects owners from job meta at every snapshot and never drops one.');
  const addDir = (c: Command) => c.addOption(USERDB.option()).addOption(STORE.option('the --userdb folder'));
  const show = new Command('show').summary('print the users as a table').description('Prints every known user.');
  addDir(show);
  addConfigOption(show);
  show.addHelpText('after', '\nExamples:\n  hourmeter userdb show');
  show.action(async () => {
    const s = Settings.of(show, program);
    io.stdout(renderOutput(userdbOutput(await loadUsers(s, io)), 'table'));
  });
  const exp = new Command('export').summary('write the users as CSV or JSON').description('Writes every known user to stdout.');
  addDir(exp);
  addOutputOptions(exp, EXPORT_OUTPUT);
  exp.addOption(CSV_DELIMITER.option());
  addConfigOption(exp);
  exp.addHelpText('after', '\nExamples:\n  hourmeter userdb export -o csv > users.csv\n  hourmeter userdb export --json');
  exp.action(async () => {
    const s = Settings.of(exp, program);
    const db = exported(await loadUsers(s, io));
    const format = s.get(EXPORT_OUTPUT);
    io.stdout(renderOutput(userdbOutput(db), format, { delimiter: format === 'csv' ? s.get(CSV_DELIMITER) : undefined }));
  });
  const imp = new Command('import')
    .summary("merge an AI4OS users/user-db.json (user id -> name, e-mail) into the database")
    .description(
      "Reads AI4OS's users/user-db.json, an object of user id -> {\"name\", \"email\"}, and merges it into " +
        'the user database: new users are added, missing names and e-mails are filled in, and no entry ' +
        'is ever dropped. Names and e-mails the database already has (from job meta) are kept unless ' +
        '--overwrite.',
    )
    .argument('<file>', 'the AI4OS user database, e.g. users/user-db.json');
  addDir(imp);
  imp.addOption(OVERWRITE.option());
  imp.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(imp);
  imp.addHelpText('after', '\nExamples:\n  hourmeter userdb import ../ai4-accounting/users/user-db.json\n  hourmeter userdb import user-db.json --userdb /srv/hourmeter/userdb --overwrite\n  hourmeter userdb import user-db.json --store postgres://hourmeter_writer@db.example.org/hourmeter');
  imp.action(async (file: string) => {
    const { ImportError, parseAi4osUserDb } = await import('../../userdb/import.js');
    const s = Settings.of(imp, program);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`userdb import ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : (e as Error).message}; give the path of AI4OS's users/user-db.json`);
    }
    let users;
    try {
      users = parseAi4osUserDb(text);
    } catch (e) {
      if (!(e instanceof ImportError)) throw e;
      throw new DataError(`${file}: ${e.message}; expected AI4OS's users/user-db.json, an object such as {"<user id>": {"name": "...", "email": "..."}}. Nothing was imported`);
    }
    const directory = await openUserDirectory(s, io);
    const r = await directory.importUsers(users, s.get(OVERWRITE)).finally(() => directory.close());
    if (users.size === 0) io.warn(`${file} holds no users: nothing to import`);
    const n = r.conflicts;
    const some = `${n} name${n > 1 ? 's' : ''} or e-mail${n > 1 ? 's' : ''}`;
    const kept = n === 0 ? '' : s.get(OVERWRITE) ? `, ${some} replaced` : `; ${some} ${n > 1 ? 'differ' : 'differs'} from the database's and ${n > 1 ? 'were' : 'was'} kept (--overwrite takes the file's)`;
    if (!s.get(QUIET)) io.stdout(`imported ${users.size} users from ${file} into ${directory.usersWhere}: ${r.added} new, ${r.completed} completed${kept}\n`);
  });
  cmd.addCommand(show);
  cmd.addCommand(exp);
  cmd.addCommand(imp);
  cmd.addHelpText('after', '\nExamples:\n  hourmeter userdb show\n  hourmeter userdb export -o csv > users.csv\n  hourmeter userdb import ../ai4-accounting/users/user-db.json');
  return cmd;
}
