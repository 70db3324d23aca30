import { folderDirectory, type UserDirectory } from '../userdb/directory.js';
import type { Sighting, UserDb } from '../userdb/store.js';
import type { CliIO } from './io.js';
import { USERDB, type Settings } from './options.js';
import { connectStore, STORE } from './store-options.js';

/**
 * The user directory a command works on: the PostgreSQL store when --store (HOURMETER_STORE,
 * config `store:`) names one, else the --userdb folder. Connecting to the store happens here,
 * once, so that a wrong URL or an unreachable server stops the command at its start.
 */
export async function openUserDirectory(s: Settings, io: CliIO): Promise<UserDirectory> {
  if (s.get(STORE) === undefined) return folderDirectory(s.get(USERDB));
  const { postgresUserDirectory } = await import('../history/postgres.js');
  let first: Awaited<ReturnType<typeof connectStore>> | null = await connectStore(s, io);
  return postgresUserDirectory(async () => {
    // The connection made above first; a new one if the server dropped it since.
    const made = first ?? (await connectStore(s, io));
    first = null;
    return made.client;
  }, 'PostgreSQL store');
}

/** The whole user database, from wherever the command keeps it (see openUserDirectory). */
export async function loadUsers(s: Settings, io: CliIO): Promise<UserDb> {
  const directory = await openUserDirectory(s, io);
  return directory.load().finally(() => directory.close());
}

/**
 * Records the users a capture saw at `at` (ISO time) where the command keeps its users: the
 * store's users table with --store, else `<userdb>/users.json`. For `snapshot` and `watch`.
 */
export async function recordSightings(s: Settings, io: CliIO, sightings: Sighting[], at: string): Promise<void> {
  if (sightings.length === 0) return;
  const directory = await openUserDirectory(s, io);
  try {
    await directory.mergeSightings(sightings, at);
  } finally {
    await directory.close();
  }
}
