import type pg from 'pg';
import { inTransaction } from './transaction.js';
import { newToken, tokenDigest } from '../../quota/tokens.js';
import type { UserDirectory } from '../../userdb/directory.js';
import { importUsers } from '../../userdb/import.js';
import { mergeSightings, userDbOf, type UserDb, type UserRecord } from '../../userdb/store.js';
import { DataError } from '../../util/errors.js';

/**
 * The user directory in the PostgreSQL store (schema 4: `users`, `quota_tokens`), so that
 * several `serve` hosts and capturing hosts share one. Each change is one transaction that
 * locks the rows of the users it touches (SELECT … FOR UPDATE), folds the change in with the
 * same pure function as the folder, and writes the rows back: two writers never lose an
 * update. Every value travels as a query parameter.
 */

interface UserRow {
  id: string;
  name: string | null;
  email: string | null;
  first_seen: string | null;
  last_seen: string | null;
  groups: string[];
}

const record = (r: UserRow): UserRecord => ({ name: r.name, email: r.email, first_seen: r.first_seen, last_seen: r.last_seen, groups: r.groups });

/** What a write needs, checked first so that a refusal names the GRANT that is missing. */
const WRITES = { tables: ['users', 'quota_tokens'], privileges: ['SELECT', 'INSERT', 'UPDATE'] };

async function requireWriteGrants(client: pg.Client, what: string): Promise<void> {
  const r = await client.query<{ user: string; table: string; privilege: string; granted: boolean }>(
    `SELECT current_user AS user, t AS table, p AS privilege, has_table_privilege(t, p) AS granted
       FROM unnest($1::text[]) AS t, unnest($2::text[]) AS p`,
    [WRITES.tables, WRITES.privileges],
  );
  const missing = r.rows.filter((row) => !row.granted);
  if (missing.length === 0) return;
  const user = r.rows[0]!.user;
  throw new DataError(
    `user "${user}" may not ${what}: it lacks ${missing.map((m) => `${m.privilege} on ${m.table}`).join(', ')}; do it as the writer role, or have the tables' owner run ` +
      `GRANT SELECT, INSERT, UPDATE ON users, quota_tokens TO "${user}" (README, "hourmeter store")`,
  );
}

/** A missing table means a store not migrated yet: say so, rather than "relation does not exist". */
function explained(e: unknown): unknown {
  const code = (e as { code?: string }).code;
  if (code === '42P01') return new DataError(`the store has no users or quota_tokens table yet (${(e as Error).message}): run \`hourmeter store migrate\` as the database's owner first`);
  if (code === '42501') return new DataError(`${(e as Error).message}; the reader role may only look users and tokens up (README, "hourmeter store")`);
  return e;
}

/**
 * Locks the rows of these users, creating the ones the store lacks first (a row that does not
 * exist cannot be locked, and two writers adding the same user must queue like the others).
 * Ids are sorted so that two transactions lock in the same order and never deadlock. Returns
 * the users as they were before: the ones just created are left out.
 */
async function lockUsers(client: pg.Client, ids: string[]): Promise<UserDb> {
  const sorted = [...new Set(ids)].sort();
  const created = await client.query<{ id: string }>('INSERT INTO users (id) SELECT unnest($1::text[]) ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id', [sorted]);
  const fresh = new Set(created.rows.map((r) => r.id));
  const r = await client.query<UserRow>('SELECT id, name, email, first_seen, last_seen, groups FROM users WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [sorted]);
  return userDbOf(r.rows.filter((row) => !fresh.has(row.id)).map((row) => [row.id, record(row)]));
}

/** Writes these users' rows (all locked by lockUsers) as the database has them. */
async function writeUsers(client: pg.Client, db: UserDb, ids: Iterable<string>): Promise<void> {
  const rows = [...new Set(ids)].filter((id) => Object.hasOwn(db, id)).map((id) => ({ id, ...db[id]! }));
  if (rows.length === 0) return;
  await client.query(
    `UPDATE users AS u SET name = v.name, email = v.email, first_seen = v.first_seen, last_seen = v.last_seen, groups = coalesce(v.groups, '{}')
       FROM jsonb_to_recordset($1::jsonb) AS v(id text, name text, email text, first_seen text, last_seen text, groups text[])
      WHERE u.id = v.id`,
    [JSON.stringify(rows)],
  );
}


/**
 * The directory over a connection made on first use. A connection the server dropped is
 * made again on the next call: `serve` keeps one for its lifetime.
 */
export function postgresUserDirectory(connect: () => Promise<pg.Client>, where: string): UserDirectory {
  let current: Promise<pg.Client> | null = null;
  const client = (): Promise<pg.Client> => {
    current ??= connect().then(
      (c) => {
        c.on('error', () => {
          current = null;
        });
        return c;
      },
      (e: unknown) => {
        current = null;
        throw e;
      },
    );
    return current;
  };
  const use = async <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = await client();
    try {
      return await work(c);
    } catch (e) {
      // No SQLSTATE: the connection itself failed; the next call connects again.
      if ((e as { code?: string }).code === undefined && current !== null) {
        current = null;
        await c.end().catch(() => undefined);
      }
      throw explained(e);
    }
  };
  return {
    usersWhere: `the users table of the ${where}`,
    tokensWhere: `the quota_tokens table of the ${where}`,
    load: () =>
      use(async (c) => {
        const r = await c.query<UserRow>('SELECT id, name, email, first_seen, last_seen, groups FROM users');
        // In the order users.json keeps (saveUserDb), whatever the database's collation.
        const rows = r.rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        return userDbOf(rows.map((row) => [row.id, record(row)]));
      }),
    mergeSightings: (sightings, at) =>
      use(async (c) => {
        if (sightings.length === 0) return;
        await inTransaction(c, async () => {
          const ids = sightings.map((s) => s.id);
          const before = await lockUsers(c, ids);
          await writeUsers(c, mergeSightings(before, sightings, at), ids);
        });
      }),
    importUsers: (users, overwrite) =>
      use(async (c) => {
        await requireWriteGrants(c, 'import users');
        return inTransaction(c, async () => {
          const ids = [...users.keys()];
          const { db, ...counts } = importUsers(await lockUsers(c, ids), users, overwrite);
          await writeUsers(c, db, ids);
          return counts;
        });
      }),
    issueToken: (user, nowIso) =>
      use(async (c) => {
        await requireWriteGrants(c, 'issue quota tokens');
        const { token, sha256 } = newToken();
        // One row per user: the new digest replaces (revokes) the old one.
        await c.query(
          `INSERT INTO quota_tokens (user_id, sha256, issued_at) VALUES ($1, $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET sha256 = EXCLUDED.sha256, issued_at = EXCLUDED.issued_at`,
          [user, sha256, nowIso],
        );
        return token;
      }),
    userOfToken: async (token) => {
      const digest = tokenDigest(token);
      if (digest === null) return null;
      // Looked up by the digest of a 32-byte random token: its timing tells nothing useful.
      return use(async (c) => (await c.query<{ user_id: string }>('SELECT user_id FROM quota_tokens WHERE sha256 = $1', [digest])).rows[0]?.user_id ?? null);
    },
    close: async () => {
      const c = current;
      current = null;
      if (c) await (await c.catch(() => null))?.end().catch(() => undefined);
    },
  };
}
