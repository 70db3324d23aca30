import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceFile } from '../snapshots/write.js';
import { DataError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';

/**
 * The user database, `userdb/users.json`: user id → name, e-mail, first and last seen,
 * groups. Snapshots add to it; nothing ever removes an entry, and a known name or e-mail is
 * not replaced by an empty one.
 */

export interface UserRecord {
  name: string | null;
  email: string | null;
  first_seen: string | null;
  last_seen: string | null;
  groups: string[];
}

/**
 * User id → record. Always without a prototype (see userDbOf): an id may be `constructor` or
 * `__proto__`, which a plain object would answer with, or swallow into, its prototype.
 * Readers that may get a copy (a worker's) look ids up with Object.hasOwn.
 */
export type UserDb = Record<string, UserRecord>;

/** A database without a prototype holding these entries. */
export function userDbOf(entries: Iterable<[string, UserRecord]> = []): UserDb {
  const db = Object.create(null) as UserDb;
  for (const [id, u] of entries) db[id] = u;
  return db;
}

/** The user's groups in the database, or null when it has none for them. */
export function groupsIn(db: UserDb, user: string): string[] | null {
  if (!Object.hasOwn(db, user)) return null;
  const groups = db[user]?.groups;
  return Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : null;
}

/** The lookup of names the reports take: a user's name, or null when the database has none. */
export function namesIn(db: UserDb): (user: string) => string | null {
  return (user) => (Object.hasOwn(db, user) && typeof db[user]?.name === 'string' && db[user].name !== '' ? db[user].name : null);
}

export const USERDB_FILE = 'users.json';

export function loadUserDb(dir: string): UserDb {
  const path = join(dir, USERDB_FILE);
  if (!existsSync(path)) return userDbOf();
  try {
    const db = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (db === null || typeof db !== 'object' || Array.isArray(db)) throw new Error('expected an object of users');
    return userDbOf(Object.entries(db as UserDb));
  } catch (e) {
    throw new DataError(`${path}: ${(e as Error).message}; fix or move the file (it is never rewritten while unreadable)`);
  }
}

export interface Sighting {
  id: string;
  name: string | null;
  email: string | null;
  group: string | null;
}

/** Pure merge: returns a new database with the sightings at time `at` folded in. */
export function mergeSightings(db: UserDb, sightings: Sighting[], at: string): UserDb {
  const out = userDbOf(Object.entries(db));
  for (const s of sightings) {
    const prev = Object.hasOwn(out, s.id) ? out[s.id] : undefined;
    const groups = new Set(prev?.groups ?? []);
    if (s.group) groups.add(s.group);
    out[s.id] = {
      name: s.name || prev?.name || null,
      email: s.email || prev?.email || null,
      first_seen: prev?.first_seen && prev.first_seen < at ? prev.first_seen : at,
      last_seen: prev?.last_seen && prev.last_seen > at ? prev.last_seen : at,
      groups: [...groups].sort(),
    };
  }
  return out;
}

export function saveUserDb(dir: string, db: UserDb): void {
  makeFolder(dir);
  const sorted = Object.fromEntries(Object.entries(db).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  replaceFile(join(dir, USERDB_FILE), JSON.stringify(sorted, null, 2) + '\n');
}
