import { Command } from 'commander';
import { join } from 'node:path';
import { toCsv } from '../../reports/csv.js';
import { replaceFile } from '../../snapshots/write.js';
import type { CliIO } from '../io.js';
import { STORE } from '../store-options.js';
import { openUserDirectory } from '../user-directory.js';
import { addConfigOption, NAMESPACE, QUIET, Settings, USERDB } from '../options.js';
import { SUMMARIES, SUMMARY_DELIMITER } from '../summary-options.js';
import { DataError } from '../../util/errors.js';

export function mergeUsersCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('merge-users')
    .summary('join <ns>-users-agg.csv with the user database into <ns>-users-agg-merged.csv')
    .description(
      'Joins each <ns>-users-agg.csv that `summarize` wrote with the user database, into ' +
        '<ns>-users-agg-merged.csv: user id, name, e-mail, then the usage columns. Users the database ' +
        'does not know keep their row, with an empty name and e-mail, and a warning counts them.',
    );
  cmd.addOption(SUMMARIES.option());
  cmd
    .addOption(USERDB.option())
    .addOption(STORE.option('the --userdb folder'))
    .addOption(NAMESPACE.option());
  cmd.addOption(SUMMARY_DELIMITER.option());
  addConfigOption(cmd);
  cmd.addOption(QUIET.option());
  cmd.addHelpText('after', '\nExamples:\n  hourmeter merge-users\n  hourmeter userdb import users/user-db.json && hourmeter merge-users --namespace ai4eosc');
  cmd.action(async () => {
    // Loaded here, not at start-up: other commands do not need them.
    const [{ mergeUsers }, { SUFFIXES }, { readSummaryCsv, summaryNamespaces }] = await Promise.all([
      import('../../reports/merge-users.js'),
      import('../../reports/summaries.js'),
      import('../summary-files.js'),
    ]);
    const s = Settings.of(cmd, program);
    const dir = s.get(SUMMARIES);
    const delimiter = s.get(SUMMARY_DELIMITER);
    const namespaces = summaryNamespaces(dir, SUFFIXES.users, s.get(NAMESPACE), '--summaries');
    const directory = await openUserDirectory(s, io);
    const db = await directory.load().finally(() => directory.close());
    for (const ns of namespaces) {
      const { path, csv } = readSummaryCsv(dir, ns.file, delimiter);
      let merged;
      try {
        merged = mergeUsers(csv, db);
      } catch (e) {
        throw new DataError(`${path}: ${(e as Error).message}; is it a users-agg file written by \`hourmeter summarize\` with --delimiter ${JSON.stringify(delimiter)}?`);
      }
      const out = join(dir, ns.file.slice(0, -SUFFIXES.users.length) + SUFFIXES.merged);
      replaceFile(out, toCsv(merged.columns, merged.rows, delimiter));
      if (!s.get(QUIET)) io.stdout(`wrote ${out}\n`);
      const n = merged.missing.length;
      if (n > 0) {
        io.warn(
          `${ns.namespace}: ${n} user${n > 1 ? 's' : ''} of ${merged.rows.length} missing from ${directory.usersWhere} (kept with an empty name and e-mail); ` +
            '`hourmeter userdb import` brings in an AI4OS user-db.json',
        );
      }
    }
  });
  return cmd;
}
