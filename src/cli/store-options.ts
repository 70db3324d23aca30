import { createHash } from 'node:crypto';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { Option } from 'commander';
import type { CaptureSink, SnapshotSink } from '../snapshots/captures.js';
import type { Sighting } from '../userdb/store.js';
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
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', 'EPIPE', '57P01', '57P02', '57P03']);

/**
 * Whether an error met while talking to the store says that it went away (the connection
 * lost, the server shutting down or starting), not that it refused: `watch` waits it out.
 */
export function storeAway(e: unknown): boolean {
  if (e instanceof StoreUnreachable) return true;
  const code = (e as { code?: unknown } | null)?.code;
  // SQLSTATE class 08 is a connection exception.
  if (typeof code === 'string') return UNREACHABLE.has(code) || code.startsWith('08');
  // node-postgres says a lost connection in words only.
  return /Connection terminated|is not queryable|timeout expired/.test((e as Error)?.message ?? '');
}

/** --spool: where `snapshot --store` and `watch --store` write while the store cannot be reached. */
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
 * Where `snapshot` writes its captures: the store --store names, or else the snapshot folder.
 * The connection names the process (application_name), so that a second writer refused a
 * lock is told who holds it. A role that may not write captures is refused here, before
 * anything is captured (exit 3).
 */
export async function openCaptureSink(s: Settings, io: CliIO, folder: string): Promise<SnapshotSink> {
  const { folderCaptures } = await import('../snapshots/captures.js');
  if (s.get(STORE) === undefined) return folderCaptures(folder, io.warn);
  try {
    return (await openStoreCaptures(s, io, 'snapshot')).captures;
  } catch (e) {
    // A snapshot is not lost to an outage: it waits in the spool (see history/spool.ts).
    if (!(e instanceof StoreUnreachable)) throw e;
    return { ...folderCaptures(s.get(SPOOL), io.warn), spooledBecause: e.message };
  }
}

/** The store's captures over a new connection; StoreUnreachable when it cannot be reached. */
async function openStoreCaptures(s: Settings, io: CliIO, command: 'snapshot' | 'watch') {
  const { describePostgresSettings, postgresCaptures } = await import('../history/postgres.js');
  const { settings, client } = await connectStore(s, io, { applicationName: `hourmeter ${command} pid ${process.pid} on ${hostname()}`.slice(0, 63) });
  // A server gone between two queries: the next query says so, which is what counts.
  client.on('error', () => undefined);
  try {
    return { client, captures: await postgresCaptures(client, describePostgresSettings(settings), await localStateDir(s, io)) };
  } catch (e) {
    await client.end().catch(() => undefined);
    if (storeAway(e)) throw new StoreUnreachable((e as Error).message);
    // A refused role and a failed check alike: exit 3, as `store import` says them.
    throw new DataError(`${s.source('store')}: ${(e as Error).message}`);
  }
}

/**
 * Where `watch` writes its captures: the snapshot folder, or with --store the store while it
 * answers and the spool while it cannot be reached (history/spooling.ts). A watcher started
 * while the store is away starts in the spool.
 */
export async function openWatchSink(
  s: Settings,
  io: CliIO,
  folder: string,
  o: { firstBackoffMs: number; maxBackoffMs: number },
): Promise<CaptureSink & { recordSightings?: (sightings: Sighting[], at: string) => Promise<void> }> {
  if (s.get(STORE) === undefined) return (await import('../snapshots/captures.js')).folderCaptures(folder, io.warn);
  const { SpoolingCaptures } = await import('../history/spooling.js');
  const { forwardSpool } = await import('../history/spool.js');
  const { postgresUserDirectory } = await import('../history/postgres.js');
  const spool = s.get(SPOOL);
  const connect = async () => {
    const { client, captures } = await openStoreCaptures(s, io, 'watch');
    // The store's users over the same connection: every query of it goes through `exclusive`.
    const users = postgresUserDirectory(async () => client, 'PostgreSQL store');
    return {
      captures,
      forward: () => captures.exclusive((c) => forwardSpool(c, spool, { warn: io.warn, mergeSightings: (sightings, at) => users.mergeSightings(sightings, at) })),
      mergeSightings: (sightings: Sighting[], at: string) => captures.exclusive(() => users.mergeSightings(sightings, at)),
      close: () => captures.close(),
    };
  };
  const options = { spool, connect, away: storeAway, ...o, note: (line: string) => io.warn(`watch: ${line}`) };
  try {
    return new SpoolingCaptures(options, await connect());
  } catch (e) {
    if (!(e instanceof StoreUnreachable)) throw e;
    return new SpoolingCaptures(options, null, e.message);
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
