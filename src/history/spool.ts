import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import type pg from 'pg';
import { listSnapshots } from '../snapshots/files.js';
import { loadUserDb, USERDB_FILE, type Sighting } from '../userdb/store.js';

/**
 * The spool: a folder laid out as a snapshot folder, where `snapshot --store` writes while the
 * store cannot be reached, until a run that reaches it forwards what waits there. Forwarding
 * adds each document once (a name already stored is not added again) and removes from the
 * spool only what the store then holds with the very same bytes, so a forward stopped
 * anywhere and run again forwards nothing twice and loses nothing.
 */

export interface SpoolContents {
  files: number;
  /** The capture time of the oldest file waiting (µs), or null when none waits. */
  oldestUs: number | null;
}

/** What waits in the spool; an absent spool is an empty one. */
export async function spoolContents(dir: string): Promise<SpoolContents> {
  if (!existsSync(dir)) return { files: 0, oldestUs: null };
  const { files } = await listSnapshots(dir, '--spool', { stat: false });
  return { files: files.length, oldestUs: files[0]?.timeUs ?? null };
}

export interface Forwarded {
  files: number;
  /** Files the store holds under their name with other bytes: reported, kept in the spool. */
  kept: string[];
  users: number;
}

/**
 * Forwards the spool into the store: its documents, then the owners the spooled captures saw
 * (`<spool>/userdb/users.json`), merged as sightings at their first and last time seen.
 */
export async function forwardSpool(
  client: pg.Client,
  dir: string,
  o: { warn: (line: string) => void; mergeSightings: (sightings: Sighting[], at: string) => Promise<void> },
): Promise<Forwarded> {
  const out: Forwarded = { files: 0, kept: [], users: 0 };
  if (!existsSync(dir)) return out;
  const { importCaptures, storedAlike } = await import('../store/postgres/import.js');
  const { files } = await listSnapshots(dir, '--spool', { stat: true });
  if (files.length > 0) {
    const documents = files.map((f) => ({ name: f.name.split(sep).join('/'), path: f.path, timeUs: f.timeUs, bytes: f.bytes }));
    await importCaptures(client, documents, [], { strict: false, warn: o.warn });
    const sums = documents.map((d) => ({ name: d.name, sha256: createHash('sha256').update(readFileSync(d.path)).digest('hex') }));
    const held = await storedAlike(client, sums);
    for (const d of documents) {
      if (held.has(d.name)) {
        rmSync(d.path);
        out.files++;
      } else {
        out.kept.push(d.name);
      }
    }
  }
  const users = join(dir, 'userdb');
  if (existsSync(join(users, USERDB_FILE))) {
    const db = loadUserDb(users);
    for (const [id, u] of Object.entries(db)) {
      const groups = u.groups.length > 0 ? u.groups : [null];
      for (const at of new Set([u.first_seen, u.last_seen].filter((t): t is string => t !== null))) {
        await o.mergeSightings(groups.map((group) => ({ id, name: u.name, email: u.email, group })), at);
      }
      out.users++;
    }
    rmSync(join(users, USERDB_FILE));
  }
  return out;
}
