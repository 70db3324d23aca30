import { UNATTRIBUTED } from '../accounting/aggregate.js';
import { textWidth as width, type PlainTable } from './table.js';

/**
 * How tables show users: by name (from the user database) next to their id, with long ids
 * (`<64 hex digits>@egi.eu`) shortened in the middle only as much as the terminal needs.
 * JSON and CSV keep ids whole; the names come in as a lookup, so this stays pure.
 */

/** User id → display name, or null when the user database has none. */
export type UserNames = (user: string) => string | null;

export const NO_NAMES: UserNames = () => null;

const ELLIPSIS = '…';
/** Characters of an id kept before the ellipsis, at least: enough to tell ids apart by eye. */
const MIN_HEAD = 7;

/** The id at most `max` columns wide: its start, an ellipsis, and its `@domain` end (or its last characters). */
export function shortenId(id: string, max: number): string {
  if (id.length <= max) return id;
  const at = id.lastIndexOf('@');
  const domain = at > 0 ? id.slice(at) : '';
  if (domain && max - domain.length - 1 >= 1) return id.slice(0, max - domain.length - 1) + ELLIPSIS + domain;
  const room = Math.max(2, max - 1);
  const head = Math.ceil(room / 2);
  return id.slice(0, head) + ELLIPSIS + id.slice(id.length - (room - head));
}

/** The narrowest an id is shortened to. */
export function minIdWidth(id: string): number {
  const at = id.lastIndexOf('@');
  const min = MIN_HEAD + 1 + (at > 0 ? id.length - at : MIN_HEAD - 1);
  return Math.min(id.length, min);
}


/**
 * The labels of a table's user column. With room, `Name (id)`; with less, the id shortened;
 * with less still, the name alone — unless two users in the table share it, who then keep
 * their shortened ids. Users without a name show their id.
 */
export class UserColumn {
  /** For users whose name another user of this table shares: the start of the id that tells them apart. */
  private readonly heads = new Map<string, string>();

  constructor(
    private readonly users: readonly (string | null)[],
    private readonly names: UserNames,
  ) {
    const byName = new Map<string, Set<string>>();
    for (const u of new Set(users)) {
      const name = u === null ? null : names(u);
      if (name !== null) byName.set(name, (byName.get(name) ?? new Set()).add(u!));
    }
    for (const ids of byName.values()) {
      if (ids.size < 2) continue;
      for (const id of ids) {
        let k = 3;
        while (k < id.length && [...ids].some((other) => other !== id && other.startsWith(id.slice(0, k)))) k++;
        this.heads.set(id, k < id.length ? id.slice(0, k) + ELLIPSIS : id);
      }
    }
  }

  /** The narrowest the column gets keeping every id next to its name. */
  get minWithIds(): number {
    return this.widest((u, name) => (name === null ? minIdWidth(u) : width(name) + 3 + minIdWidth(u)));
  }

  /** The narrowest the column gets at all: names alone, a shared one with the start of the id. */
  get min(): number {
    return this.widest((u, name) => width(this.nameOnly(u, name) ?? u.slice(0, minIdWidth(u))));
  }

  /**
   * The labels, no wider than `budget` where the minimums allow; ids stay next to names when
   * `withIds` (by default: when they fit).
   */
  labels(budget: number, withIds = this.minWithIds <= budget): string[] {
    return this.users.map((u) => {
      if (u === null) return UNATTRIBUTED;
      const name = this.names(u);
      if (name === null) return shortenId(u, Math.max(budget, minIdWidth(u)));
      if (!withIds) return this.nameOnly(u, name)!;
      return `${name} (${shortenId(u, Math.max(budget - width(name) - 3, minIdWidth(u)))})`;
    });
  }

  private nameOnly(user: string, name: string | null): string | null {
    if (name === null) return null;
    const head = this.heads.get(user);
    return head === undefined ? name : `${name} (${head})`;
  }

  private widest(of: (user: string, name: string | null) => number): number {
    return this.users.reduce((w, u) => Math.max(w, u === null ? width(UNATTRIBUTED) : of(u, this.names(u))), 0);
  }
}

/** Columns a table takes in all, from its top border. */
export function drawnWidth(table: PlainTable): number {
  return width(table.toString().split('\n', 1)[0]!);
}
