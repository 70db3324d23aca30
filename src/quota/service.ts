import { coverageJson, windowCoverage, type CoverageJson } from '../accounting/coverage.js';
import type { Micros } from '../accounting/types.js';
import type { HistoryView } from '../history/store.js';
import { groupsIn, type UserDb } from '../userdb/store.js';
import { formatTimestamp } from '../util/time.js';
import { decide, enforce, membershipOf, quotaReport, type Enforcement, type QuotaDecision, type QuotaRequest, type ReportRow } from './decide.js';
import { DISPLAY_UNIT, QUOTA_RESOURCES, type QuotaConfig, type QuotaResource } from './policy.js';
import { usedBetween } from './usage.js';
import { readQuotaData, type QuotaData } from './source.js';

/**
 * Quota answers from a history view: what `hourmeter quota` prints and `serve` returns. The
 * view is null when there are no snapshots at all (the quota file's failure rule decides).
 */

export function longestWindowUs(config: QuotaConfig): Micros {
  let w = 0;
  for (const l of [...config.policies, ...config.defaults, ...[...config.overrides.values()].flat()]) w = Math.max(w, l.windowUs);
  return w;
}

export interface CheckQuery {
  user: string;
  /** --max-gap for the coverage; unset: the default of coverage.ts. */
  maxGapUs?: Micros;
  /** The caller's groups, or null to take them from the file, then the user database. */
  groups: string[] | null;
  request: QuotaRequest;
  nowUs: Micros;
}

/** With nothing read, every window is uncovered. */
const NO_DATA: QuotaData = { latestUs: null, files: { capturedUs: [], nearbyUs: [] }, byUser: new Map() };

/** What the snapshots cover of the longest window, [now − window, now). */
function windowCoverageOf(config: QuotaConfig, data: QuotaData, nowUs: Micros, maxGapUs: Micros | undefined): CoverageJson {
  return coverageJson(windowCoverage(data.files, { startUs: nowUs - longestWindowUs(config), endUs: nowUs }, { maxGapUs }));
}

/** A decision, and what the snapshots behind it cover. */
export type QuotaAnswer = QuotaDecision & { coverage: CoverageJson };

export function checkQuota(view: HistoryView | null, config: QuotaConfig, userdb: UserDb, q: CheckQuery): QuotaAnswer {
  const data = view ? readQuotaData(view, q.nowUs, longestWindowUs(config), [q.user]) : NO_DATA;
  const membership = membershipOf(config, q.user, q.groups, groupsIn(userdb, q.user));
  const d = decide(config, { user: q.user, membership, request: q.request, nowUs: q.nowUs, latestUs: data.latestUs, intervals: data.byUser.get(q.user) ?? [] });
  return { ...d, coverage: windowCoverageOf(config, data, q.nowUs, q.maxGapUs) };
}

export interface QuotaReport {
  now: string;
  latest_snapshot: string | null;
  /** What the snapshots cover of the longest window. */
  coverage: CoverageJson;
  stale: boolean;
  stale_after: string;
  /** Users the file exempts (they have no rows). */
  exempt: string[];
  rows: ReportRow[];
}

/** Every user the file, the user database or the usage names, with every limit that applies. */
export function reportQuota(view: HistoryView | null, config: QuotaConfig, userdb: UserDb, nowUs: Micros, maxGapUs?: Micros): QuotaReport {
  const data = view ? readQuotaData(view, nowUs, longestWindowUs(config), null) : NO_DATA;
  const users = new Set<string>([
    ...Object.keys(userdb),
    ...data.byUser.keys(),
    ...[...config.members.values()].flat(),
    ...config.policies.flatMap((p) => p.users),
    ...config.overrides.keys(),
  ]);
  const sorted = [...users].sort();
  const rows = quotaReport(
    config,
    sorted.map((user) => ({ user, membership: membershipOf(config, user, null, groupsIn(userdb, user)), intervals: data.byUser.get(user) ?? [] })),
    nowUs,
  );
  return {
    now: formatTimestamp(nowUs),
    latest_snapshot: data.latestUs === null ? null : formatTimestamp(data.latestUs),
    coverage: windowCoverageOf(config, data, nowUs, maxGapUs),
    stale: data.latestUs === null || nowUs - data.latestUs > config.staleAfterUs,
    stale_after: config.staleAfter,
    exempt: sorted.filter((u) => config.exempt.includes(u)),
    rows,
  };
}

/**
 * Which of these running users are over a limit now (running allocations counted up to now,
 * each limit allowing the grace more), in the order given. Their groups are the caller's (the
 * hub's), as in `serve`'s hub mode.
 */
export function enforceQuota(view: HistoryView | null, config: QuotaConfig, users: readonly { name: string; groups: string[] }[], nowUs: Micros, gracePpm: bigint): { latest_snapshot: string | null; users: Enforcement[] } {
  const data = view ? readQuotaData(view, nowUs, longestWindowUs(config), users.map((u) => u.name)) : NO_DATA;
  return {
    latest_snapshot: data.latestUs === null ? null : formatTimestamp(data.latestUs),
    users: users.map((u) =>
      enforce(config, { user: u.name, membership: membershipOf(config, u.name, u.groups, null), nowUs, latestUs: data.latestUs, intervals: data.byUser.get(u.name) ?? [], gracePpm }),
    ),
  };
}

const DAY_US = 86_400_000_000;

/** One UTC day of a user's usage, in the units quota limits are reported in. */
export interface QuotaDay {
  date: string;
  used: Record<QuotaResource, number>;
}

/**
 * A user's usage on each of the last `days` UTC days, oldest first, today counted up to now
 * (for the chart on the JupyterHub service's page). Recorded usage only, as the limits count it.
 */
export function dailyUsage(view: HistoryView | null, user: string, nowUs: Micros, days = 30): QuotaDay[] {
  const todayUs = Math.floor(nowUs / DAY_US) * DAY_US;
  const fromUs = todayUs - (days - 1) * DAY_US;
  const intervals = view ? (readQuotaData(view, nowUs, nowUs - fromUs, [user]).byUser.get(user) ?? []) : [];
  const out: QuotaDay[] = [];
  for (let d = fromUs; d <= todayUs; d += DAY_US) {
    const used = {} as Record<QuotaResource, number>;
    for (const r of QUOTA_RESOURCES) {
      const perHour = DISPLAY_UNIT[r].perHour;
      // Three decimals are plenty for a bar; the exact figures are the limits' own.
      used[r] = Number((usedBetween(intervals, r, d, Math.min(d + DAY_US, nowUs)) * 1000n) / perHour) / 1000;
    }
    out.push({ date: formatTimestamp(d).slice(0, 10), used });
  }
  return out;
}
