import { Command, Option } from 'commander';
import { DataError, UsageError } from '../../util/errors.js';
import type { CliIO } from '../io.js';
import { addConfigOption, QUIET, Settings, type SharedOption } from '../options.js';

/**
 * `hourmeter store`: the PostgreSQL store's housekeeping. The connection is read the libpq
 * way (store/postgres/connect.ts): --store's URL, then PGHOST, PGPORT, PGUSER, PGDATABASE,
 * PGPASSFILE, PGSSLMODE, PGSSLROOTCERT.
 */

/** The store's URL; unset, the libpq environment alone says where the database is. */
export const STORE: SharedOption<string | undefined> = {
  name: 'store',
  option: () =>
    new Option('--store <url>', 'the PostgreSQL store, postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=FILE (default: the libpq environment, PGHOST...)').env(
      'HOURMETER_STORE',
    ),
  read: (s) => s.string('store'),
};

const STORE_EXAMPLES = [
  'hourmeter store migrate --store "postgres://hourmeter@db.example.org/hourmeter?sslmode=verify-full&sslrootcert=/etc/hourmeter/db-ca.pem"',
  'PGHOST=db.example.org PGUSER=hourmeter PGDATABASE=hourmeter PGSSLMODE=verify-full hourmeter store migrate',
];

export function storeCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('store')
    .summary('set up the PostgreSQL store (schema migrations)')
    .description('Housekeeping of a PostgreSQL database that holds the history: its schema, versioned.');

  const migrateCmd = new Command('migrate')
    .summary('create or upgrade the PostgreSQL store\'s tables')
    .description(
      'Applies the schema migrations the database has not had yet, in one transaction, and records them in ' +
        'schema_migrations; run again, it does nothing. The role needs CREATE on the database (or its owner). ' +
        'The password comes from the URL, PGPASSWORD or the password file (PGPASSFILE, else ~/.pgpass) and is never printed.',
    );
  migrateCmd.addOption(STORE.option());
  migrateCmd.addOption(QUIET.option('print nothing when all went well'));
  addConfigOption(migrateCmd);
  migrateCmd.addHelpText('after', `\nExamples:\n${STORE_EXAMPLES.map((e) => `  ${e}`).join('\n')}`);
  migrateCmd.action(async () => {
    const s = Settings.of(migrateCmd, program);
    const { connectPostgres, describePostgresSettings, migrate, PostgresSettingsError, resolvePostgresSettings, SCHEMA_VERSION, systemDefaults } = await import('../../history/postgres.js');
    let settings;
    try {
      settings = resolvePostgresSettings(s.get(STORE), io.env, systemDefaults(), s.has('store') ? s.sourceOf(STORE) : 'the libpq environment');
    } catch (e) {
      if (e instanceof PostgresSettingsError) throw new UsageError(e.message);
      throw e;
    }
    let client;
    try {
      client = await connectPostgres(settings, { warn: io.warn });
    } catch (e) {
      throw new DataError((e as Error).message);
    }
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

  cmd.addCommand(migrateCmd);
  cmd.addHelpText('after', `\nExamples:\n${STORE_EXAMPLES.map((e) => `  ${e}`).join('\n')}`);
  return cmd;
}
