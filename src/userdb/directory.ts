import { join } from 'node:path';
import { issueToken, TokenFile, tokensPath, userOfToken } from '../quota/tokens.js';
import { importUsers, type ImportedUser, type ImportResult } from './import.js';
import { loadUserDb, mergeSightings, saveUserDb, USERDB_FILE, type Sighting, type UserDb } from './store.js';

/**
 * The user directory: the user database and the quota tokens' digests, wherever they are
 * kept. The folder (`<userdb>/users.json`, `<userdb>/quota-tokens.json`) serves one host; the
 * PostgreSQL store (store/postgres/users.ts) lets several hosts agree. Both fold changes in
 * with the same pure functions (mergeSightings, importUsers), so they mean the same.
 */
export interface UserDirectory {
  /** Where the users are kept, for messages: a file, or the store. */
  readonly usersWhere: string;
  /** Where the tokens' digests are kept, for messages. */
  readonly tokensWhere: string;
  load(): Promise<UserDb>;
  /** Folds the users seen in a capture at `at` in (mergeSightings). */
  mergeSightings(sightings: Sighting[], at: string): Promise<void>;
  /** Folds an imported user database in (importUsers); returns the counts of what changed. */
  importUsers(users: Map<string, ImportedUser>, overwrite: boolean): Promise<Omit<ImportResult, 'db'>>;
  /** Issues a token for the user, replacing the user's previous one; returns the token (shown once). */
  issueToken(user: string, nowIso: string): Promise<string>;
  /** The user a token belongs to, or null. */
  userOfToken(token: string): Promise<string | null>;
  close(): Promise<void>;
}

/** The user directory in a folder: today's files, read and written as before. */
export function folderDirectory(dir: string): UserDirectory {
  // Read again only when the file changed: serve looks a token up on every request.
  const tokens = new TokenFile(tokensPath(dir));
  return {
    usersWhere: join(dir, USERDB_FILE),
    tokensWhere: tokensPath(dir),
    load: async () => loadUserDb(dir),
    mergeSightings: async (sightings, at) => {
      if (sightings.length > 0) saveUserDb(dir, mergeSightings(loadUserDb(dir), sightings, at));
    },
    importUsers: async (users, overwrite) => {
      const { db, ...counts } = importUsers(loadUserDb(dir), users, overwrite);
      saveUserDb(dir, db);
      return counts;
    },
    issueToken: async (user, nowIso) => issueToken(dir, user, nowIso),
    userOfToken: async (token) => userOfToken(tokens.current(), token),
    close: async () => undefined,
  };
}
