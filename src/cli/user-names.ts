import { NO_NAMES, type UserNames } from '../reports/user-names.js';
import { loadUserDb, namesIn } from '../userdb/store.js';
import { DataError } from '../util/errors.js';
import type { CliIO } from './io.js';
import { STRICT, USERDB, type Settings } from './options.js';

/**
 * Names for a report's users from `--userdb` (default ./userdb). Names only label rows: an
 * unreadable database is warned about and the users show by id, unless --strict.
 */
export function userNames(s: Settings, io: CliIO): UserNames {
  try {
    return namesIn(loadUserDb(s.get(USERDB)));
  } catch (e) {
    if (!(e instanceof DataError) || s.get(STRICT)) throw e;
    io.warn(`${e.message}; users show by id until then`);
    return NO_NAMES;
  }
}
