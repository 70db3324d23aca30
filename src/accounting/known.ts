import { bareName, clusterLabel, clusterOf } from './clusters.js';
import { UNATTRIBUTED } from './aggregate.js';
import { NO_NAME, type Names, type TrackColumns } from './columns.js';

/** The keys reports filter on. */
export type FilterKey = 'cluster' | 'namespace' | 'user' | 'group';

/**
 * The distinct values of one key over tracks as columns, sorted: what a filter on that key
 * can match. Blanked rows (state 0) are left out, as reports leave them out; a missing user
 * or group is `(unattributed)`, the name its filter takes.
 */
export function distinctValues(tracks: Iterable<TrackColumns>, names: Names, key: FilterKey): string[] {
  // Marks by id rather than a set: a year is a hundred thousand rows, and ids are dense.
  let seen: Uint8Array = new Uint8Array(names.size());
  let unnamed = false;
  for (const c of tracks) {
    // Clusters and namespaces both come from the namespace column (clusters.ts), split below.
    const column = c[key === 'cluster' ? 'namespace' : key];
    const state = c.state;
    // The index's names never grow during a read; the files view interns as it packs.
    if (seen.length < names.size()) seen = grown(seen, names.size());
    for (let i = 0; i < c.length; i++) {
      if (state[i] === 0) continue;
      const id = column[i]!;
      if (id === NO_NAME) unnamed = true;
      else seen[id] = 1;
    }
  }
  const ids: number[] = [];
  for (let id = 0; id < seen.length; id++) if (seen[id]) ids.push(id);
  names.prefetch?.(ids);
  const split = key === 'cluster' ? (n: string) => clusterLabel(clusterOf(n)) : key === 'namespace' ? bareName : (n: string) => n;
  const values = ids.map((id) => split(names.name(id)));
  if (unnamed) values.push(UNATTRIBUTED);
  // One name per value: a user literally named "(unattributed)" joins the missing ones.
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function grown(seen: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(seen);
  return out;
}
