import { userDbOf, type UserDb } from './store.js';

/**
 * Bringing an AI4OS user database along: `users/user-db.json`, written by its
 * `update-user-db.py`, maps a user id (the job meta `owner`) to `{"name", "email"}`. Legacy
 * snapshots carry only owner ids, so the names come from this file. Pure: text in, entries
 * out; the merge never drops an entry.
 */

export interface ImportedUser {
  name: string | null;
  email: string | null;
}

/** Why a user database file cannot be imported; the message names the place in the file. */
export class ImportError extends Error {}

function field(id: string, entry: Record<string, unknown>, key: 'name' | 'email'): string | null {
  const v = entry[key];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw new ImportError(`user ${JSON.stringify(id)}: "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v.trim() === '' ? null : v;
}

/** Parses and checks the file's text: an object of user id → {name, email} (either may be missing). */
export function parseAi4osUserDb(text: string): Map<string, ImportedUser> {
  let doc: unknown;
  try {
    doc = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  } catch (e) {
    throw new ImportError(`not valid JSON (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ImportError(`expected an object of user id → {"name", "email"}, got ${Array.isArray(doc) ? 'an array' : JSON.stringify(doc)}`);
  }
  const out = new Map<string, ImportedUser>();
  for (const [id, entry] of Object.entries(doc)) {
    if (id.trim() === '') throw new ImportError('a user id is empty');
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw new ImportError(`user ${JSON.stringify(id)}: expected an object with "name" and "email", got ${JSON.stringify(entry)}`);
    }
    const e = entry as Record<string, unknown>;
    out.set(id, { name: field(id, e, 'name'), email: field(id, e, 'email') });
  }
  return out;
}

export interface ImportResult {
  db: UserDb;
  /** Users the database did not have. */
  added: number;
  /** Known users given a name or e-mail they lacked. */
  completed: number;
  /** Known names or e-mails that differ from the file's, kept (or replaced with `overwrite`). */
  conflicts: number;
}

/**
 * Folds imported users into the database. A name or e-mail the database lacks is taken from
 * the file; one it already has is kept (snapshots collect them from current job meta)
 * unless `overwrite`. No entry is removed; first and last seen stay as snapshots set them.
 */
export function importUsers(db: UserDb, users: Map<string, ImportedUser>, overwrite: boolean): ImportResult {
  const out = userDbOf(Object.entries(db));
  let added = 0;
  let completed = 0;
  let conflicts = 0;
  for (const [id, u] of users) {
    const prev = Object.hasOwn(out, id) ? out[id] : undefined;
    if (!prev) {
      out[id] = { name: u.name, email: u.email, first_seen: null, last_seen: null, groups: [] };
      added++;
      continue;
    }
    const next = { ...prev };
    let filled = false;
    for (const key of ['name', 'email'] as const) {
      const mine = prev[key] ?? null;
      const theirs = u[key];
      if (theirs === null || theirs === mine) continue;
      if (mine === null) {
        next[key] = theirs;
        filled = true;
      } else {
        conflicts++;
        if (overwrite) next[key] = theirs;
      }
    }
    if (filled) completed++;
    out[id] = next;
  }
  return { db: out, added, completed, conflicts };
}
