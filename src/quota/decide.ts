import { divide } from '../accounting/aggregate.js';
import { QUOTA_ORDER } from '../accounting/resources.js';
import type { Micros } from '../accounting/types.js';
import { fixed } from '../util/numbers.js';
import { formatInstant, formatSpan, formatTimestamp, readableInstant } from '../util/time.js';
import { DISPLAY_UNIT, QUOTA_RESOURCES, type Combine, type LimitSpec, type QuotaConfig, type QuotaResource, type RequestKey } from './policy.js';
import { openUntil, retryTime, usedBetween, type UsageInterval } from './usage.js';

/**
 * Quota decisions. Pure: the quota file, a user with their groups, a request, the user's
 * lifetimes, the time of the latest snapshot and "now" in; a decision out.
 *
 * - Groups: the caller's list when given (even empty), else the file's `groups:` when it
 *   names the user, else the user database; the first source that speaks wins (no union).
 * - Limits: every policy that matches the user (by group or by name, as its scope says);
 *   policies for the same resource and window combine by `combine` (max by default);
 *   users no policy matches get `default`; an override replaces the limit for its
 *   resource and window; an exempt user has none.
 * - Used: the user's resource-hours over [now − window, now), open allocations counted up to
 *   the latest snapshot, or up to now when asked (`running: 'until_now'`, for enforcement).
 * - Grace (enforcement): a limit is exceeded only above limit × (1 + grace), in parts per
 *   million of the limit, rounded down; 0 unless given.
 * - Allowed: used + request × hours ≤ limit. Without --hours the request counts as starting
 *   now for an arbitrarily short time: a resource the request asks for needs used < limit,
 *   one it does not ask for used ≤ limit (usage exactly at the limit allows a zero request,
 *   denies any positive one).
 * - Retry: the earliest instant at which enough usage has left the window, assuming open
 *   allocations keep running and nothing else starts.
 */

export type GroupsFrom = 'caller' | 'file' | 'userdb' | 'none';

export interface Membership {
  groups: string[];
  from: GroupsFrom;
}

export function membershipOf(config: QuotaConfig, user: string, caller: readonly string[] | null, userdb: readonly string[] | null): Membership {
  if (caller !== null) return { groups: [...new Set(caller)].sort(), from: 'caller' };
  const inFile = [...config.members]
    .filter(([, members]) => members.includes(user))
    .map(([g]) => g)
    .sort();
  if (inFile.length > 0) return { groups: inFile, from: 'file' };
  if (userdb && userdb.length > 0) return { groups: [...new Set(userdb)].sort(), from: 'userdb' };
  return { groups: [], from: 'none' };
}

export type LimitSource = 'policies' | 'default' | 'override';

export interface EffectiveLimit {
  resource: QuotaResource;
  window: string;
  windowUs: Micros;
  limit: bigint;
  /** The policies (or default, or override) it comes from. */
  from: string[];
  source: LimitSource;
}

/** The limits that apply to a user in these groups, one per resource and window. */
export function limitsFor(config: QuotaConfig, user: string, groups: readonly string[]): { exempt: boolean; limits: EffectiveLimit[] } {
  if (config.exempt.includes(user)) return { exempt: true, limits: [] };
  const matched = config.policies.filter(
    (p) => ((p.scope === 'groups' || p.scope === 'both') && p.groups.some((g) => groups.includes(g))) || ((p.scope === 'users' || p.scope === 'both') && p.users.includes(user)),
  );
  const byKey = new Map<string, EffectiveLimit>();
  const key = (s: LimitSpec) => `${s.resource}/${s.windowUs}`;
  const specs = matched.length > 0 ? matched : config.defaults;
  for (const s of specs) {
    const prev = byKey.get(key(s));
    if (!prev) byKey.set(key(s), { resource: s.resource, window: s.window, windowUs: s.windowUs, limit: s.limit, from: [s.name], source: matched.length > 0 ? 'policies' : 'default' });
    else {
      prev.limit = combine(config.combine, prev.limit, s.limit);
      prev.from.push(s.name);
    }
  }
  for (const s of config.overrides.get(user) ?? []) {
    byKey.set(key(s), { resource: s.resource, window: s.window, windowUs: s.windowUs, limit: s.limit, from: [s.name], source: 'override' });
  }
  const limits = [...byKey.values()].sort((a, b) => QUOTA_RESOURCES.indexOf(a.resource) - QUOTA_RESOURCES.indexOf(b.resource) || a.windowUs - b.windowUs);
  return { exempt: false, limits };
}

function combine(how: Combine, a: bigint, b: bigint): bigint {
  return how === 'sum' ? a + b : how === 'max' ? (a > b ? a : b) : a < b ? a : b;
}

/** Resources in base units (CPU millicores, bytes, GPUs), and for how long, if known. */
export interface QuotaRequest {
  amounts: Record<QuotaResource, number>;
  hoursUs: Micros | null;
}

export const NO_REQUEST: QuotaRequest = { amounts: Object.fromEntries(QUOTA_RESOURCES.map((r) => [r, 0])) as Record<QuotaResource, number>, hoursUs: null };

export interface PolicyDecision {
  resource: QuotaResource;
  window: string;
  unit: string;
  source: LimitSource;
  policies: string[];
  used: number;
  limit: number;
  /** What the request adds (request × hours); 0 without --hours. */
  requested: number;
  remaining: number;
  /** used / limit × 100; null for a zero limit with usage. */
  percent: number | null;
  allowed: boolean;
  /** When enough usage has left the window for the request; null when allowed or never. */
  retry_at: string | null;
  retry_in_seconds: number | null;
  /** Why there is no retry time for a denied policy. */
  retry_note: string | null;
}

export type Outcome = 'allowed' | 'denied' | 'unable';

/**
 * Why, for programs: a denial over a limit and one because the data is stale (or missing)
 * call for different answers, so they are never told apart by parsing `reason`.
 */
export type ReasonCode = 'exempt' | 'no_limits' | 'within_limits' | 'over_limit' | 'stale' | 'no_data';

export interface QuotaDecision {
  user: string;
  now: string;
  decision: Outcome;
  allowed: boolean;
  exit_code: 0 | 1 | 3;
  reason: string;
  reason_code: ReasonCode;
  exempt: boolean;
  groups: string[];
  groups_from: GroupsFrom;
  data: {
    latest_snapshot: string | null;
    age_seconds: number | null;
    stale_after: string;
    stale: boolean;
    failure: 'open' | 'closed' | null;
    /** The failure rule that decided, when the data was stale. */
    failure_applied: 'open' | 'closed' | null;
  };
  /** The request in reported units (cores, GiB, GPUs), one field per quota resource in quota order, and its hours. */
  request: Record<RequestKey, number> & { hours: number | null };
  policies: PolicyDecision[];
  /** When every denied policy allows the request again; null when allowed or never. */
  retry_at: string | null;
  /**
   * The message for people; null when allowed. Over a limit: the file's template, or the
   * default text. Stale or missing data: a fixed text saying so (the template speaks of limits).
   */
  message: string | null;
}

export interface DecideInput {
  user: string;
  membership: Membership;
  request: QuotaRequest;
  nowUs: Micros;
  /** Capture time of the latest readable snapshot; null when there is none. */
  latestUs: Micros | null;
  /** The user's lifetimes that may overlap the longest window (others are ignored). */
  intervals: readonly UsageInterval[];
  /** Count open allocations up to the latest snapshot (the default) or up to now. */
  running?: 'until_latest' | 'until_now';
  /** How far over each limit usage may go, in parts per million of the limit (default 0). */
  gracePpm?: bigint;
}

const US_PER_HOUR = 3_600_000_000;

/** Base units → reported units, under each resource's request key, in quota order (JSON keeps it). */
function inReportedUnits(amounts: Record<QuotaResource, number>): Record<RequestKey, number> {
  return Object.fromEntries(QUOTA_ORDER.map((r) => [r.quota.request.key, amounts[r.name] / Number(r.perUnit)])) as Record<RequestKey, number>;
}

export function decide(config: QuotaConfig, given: DecideInput): QuotaDecision {
  const input = given.running === 'until_now' ? { ...given, intervals: openUntil(given.intervals, given.nowUs) } : given;
  const { user, membership, request, nowUs, latestUs } = input;
  const { exempt, limits } = limitsFor(config, user, membership.groups);
  const ageUs = latestUs === null ? null : nowUs - latestUs;
  const stale = ageUs === null || ageUs > config.staleAfterUs;
  const policies = latestUs === null ? [] : limits.map((l) => decidePolicy(l, input));
  const base = {
    user,
    now: formatTimestamp(nowUs),
    exempt,
    groups: membership.groups,
    groups_from: membership.from,
    data: {
      latest_snapshot: latestUs === null ? null : formatTimestamp(latestUs),
      age_seconds: ageUs === null ? null : Math.round(ageUs / 1e6),
      stale_after: config.staleAfter,
      stale,
      failure: config.failure,
      failure_applied: null as 'open' | 'closed' | null,
    },
    request: { ...inReportedUnits(request.amounts), hours: request.hoursUs === null ? null : request.hoursUs / US_PER_HOUR },
    policies,
    retry_at: null as string | null,
    message: null as string | null,
  };
  // The verdict first: it is what a reader of the JSON looks for.
  const verdict = (decision: Outcome, reason: string, reason_code: ReasonCode): QuotaDecision =>
    Object.assign({ user, now: base.now, decision, allowed: decision === 'allowed', exit_code: decision === 'allowed' ? (0 as const) : decision === 'denied' ? (1 as const) : (3 as const), reason, reason_code }, base);

  if (exempt) return verdict('allowed', `${user} is exempt from quotas`, 'exempt');
  if (stale) {
    const code = latestUs === null ? 'no_data' : 'stale';
    const why = staleWhy(config, latestUs, nowUs);
    if (config.failure === null) return { ...verdict('unable', `unable to decide: ${why}, and the quota file sets no "failure: open|closed"`, code), message: `Unable to check the quota of ${user}: ${why}.` };
    base.data.failure_applied = config.failure;
    if (config.failure === 'open') return verdict('allowed', `allowed because ${why} and the quota file says failure: open`, code);
    const d = verdict('denied', `denied because ${why} and the quota file says failure: closed`, code);
    const contact = config.contact ? ` ${config.contact}` : '';
    d.message = `The quota of ${user} cannot be checked: ${why}; new requests are refused until it is up to date.${contact}`;
    return d;
  }
  const denied = policies.filter((p) => !p.allowed);
  if (denied.length === 0) return limits.length === 0 ? verdict('allowed', `no quota applies to ${user}`, 'no_limits') : verdict('allowed', 'within every quota', 'within_limits');
  const d = verdict('denied', `quota exceeded: ${denied.map((p) => `${p.resource} over ${p.window}`).join(', ')}`, 'over_limit');
  // The request is possible again when every denied policy allows it: the latest retry time.
  const never = denied.some((p) => p.retry_at === null);
  const binding = never ? denied.find((p) => p.retry_at === null)! : denied.reduce((a, b) => (b.retry_at! > a.retry_at! ? b : a));
  d.retry_at = never ? null : binding.retry_at;
  d.message = renderMessage(config, user, d, binding, denied.map(describe).join('; '));
  return d;
}

/** The most a limit allows with a grace of `ppm` parts per million of it, rounded down. */
export function withGrace(limit: bigint, ppm: bigint): bigint {
  return limit + (limit * ppm) / 1_000_000n;
}

/** Why the data cannot be trusted (it is missing, or older than stale_after). */
function staleWhy(config: QuotaConfig, latestUs: Micros | null, nowUs: Micros): string {
  return latestUs === null
    ? 'there is no accounting data (no readable snapshot)'
    : `the accounting data is stale: the latest snapshot, ${formatInstant(latestUs)}, is ${formatSpan(nowUs - latestUs)} old (stale_after ${config.staleAfter})`;
}

function toHours(resource: QuotaResource, x: bigint): number {
  return divide(x, DISPLAY_UNIT[resource].perHour);
}

function decidePolicy(l: EffectiveLimit, input: DecideInput): PolicyDecision {
  const { nowUs, request, intervals } = input;
  const used = usedBetween(intervals, l.resource, nowUs - l.windowUs, nowUs);
  const amount = request.amounts[l.resource];
  const requested = request.hoursUs === null ? 0n : BigInt(amount) * BigInt(request.hoursUs);
  // Without --hours a requested resource needs room left: used < limit, i.e. ≤ limit − 1.
  const strict = request.hoursUs === null && amount > 0;
  const target = withGrace(l.limit, input.gracePpm ?? 0n) - requested - (strict ? 1n : 0n);
  const allowed = used <= target;
  let retryAt: Micros | null = null;
  let note: string | null = null;
  if (!allowed) {
    retryAt = retryTime(intervals, l.resource, l.windowUs, nowUs, target);
    if (retryAt === null) {
      note =
        requested > l.limit || (strict && l.limit === 0n)
          ? 'the request alone exceeds the limit'
          : 'not while the running allocations keep running: they alone use the limit within a window';
    }
  }
  const remaining = l.limit > used ? l.limit - used : 0n;
  return {
    resource: l.resource,
    window: l.window,
    unit: DISPLAY_UNIT[l.resource].name,
    source: l.source,
    policies: l.from,
    used: toHours(l.resource, used),
    limit: toHours(l.resource, l.limit),
    requested: toHours(l.resource, requested),
    remaining: toHours(l.resource, remaining),
    percent: l.limit === 0n ? (used === 0n ? 0 : null) : divide(used * 100n, l.limit),
    allowed,
    retry_at: retryAt === null ? null : formatTimestamp(retryAt),
    retry_in_seconds: retryAt === null ? null : Math.round((retryAt - nowUs) / 1e6),
    retry_note: note,
  };
}

const n2 = (x: number) => fixed(x, 2);

function retryText(p: PolicyDecision): string {
  if (p.retry_at !== null) return `at ${readableInstant(p.retry_at)} (in ${formatSpan(p.retry_in_seconds! * 1e6)})`;
  return p.retry_note === 'the request alone exceeds the limit' ? 'never for this request: it alone exceeds the limit' : 'only once your running servers stop';
}

/** "memory over 30d: used 62.00 of 60.00 GiB-hours, this request needs 8.00 more: 10.00 over; frees up at ..." */
function describe(p: PolicyDecision): string {
  const over = p.used + p.requested - p.limit;
  const need = p.requested > 0 ? `, this request needs ${n2(p.requested)} more` : '';
  const by = over > 0 ? `${n2(over)} ${p.unit} over` : `no ${p.unit} left`;
  return `${p.resource} over the last ${p.window}: used ${n2(p.used)} of ${n2(p.limit)} ${p.unit}${need}: ${by}; it frees up ${retryText(p)}`;
}

function renderMessage(config: QuotaConfig, user: string, d: QuotaDecision, binding: PolicyDecision, details: string): string {
  const contact = config.contact ?? '';
  const template = config.message ?? `Quota exceeded for {user}: {details}.${contact ? ' {contact}' : ''}`;
  const over = Math.max(0, binding.used + binding.requested - binding.limit);
  const fields = new Map<string, string>([
    ['user', user],
    ['details', details],
    ['contact', contact],
    ['retry', retryText(binding)],
    ['retry_at', d.retry_at === null ? '' : readableInstant(d.retry_at)],
    ['retry_in', binding.retry_in_seconds !== null ? formatSpan(binding.retry_in_seconds * 1e6) : ''],
    ['resource', binding.resource],
    ['window', binding.window],
    ['used', n2(binding.used)],
    ['limit', n2(binding.limit)],
    ['unit', binding.unit],
    ['requested', n2(binding.requested)],
    ['over', n2(over)],
    ['policy', binding.policies.join(', ')],
  ]);
  return template.replace(/\{([a-z_]+)\}/g, (m, k: string) => fields.get(k) ?? m).trim();
}

export interface ReportRow {
  user: string;
  groups: string[];
  resource: QuotaResource;
  window: string;
  unit: string;
  source: LimitSource;
  policies: string[];
  used: number;
  limit: number;
  remaining: number;
  percent: number | null;
}

/** Every user and every limit that applies to them, by % used, highest first. */
export function quotaReport(
  config: QuotaConfig,
  users: readonly { user: string; membership: Membership; intervals: readonly UsageInterval[] }[],
  nowUs: Micros,
): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const u of users) {
    const { exempt, limits } = limitsFor(config, u.user, u.membership.groups);
    if (exempt) continue;
    for (const l of limits) {
      const p = decidePolicy(l, { user: u.user, membership: u.membership, request: NO_REQUEST, nowUs, latestUs: nowUs, intervals: u.intervals });
      rows.push({ user: u.user, groups: u.membership.groups, resource: l.resource, window: l.window, unit: p.unit, source: l.source, policies: l.from, used: p.used, limit: p.limit, remaining: p.remaining, percent: p.percent });
    }
  }
  const pct = (r: ReportRow) => (r.percent === null ? Infinity : r.percent);
  return rows.sort((a, b) => pct(b) - pct(a) || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0) || QUOTA_RESOURCES.indexOf(a.resource) - QUOTA_RESOURCES.indexOf(b.resource) || a.window.localeCompare(b.window));
}

/** A limit a running user is over, beyond the grace. */
export interface OverLimit {
  resource: QuotaResource;
  window: string;
  unit: string;
  policies: string[];
  used: number;
  limit: number;
  /** The limit with the grace: usage above this stops the user's servers. */
  stop_above: number;
}

export interface Enforcement {
  user: string;
  groups: string[];
  /**
   * stop: over a limit beyond the grace; keep: within every limit (or exempt, or no limits);
   * unable: the data is stale or missing, and running servers are never stopped on such data
   * (the file's failure rule is for new requests).
   */
  action: 'stop' | 'keep' | 'unable';
  reason_code: ReasonCode;
  reason: string;
  over: OverLimit[];
}

export type EnforceInput = Omit<DecideInput, 'request' | 'running' | 'gracePpm'> & { gracePpm: bigint };

/** "10%", "2.5%" from parts per million. */
export const gracePercent = (ppm: bigint): string => `${Number(ppm) / 10_000}%`;

/**
 * Whether a user whose servers are running is over a limit now: usage counted with open
 * allocations running up to now, each limit allowing `gracePpm` more.
 */
export function enforce(config: QuotaConfig, input: EnforceInput): Enforcement {
  const d = decide(config, { ...input, request: NO_REQUEST, running: 'until_now' });
  const base = { user: input.user, groups: d.groups, reason_code: d.reason_code, over: [] as OverLimit[] };
  if (d.reason_code === 'stale' || d.reason_code === 'no_data') {
    return { ...base, action: 'unable', reason: staleWhy(config, input.latestUs, input.nowUs) };
  }
  if (d.reason_code !== 'over_limit') return { ...base, action: 'keep', reason: d.reason };
  const { limits } = limitsFor(config, input.user, input.membership.groups);
  const over = d.policies
    .filter((p) => !p.allowed)
    .map((p): OverLimit => {
      const l = limits.find((x) => x.resource === p.resource && x.window === p.window)!;
      return { resource: p.resource, window: p.window, unit: p.unit, policies: p.policies, used: p.used, limit: p.limit, stop_above: toHours(p.resource, withGrace(l.limit, input.gracePpm)) };
    });
  const grace = input.gracePpm > 0n ? ` (grace ${gracePercent(input.gracePpm)}: up to ${'{above}'})` : '';
  const reason = over
    .map((o) => `${o.resource} over the last ${o.window}: used ${n2(o.used)} of ${n2(o.limit)} ${o.unit}${grace.replace('{above}', n2(o.stop_above))}`)
    .join('; ');
  return { ...base, action: 'stop', reason, over };
}
