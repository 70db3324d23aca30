import { createHash } from 'node:crypto';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { Option } from 'commander';
import type { CaptureSink } from '../snapshots/captures.js';
import { DataError, UsageError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';
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
export async function connectStore(s: Settings, io: CliIO, opts: { applicationName?: string } = {}) {
  const { connectPostgres, PostgresSettingsError, resolvePostgresSettings, systemDefaults } = await import('../history/postgres.js');
  let settings;
  try {
    settings = resolvePostgresSettings(s.get(STORE), io.env, systemDefaults(), s.has('store') ? s.sourceOf(STORE) : 'the libpq environment');
  } catch (e) {
    if (e instanceof PostgresSettingsError) throw new UsageError(e.message);
    throw e;
  }
  try {
    return { settings, client: await connectPostgres(settings, { warn: io.warn, applicationName: opts.applicationName }) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if ((code !== undefined && UNREACHABLE.has(code)) || /timeout|terminat/i.test((e as Error).message)) throw new StoreUnreachable((e as Error).message);
    throw new DataError((e as Error).message);
  }
}

/** The store could not be reached (down, restarting, or no route): worth waiting out, unlike a refusal. */
export class StoreUnreachable extends DataError {}

/** Errors that say the server is away rather than that it refused: the network's, and PostgreSQL's shutting down or starting. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', '57P01', '57P02', '57P03']);

/** --spool: where `snapshot --store` writes while the store cannot be reached. */
export const SPOOL: SharedOption<string> = {
  name: 'spool',
  option: () => new Option('--spool <dir>', 'with --store: where captures wait while the store cannot be reached, until forwarded (default: ./spool)').env('HOURMETER_SPOOL'),
  read: (s) => s.string('spool', 'spool'),
};

/** How to reach the store the settings name, or null for the snapshot folder. */
export function storeConnection(s: Settings, io: CliIO): { connect(): Promise<import('pg').Client> } | null {
  return s.get(STORE) === undefined ? null : { connect: async () => (await connectStore(s, io)).client };
}

/**
 * Where `snapshot` and `watch` write their captures: the store --store names, or else the
 * snapshot folder. The connection names the process (application_name), so that a second
 * writer refused a lock is told who holds it. A role that may not write captures is refused
 * here, before anything is captured (exit 3).
 */
export async function openCaptureSink(s: Settings, io: CliIO, command: 'snapshot' | 'watch', folder: string): Promise<CaptureSink> {
  const { folderCaptures } = await import('../snapshots/captures.js');
  if (s.get(STORE) === undefined) return folderCaptures(folder, io.warn);
  const { describePostgresSettings, postgresCaptures } = await import('../history/postgres.js');
  let connected;
  try {
    connected = await connectStore(s, io, { applicationName: `hourmeter ${command} pid ${process.pid} on ${hostname()}`.slice(0, 63) });
  } catch (e) {
    // A snapshot is not lost to an outage: it waits in the spool (see history/spool.ts).
    if (!(e instanceof StoreUnreachable) || command !== 'snapshot') throw e;
    return { ...folderCaptures(s.get(SPOOL), io.warn), spooledBecause: e.message };
  }
  const { settings, client } = connected;
  try {
    return await postgresCaptures(client, describePostgresSettings(settings), await localStateDir(s, io));
  } catch (e) {
    await client.end().catch(() => undefined);
    // A refused role and a failed check alike: exit 3, as `store import` says them.
    throw new DataError(`${s.source('store')}: ${(e as Error).message}`);
  }
}

/**
 * Where a host keeps its copy of the store's index between runs: --db when given, else a file
 * in the user's cache folder named after the server and database. It is a cache: delete it
 * at will.
 */
export async function localCopyPath(s: Settings, io: CliIO, db: string | undefined): Promise<string> {
  return db ?? join(cacheFolder(io), `store-${await storeKey(s, io)}.sqlite`);
}

/** This host's own state for the store's captures (Nomad's job meta cache), beside the copy. */
async function localStateDir(s: Settings, io: CliIO): Promise<string | null> {
  const dir = join(cacheFolder(io), `state-${await storeKey(s, io)}`);
  try {
    makeFolder(dir);
    return dir;
  } catch {
    // A read-only home: capture works without the cache, only asks more.
    return null;
  }
}

const cacheFolder = (io: CliIO) => join(io.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hourmeter');

/** Names a store by its server and database, for this host's files about it. */
async function storeKey(s: Settings, io: CliIO): Promise<string> {
  const { resolvePostgresSettings, systemDefaults } = await import('../history/postgres.js');
  let where = '';
  try {
    const settings = resolvePostgresSettings(s.get(STORE), io.env, systemDefaults(), 'the libpq environment');
    where = `${settings.host}:${settings.port}/${settings.database}`;
  } catch {
    // connectStore says what is wrong with the settings.
  }
  return createHash('sha256').update(where).digest('hex').slice(0, 16);
}
