import { Command, Option } from 'commander';
import { join, sep } from 'node:path';
import { listSnapshots } from '../../snapshots/files.js';
import { JOURNAL_DIR, listJournals } from '../../snapshots/journal.js';
import { DataError } from '../../util/errors.js';
import type { CliIO } from '../io.js';
import { addConfigOption, QUIET, Settings } from '../options.js';
import { DB } from '../index-options.js';
import { connectStore, localCopyPath, SPOOL, STORE } from '../store-options.js';
import { progressBar } from '../progress-bar.js';

/**
 * `hourmeter store`: the PostgreSQL store's housekeeping. The connection is read the libpq
 * way (store/postgres/connect.ts): --store's URL, then PGHOST, PGPORT, PGUSER, PGDATABASE,
 * PGPASSFILE, PGSSLMODE, PGSSLROOTCERT.
 */

const STORE_EXAMPLES = [
  'hourmeter store migrate --store "postgres://hourmeter@db.example.org/hourmeter?sslmode=verify-full&sslrootcert=/etc/hourmeter/db-ca.pem"',
  'PGHOST=db.example.org PGUSER=hourmeter PGDATABASE=hourmeter PGSSLMODE=verify-full hourmeter store migrate',
];

const IMPORT_EXAMPLES = [
  'hourmeter store import /data/snapshots --store "postgres://hourmeter_writer@db.example.org/hourmeter?sslmode=verify-full&sslrootcert=/etc/hourmeter/db-ca.pem"',
  'PGHOST=db.example.org PGUSER=hourmeter_writer PGDATABASE=hourmeter hourmeter store import /data/snapshots --quiet',
  'hourmeter store import /data/snapshots --strict    # refuse, writing nothing, if a stored capture differs from its file',
];

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function storeCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('store')
    .summary('set up the PostgreSQL store and load snapshot folders into it')
    .description('Housekeeping of a PostgreSQL database that holds the history: its schema, versioned.');

  const migrateCmd = new Command('migrate')
    .summary('create or upgrade the PostgreSQL store\'s tables')
    .description(
      'Applies the schema migrations the database has not had yet, in one transaction, and records them in ' +
        'schema_migrations; run again, it does nothing. The role needs CREATE on the database (or its owner). ' +
        'The password comes from the URL, PGPASSWORD or the password file (PGPASSFILE, else ~/.pgpass) and is never printed.',
    );
  migrateCmd.addOption(STORE.option('the libpq environment, PGHOST...'));
  migrateCmd.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(migrateCmd);
  migrateCmd.addHelpText('after', `\nExamples:\n${STORE_EXAMPLES.map((e) => `  ${e}`).join('\n')}`);
  migrateCmd.action(async () => {
    const s = Settings.of(migrateCmd, program);
    const { describePostgresSettings, migrate, SCHEMA_VERSION } = await import('../../history/postgres.js');
    const { settings, client } = await connectStore(s, io);
    try {
      const r = await migrate(client);
      if (s.get(QUIET)) return;
      const where = describePostgresSettings(settings);
      if (r.applied.length === 0) io.stdout(`the schema is at version ${r.to}, the latest this hourmeter knows (${SCHEMA_VERSION}): nothing to do in the ${where}\n`);
      else io.stdout(`migrated the ${where} from schema version ${r.from} to ${r.to}: ${r.applied.map((m) => `${m.version} (${m.name})`).join(', ')}\n`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const hint = code === '42501' ? `: user "${settings.user}" may not create tables; run migrate as the database's owner` : '';
      throw new DataError(`store migrate: ${(e as Error).message}${hint}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  const importCmd = new Command('import')
    .argument('<dir>', 'the snapshot folder to load (AI4OS legacy files, native snapshots, journal/)')
    .summary('load a snapshot folder into the PostgreSQL store')
    .description(
      'Adds the folder\'s snapshot files (sub-folders and gzipped files included, each stored as its bytes under its path in the folder) ' +
        'and its watchers\' journal lines (each complete line by file and line number; a last line without its newline waits for the next import) ' +
        'to the store. Only what the store lacks is added, in batches of a few MB, each committed on its own: run it again, after new captures ' +
        'or after an interrupted import, and it adds the rest. A file whose name the store holds with other bytes is reported and skipped ' +
        '(captures are never rewritten); --strict refuses the import instead, before writing anything. The role needs INSERT and read access on ' +
        'snapshot_documents and journal_lines (the writer role in the README). Prints one line: what was added and what was there already.',
    );
  importCmd.addOption(STORE.option('the libpq environment, PGHOST...'));
  importCmd.addOption(new Option('--strict', 'fail (exit 3), writing nothing, when a stored capture differs from its file, instead of skipping it with a warning'));
  importCmd.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(importCmd);
  importCmd.addHelpText('after', `\nExamples:\n${IMPORT_EXAMPLES.map((e) => `  ${e}`).join('\n')}`);
  importCmd.action(async (dir: string) => {
    const s = Settings.of(importCmd, program);
    const listing = await listSnapshots(dir, 'store import DIR', { warn: io.warn });
    if (listing.unnamed.length > 0) {
      io.warn(
        `ignored ${plural(listing.unnamed.length, 'JSON file', 'JSON files')} whose name carries no capture time (${listing.unnamed.slice(0, 3).join(', ')}${listing.unnamed.length > 3 ? ', ...' : ''}): ` +
          'name a snapshot file after its capture time, e.g. 2024-09-01T00:00:00Z.json, to import it',
      );
    }
    const documents = listing.files.map((f) => ({ name: f.name.split(sep).join('/'), path: f.path, timeUs: f.timeUs, bytes: f.bytes }));
    const journals = listJournals(dir).flatMap((j) => j.files.map((f) => ({ source: j.sourceId, file: `${JOURNAL_DIR}/${j.sourceId}/${f.name}`, path: join(j.dir, f.name) })));
    const { importCaptures, ImportRefused } = await import('../../history/postgres.js');
    const { settings, client } = await connectStore(s, io);
    try {
      const r = await importCaptures(client, documents, journals, { strict: s.flag('strict'), warn: io.warn, progress: progressBar('importing into the store') });
      if (s.get(QUIET)) return;
      const rate = r.seconds > 0 ? ` (${Math.round(r.files / r.seconds)} files/s, ${mb(r.bytes / r.seconds)} MB/s)` : '';
      const skipped = [
        r.filesChanged ? `${plural(r.filesChanged, 'changed file', 'changed files')} skipped` : '',
        r.journalsChanged ? `${plural(r.journalsChanged, 'changed journal file', 'changed journal files')} skipped` : '',
        r.linesUnreadable ? `${plural(r.linesUnreadable, 'journal line', 'journal lines')} not UTF-8 skipped` : '',
      ].filter(Boolean);
      const unfinished = r.unfinished ? `; ${plural(r.unfinished, 'journal file ends', 'journal files end')} in an unfinished line, left for the next import` : '';
      io.stdout(
        `added ${plural(r.files, 'snapshot file', 'snapshot files')} (${mb(r.bytes)} MB as stored) and ${plural(r.lines, 'journal line', 'journal lines')}; ` +
          `already there: ${plural(r.filesPresent, 'file', 'files')} and ${plural(r.linesPresent, 'line', 'lines')}` +
          `${skipped.length ? `; ${skipped.join('; ')} (see the warnings)` : ''}${unfinished}; in ${r.seconds.toFixed(1)} s${rate}\n`,
      );
    } catch (e) {
      if (e instanceof ImportRefused) throw new DataError(`store import: ${e.message}`);
      const code = (e as { code?: string }).code;
      const hint = code === '42501' ? `: user "${settings.user}" may not write to the store; import as the writer role (README, "hourmeter store")` : '';
      throw new DataError(`store import: ${(e as Error).message}${hint}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  const statusCmd = new Command('status')
    .summary("what the store holds, and how far its index has come")
    .description(
      "Prints the store's schema version, its captures (snapshot documents, their stored size, journal lines), " +
        "what its index was derived from and when it was last brought up to date, whether this role may write the index, " +
        "and this host's copy of the index. Read-only: the reader role is enough.",
    );
  statusCmd.addOption(STORE.option('the libpq environment, PGHOST...'));
  statusCmd.addOption(DB.option());
  addConfigOption(statusCmd);
  statusCmd.addHelpText('after', '\nExamples:\n  hourmeter store status --store postgres://hourmeter_reader@db.example.org/hourmeter');
  statusCmd.action(async () => {
    const s = Settings.of(statusCmd, program);
    const { canWriteIndex, copyGenerationAt, describePostgresSettings, storeStatus } = await import('../../history/postgres.js');
    const { settings, client } = await connectStore(s, io);
    try {
      const st = await storeStatus(client);
      const lines = [`store: ${describePostgresSettings(settings)}`];
      if (st.schema !== st.latest) {
        lines.push(`schema: version ${st.schema}, this hourmeter's is ${st.latest}: run \`hourmeter store migrate\` as the database's owner`);
        io.stdout(lines.join('\n') + '\n');
        return;
      }
      lines.push(`schema: version ${st.schema} (up to date)`);
      lines.push(`captures: ${plural(st.documents, 'snapshot document', 'snapshot documents')} (${mb(st.storedBytes)} MB stored), ${plural(st.journalLines, 'journal line', 'journal lines')}`);
      const behind = st.derivedFrom ? { documents: st.documents - st.derivedFrom.documents, lines: st.journalLines - st.derivedFrom.journalLines } : null;
      if (!behind) lines.push('index: not derived yet: the next report (or `hourmeter store update`) derives it');
      else if (behind.documents === 0 && behind.lines === 0) lines.push(`index: up to date with the captures, ${plural(st.watchers, 'watcher', 'watchers')}' journals taken in`);
      else lines.push(`index: ${plural(behind.documents, 'snapshot document', 'snapshot documents')} and ${plural(behind.lines, 'journal line', 'journal lines')} not taken in yet`);
      if (st.lastFold) {
        const f = st.lastFold;
        lines.push(`last update: ${f.finishedAt}, ${f.mode}, ${plural(f.files, 'file', 'files')} and ${plural(f.lines, 'line', 'lines')} in ${f.seconds.toFixed(1)} s`);
      }
      const path = await localCopyPath(s, io, s.get(DB));
      lines.push(`this role: ${(await canWriteIndex(client)) ? 'may write the index (writer)' : 'may only read: its reports fold new captures into their own copy'}`);
      const copied = copyGenerationAt(path);
      const copy = copied === null ? 'none yet' : st.generation !== null && copied === st.generation ? 'current' : 'out of date: taken again by the next report';
      lines.push(`this host's copy of the index: ${path} (${copy})`);
      io.stdout(lines.join('\n') + '\n');
    } finally {
      await client.end().catch(() => undefined);
    }
  });

  const updateCmd = new Command('update')
    .summary("bring the store's index up to date with its captures, now")
    .description(
      "Folds the captures stored since the index was last brought up to date into it, as the first report after them " +
        'would, and writes the index back for every host. For cron or a deployment, so that reports (and serve with the ' +
        'reader role) find it current. Needs the writer role; a first update after importing a year takes a minute or less.',
    );
  updateCmd.addOption(STORE.option('the libpq environment, PGHOST...'));
  updateCmd.addOption(DB.option());
  updateCmd.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(updateCmd);
  updateCmd.addHelpText('after', '\nExamples:\n  hourmeter store update --store postgres://hourmeter_writer@db.example.org/hourmeter\n  */15 * * * *  hourmeter store update --quiet   # crontab, HOURMETER_STORE set');
  updateCmd.action(async () => {
    const s = Settings.of(updateCmd, program);
    const { PostgresHistoryStore } = await import('../../history/postgres.js');
    const { settings, client } = await connectStore(s, io);
    const store = await PostgresHistoryStore.open(client, { copyPath: await localCopyPath(s, io, s.get(DB)) }).catch(async (e: Error) => {
      await client.end().catch(() => undefined);
      throw new DataError(`store update: ${e.message}`);
    });
    try {
      if (!(await store.writable())) {
        throw new DataError(`store update: user "${settings.user}" may not write the store's index; run it as the writer role (README, "hourmeter store")`);
      }
      const r = await store.append({ files: [], unnamed: [], folders: [] }, { dir: '', warn: io.warn, note: io.warn, progress: progressBar('updating the store\'s index') });
      if (s.get(QUIET)) return;
      if (r.mode === 'none') io.stdout("the store's index is up to date\n");
      else io.stdout(`took in ${plural(r.files, 'snapshot document', 'snapshot documents')} and ${plural(r.lines, 'journal line', 'journal lines')} (${r.mode}${r.reason ? `: ${r.reason}` : ''}) in ${r.seconds.toFixed(1)} s\n`);
    } finally {
      store.close();
    }
  });

  const pushCmd = new Command('push')
    .summary('forward the captures that waited in the spool while the store was away')
    .description(
      '`snapshot --store` writes to the spool (--spool, default ./spool) when the store cannot be reached, and exits 3; ' +
        '`watch --store` goes on writing its journal lines and lists there until the store answers again. ' +
        'The next snapshot or watcher that reaches the store forwards the spool; this forwards it now. Each capture arrives once: ' +
        'a file leaves the spool only once the store holds its very bytes, and a journal file goes on after the lines the store ' +
        'holds for its hour, so a push stopped anywhere and run again forwards nothing twice. A file the store holds with other ' +
        'bytes stays, with a warning; so does the journal of a watcher still running, which forwards it itself.',
    );
  pushCmd.addOption(STORE.option('the libpq environment, PGHOST...'));
  pushCmd.addOption(SPOOL.option());
  pushCmd.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(pushCmd);
  pushCmd.addHelpText('after', '\nExamples:\n  hourmeter store push --store postgres://hourmeter_writer@db.example.org/hourmeter --spool /var/lib/hourmeter/spool');
  pushCmd.action(async () => {
    const s = Settings.of(pushCmd, program);
    const { forwardSpoolNow } = await import('../spool.js');
    const forwarded = await forwardSpoolNow(s, io, s.get(QUIET), { busy: true });
    if (forwarded === 0 && !s.get(QUIET)) io.stdout(`nothing waits in the spool ${s.get(SPOOL)}\n`);
  });

  cmd.addCommand(migrateCmd);
  cmd.addCommand(importCmd);
  cmd.addCommand(statusCmd);
  cmd.addCommand(updateCmd);
  cmd.addCommand(pushCmd);
  cmd.addHelpText('after', `\nExamples:\n${[...STORE_EXAMPLES, IMPORT_EXAMPLES[0]!].map((e) => `  ${e}`).join('\n')}`);
  return cmd;
}
