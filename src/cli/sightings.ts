import { loadUserDb, mergeSightings, saveUserDb, type Sighting } from '../userdb/store.js';

/**
 * Where the owners a capture saw go: the one call site of `snapshot` and `watch`. The user
 * database is the folder --userdb names, with or without --store; the store's users table
 * takes them here once it exists.
 */
export function recordSightings(userdbDir: string, users: readonly Sighting[], capturedAt: string): void {
  if (users.length > 0) saveUserDb(userdbDir, mergeSightings(loadUserDb(userdbDir), [...users], capturedAt));
}
