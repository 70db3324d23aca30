import { UNATTRIBUTED } from '../accounting/aggregate.js';
import type { UserDb } from '../userdb/store.js';
import type { ParsedCsv } from './csv.js';

/**
 * `<ns>-users-agg-merged.csv`: a users-agg file joined with the user database, the user id,
 * name and e-mail first, then the usage columns as they were. Every row is kept: a user the
 * database does not know gets an empty name and e-mail and is counted in `missing`. Files
 * written with `--format ai4os` (an `owner` column) get the original merged columns
 * (`user id`, `name`, `email`, then `<resource> / day`). Pure.
 */

export interface MergedUsers {
  columns: string[];
  rows: Record<string, string>[];
  /** Ids of users the database does not know (the unattributed row is no user). */
  missing: string[];
}

/** The users-agg layouts: hourmeter's (a `user` column) and the AI4OS one (`owner`). */
export function usersAggLayout(fields: readonly string[]): 'hourmeter' | 'ai4os' | null {
  if (fields[0] === 'user') return 'hourmeter';
  if (fields[0] === 'owner') return 'ai4os';
  return null;
}

export function mergeUsers(agg: ParsedCsv, db: UserDb): MergedUsers {
  const layout = usersAggLayout(agg.fields);
  if (!layout) throw new Error(`the first column is ${JSON.stringify(agg.fields[0] ?? '')}, not "user" or "owner"`);
  const idColumn = agg.fields[0]!;
  const usage = agg.fields.slice(1);
  const ai4os = layout === 'ai4os';
  const id = ai4os ? 'user id' : 'user';
  const renamed = usage.map((c) => (ai4os ? `${c} / day` : c));
  for (const c of ['name', 'email']) if (usage.includes(c)) throw new Error(`it already has a "${c}" column: is it a merged file?`);
  const missing: string[] = [];
  const rows = agg.rows.map((r) => {
    const user = r[idColumn] ?? '';
    const known = Object.hasOwn(db, user) ? db[user] : undefined;
    if (!known && user !== UNATTRIBUTED) missing.push(user);
    const row: Record<string, string> = { [id]: user, name: known?.name ?? '', email: known?.email ?? '' };
    usage.forEach((c, i) => (row[renamed[i]!] = r[c] ?? ''));
    return row;
  });
  return { columns: [id, 'name', 'email', ...renamed], rows, missing };
}
