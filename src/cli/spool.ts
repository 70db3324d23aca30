import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { folderDirectory } from '../userdb/directory.js';
import { USERDB_FILE, type Sighting } from '../userdb/store.js';
import type { CliIO } from './io.js';
import type { Settings } from './options.js';
import { connectStore, SPOOL } from './store-options.js';

/**
 * The spool as `snapshot` and `store push` use it (history/spool.ts): the owners a spooled
 * capture saw wait beside it, and forwarding sends both, and the journals `watch` spooled,
 * to the store.
 */

/** Keeps the owners a spooled capture saw in the spool, for the forward to merge. */
export async function spoolSightings(s: Settings, sightings: Sighting[], at: string): Promise<void> {
  if (sightings.length === 0) return;
  const directory = folderDirectory(join(s.get(SPOOL), 'userdb'));
  try {
    await directory.mergeSightings(sightings, at);
  } finally {
    await directory.close();
  }
}

/**
 * Forwards what waits in the spool to the store --store names; says how much unless `quiet`,
 * and, with `busy`, which spooled journals a running watcher holds. Returns how many
 * documents and journal lines it forwarded.
 */
export async function forwardSpoolNow(s: Settings, io: CliIO, quiet: boolean, o: { busy?: boolean } = {}): Promise<number> {
  const { forwardSpool, spoolContents } = await import('../history/spool.js');
  const dir = s.get(SPOOL);
  const waiting = await spoolContents(dir);
  // Nothing waits: no connection is made.
  if (waiting.files === 0 && waiting.journalFiles === 0 && !existsSync(join(dir, 'userdb', USERDB_FILE))) return 0;
  const { client } = await connectStore(s, io);
  const { postgresUserDirectory } = await import('../history/postgres.js');
  // The store's users, over the same connection (its close ends it).
  const users = postgresUserDirectory(async () => client, 'PostgreSQL store');
  try {
    const r = await forwardSpool(client, dir, { warn: io.warn, mergeSightings: (sightings, at) => users.mergeSightings(sightings, at) });
    for (const name of r.kept) io.warn(`${join(dir, name)} stays in the spool: the store holds other bytes under its name (a capture is never rewritten); move it aside once checked`);
    for (const why of r.keptJournals) io.warn(why);
    if (o.busy) {
      for (const source of r.busy) io.warn(`${join(dir, 'journal', source)} is held by a running watcher, which forwards it itself once it reaches the store`);
    }
    if (!quiet && (r.files > 0 || r.lines > 0 || r.users > 0)) {
      const lines = r.lines > 0 ? `, ${r.lines} journal line${r.lines === 1 ? '' : 's'} (${r.journalFiles} file${r.journalFiles === 1 ? '' : 's'})` : '';
      io.stdout(`forwarded ${r.files} spooled snapshot${r.files === 1 ? '' : 's'}${lines} and ${r.users} user${r.users === 1 ? '' : 's'} from ${dir} to the store\n`);
    }
    return r.files + r.lines;
  } finally {
    await users.close().catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
