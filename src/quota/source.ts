import { END_KIND_CODES, estimateColumns, LifetimeColumns, NO_NAME } from '../accounting/columns.js';
import type { EstimateOptions } from '../accounting/reconstruct.js';
import type { Amounts, Micros } from '../accounting/types.js';
import type { WindowFiles } from '../snapshots/catalogue.js';
import type { HistoryView } from '../history/store.js';
import type { UsageInterval } from './usage.js';

/**
 * What quota decisions need from the history: each user's lifetimes that may overlap
 * [now − longest window, now), and the capture time of the latest readable snapshot at or
 * before now. The same lifetimes (and end estimates) as every report.
 */

export interface QuotaData {
  latestUs: Micros | null;
  /** The capture times around [now − longest window, now), for its coverage (see WindowFiles). */
  files: Pick<WindowFiles, 'capturedUs' | 'nearbyUs'>;
  /** User → lifetimes; only the users asked for, or every attributed user when `users` is null. */
  byUser: Map<string, UsageInterval[]>;
}

export const QUOTA_ESTIMATE: EstimateOptions = { gapPolicy: 'midpoint', gcWindowUs: null };

export function readQuotaData(view: HistoryView, nowUs: Micros, longestWindowUs: Micros, users: readonly string[] | null, estimate: EstimateOptions = QUOTA_ESTIMATE): QuotaData {
  return view.consistently(() => {
    const window = { startUs: nowUs - longestWindowUs, endUs: nowUs };
    const { tracks, names, files } = view.read(window);
    let latestUs: Micros | null = null;
    for (const at of files.capturedUs) if (at <= nowUs && (latestUs === null || at > latestUs)) latestUs = at;
    const byUser = new Map<string, UsageInterval[]>();
    const wanted = users === null ? null : new Map(users.flatMap((u) => {
      const id = names.lookup(u);
      return id === undefined ? [] : [[id, u] as const];
    }));
    if (wanted) for (const u of users!) byUser.set(u, []);
    if (wanted !== null && wanted.size === 0) return { latestUs, files, byUser };
    const flavours = names.flavours();
    const amounts: Amounts[] = [];
    const userNames = new Map<number, string>();
    let out = new LifetimeColumns(0);
    for (const t of tracks) {
      out = estimateColumns(t, estimate, out);
      for (let i = 0; i < out.length; i++) {
        const id = out.user[i]!;
        if (id === NO_NAME) continue;
        if (wanted && !wanted.has(id)) continue;
        const startUs = out.start[i]!;
        const endUs = out.end[i]!;
        const open = out.kind[i] === END_KIND_CODES.open;
        if (!open && endUs <= window.startUs) continue;
        if (startUs >= nowUs) continue;
        const f = out.flavour[i]!;
        const a = (amounts[f] ??= flavours.amounts(f));
        let name = wanted ? wanted.get(id) : userNames.get(id);
        if (name === undefined) userNames.set(id, (name = names.name(id)));
        let list = byUser.get(name);
        if (!list) byUser.set(name, (list = []));
        list.push({ startUs, endUs, open, amounts: a });
      }
    }
    return { latestUs, files, byUser };
  });
}
