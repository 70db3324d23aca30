import type { Micros } from '../accounting/types.js';
import type { HistoryView } from '../store/view.js';
import type { UserDb } from '../userdb/store.js';
import { formatInstant } from '../util/time.js';
import { decide, membershipOf, quotaReport, type QuotaDecision, type QuotaRequest, type ReportRow } from './decide.js';
import type { QuotaConfig } from './policy.js';
import { readQuotaData } from './source.js';

/**
 * Quota answers from a history view: what `hourmeter quota` prints and `serve` returns. The
 * view is null when there are no snapshots at all (the quota file's failure rule decides).
 */

export function longestWindowUs(config: QuotaConfig): Micros {
  let w = 0;
  for (const l of [...config.policies, ...config.defaults, ...Object.values(config.overrides).flat()]) w = Math.max(w, l.windowUs);
  return w;
}

export interface CheckQuery {
  user: string;
  /** The caller's groups, or null to take them from the file, then the user database. */
  groups: string[] | null;
  request: QuotaRequest;
  nowUs: Micros;
}

export function checkQuota(view: HistoryView | null, config: QuotaConfig, userdb: UserDb, q: CheckQuery): QuotaDecision {
  const data = view ? readQuotaData(view, q.nowUs, longestWindowUs(config), [q.user]) : { latestUs: null, byUser: new Map() };
  const membership = membershipOf(config, q.user, q.groups, userdb[q.user]?.groups ?? null);
  return decide(config, { user: q.user, membership, request: q.request, nowUs: q.nowUs, latestUs: data.latestUs, intervals: data.byUser.get(q.user) ?? [] });
}

export interface QuotaReport {
  now: string;
  latest_snapshot: string | null;
  stale: boolean;
  stale_after: string;
  /** Users the file exempts (they have no rows). */
  exempt: string[];
  rows: ReportRow[];
}

/** Every user the file, the user database or the usage names, with every limit that applies. */
export function reportQuota(view: HistoryView | null, config: QuotaConfig, userdb: UserDb, nowUs: Micros): QuotaReport {
  const data = view ? readQuotaData(view, nowUs, longestWindowUs(config), null) : { latestUs: null, byUser: new Map() };
  const users = new Set<string>([
    ...Object.keys(userdb),
    ...data.byUser.keys(),
    ...Object.values(config.members).flat(),
    ...config.policies.flatMap((p) => p.users),
    ...Object.keys(config.overrides),
  ]);
  const sorted = [...users].sort();
  const rows = quotaReport(
    config,
    sorted.map((user) => ({ user, membership: membershipOf(config, user, null, userdb[user]?.groups ?? null), intervals: data.byUser.get(user) ?? [] })),
    nowUs,
  );
  return {
    now: formatInstant(nowUs),
    latest_snapshot: data.latestUs === null ? null : formatInstant(data.latestUs),
    stale: data.latestUs === null || nowUs - data.latestUs > config.staleAfterUs,
    stale_after: config.staleAfter,
    exempt: sorted.filter((u) => config.exempt.includes(u)),
    rows,
  };
}
