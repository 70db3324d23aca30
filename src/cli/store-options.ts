import { Option } from 'commander';
import { DataError, UsageError } from '../util/errors.js';
import type { CliIO } from './io.js';
import type { Settings, SharedOption } from './options.js';

/**
 * --store: where the history is kept. Unset, it is the embedded default (the snapshot folder
 * and its SQLite index); a postgres:// URL names the PostgreSQL store, whose connection is
 * read the libpq way (store/postgres/connect.ts): the URL, then PGHOST, PGPORT, PGUSER,
 * PGDATABASE, PGPASSFILE, PGSSLMODE, PGSSLROOTCERT. `postgres://` alone takes it all from
 * the environment.
 */
export const STORE: SharedOption<string | undefined> = {
  name: 'store',
  option: (byDefault = 'the snapshot folder and its SQLite index') =>
    new Option('--store <url>', `the PostgreSQL store, postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=FILE (default: ${byDefault})`).env('HOURMETER_STORE'),
  read: (s) => s.string('store'),
};

/** Connects to the store the settings name: a bad URL is a usage error (2), an unreachable server exit 3. */
export async function connectStore(s: Settings, io: CliIO) {
  const { connectPostgres, PostgresSettingsError, resolvePostgresSettings, systemDefaults } = await import('../history/postgres.js');
  let settings;
  try {
    settings = resolvePostgresSettings(s.get(STORE), io.env, systemDefaults(), s.has('store') ? s.sourceOf(STORE) : 'the libpq environment');
  } catch (e) {
    if (e instanceof PostgresSettingsError) throw new UsageError(e.message);
    throw e;
  }
  try {
    return { settings, client: await connectPostgres(settings, { warn: io.warn }) };
  } catch (e) {
    throw new DataError((e as Error).message);
  }
}

/** How to reach the store the settings name, or null for the snapshot folder. */
export function storeConnection(s: Settings, io: CliIO): { connect(): Promise<import('pg').Client> } | null {
  return s.get(STORE) === undefined ? null : { connect: async () => (await connectStore(s, io)).client };
}
