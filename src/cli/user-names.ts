import { NO_NAMES, type UserNames } from '../reports/user-names.js';
import { namesIn } from '../userdb/store.js';
import { DataError } from '../util/errors.js';
import type { CliIO } from './io.js';
import { STRICT, type Settings } from './options.js';
import { openUserDirectory } from './user-directory.js';

/**
 * Names for a report's users from `--userdb` (default ./userdb), or the store's users table
 * with --store. Names only label rows: an unreadable database is warned about and the users
 * show by id, unless --strict.
 */
export async function userNames(s: Settings, io: CliIO): Promise<UserNames> {
  try {
    const directory = await openUserDirectory(s, io);
    try {
      return namesIn(await directory.load());
    } finally {
      await directory.close();
    }
  } catch (e) {
    if (!(e instanceof DataError) || s.get(STRICT)) throw e;
    io.warn(`${e.message}; users show by id until then`);
    return NO_NAMES;
  }
}
