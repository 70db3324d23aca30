import { bareName, clusterOf, UNNAMED_CLUSTER } from '../accounting/clusters.js';
import { GROUP_KEYS, type GroupKey } from '../accounting/aggregate.js';
import { monthOf, monthsBetween, parseMonth } from '../accounting/months.js';
import { checkTimeZone, dayOf, resolvePeriod } from '../accounting/period.js';
import { REPORT_ORDER, type Resource } from '../accounting/resources.js';
import type { GapPolicy } from '../accounting/types.js';
import { detailsCsv, monthlyCsv, monthlyReport } from '../reports/monthly.js';
import { statsFromView } from '../reports/stats-query.js';
import type { HistoryStore } from '../history/store.js';
import { exitCodeOf } from '../util/errors.js';
import { NO_REQUEST, type QuotaRequest } from '../quota/decide.js';
import type { QuotaConfig } from '../quota/policy.js';
import { checkQuota, dailyUsage, reportQuota } from '../quota/service.js';
import type { UserDb } from '../userdb/store.js';
import { parseDuration } from '../util/time.js';

/**
 * The read-only API's answers, from one history store (one index connection). Routing and auth live in app.ts;
 * these run in the query workers, so a long report does not hold up other requests. Which
 * query parameters each route takes is checked in app.ts as well (PARAMETERS), before any
 * cache or worker: a new parameter goes into that list.
 */

export interface ApiRequest {
  path: string;
  query: Record<string, string[]>;
  /** Snapshot files whose names are not capture times (stats diagnostics). */
  unnamedFiles: number;
  nowMs: number;
  /** A quota question, already authorised by the main thread (see app.ts). */
  quota?: QuotaQuestion;
}

export interface QuotaQuestion {
  config: QuotaConfig;
  userdb: UserDb;
  user: string;
  /** The caller's groups (admin only), or null for the file's, then the user database's. */
  groups: string[] | null;
  /** Null for `show`: no request. */
  request: QuotaRequest | null;
  /**
   * The JupyterHub service's pages: `user` answers `show` and the last 30 days' usage,
   * `admin` every user's report (`quota report`).
   */
  page?: 'user' | 'admin';
}

export interface ApiResponse {
  status: number;
  type: string;
  body: string;
}

export const JSON_TYPE = 'application/json; charset=utf-8';
const CSV_TYPE = 'text/csv; charset=utf-8';
const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A request the API refuses, with its status; the message is for the caller. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function errorResponse(status: number, message: string): ApiResponse {
  return { status, type: JSON_TYPE, body: JSON.stringify({ error: message }) + '\n' };
}

/** Messages of the core name CLI flags (`--from`); the API's callers know parameters. */
function asParameters(message: string): string {
  return message.replace(/--([a-z][a-z-]*)/g, '$1');
}

export class Queries {
  private readonly view;
  private metricsCache: { mark: string | undefined; text: string } | null = null;

  constructor(private readonly store: HistoryStore) {
    this.view = store.view;
  }

  answer(req: ApiRequest): ApiResponse {
    try {
      return this.route(req);
    } catch (e) {
      if (e instanceof ApiError) return errorResponse(e.status, e.message);
      // Bad dates, zones and keys: the core's bad input and the edges' usage errors.
      if (exitCodeOf(e) === 2) return errorResponse(400, asParameters((e as Error).message));
      throw e;
    }
  }

  private route(req: ApiRequest): ApiResponse {
    if (req.quota) return this.quota(req.quota, req.nowMs);
    const parts = req.path.split('/').filter(Boolean);
    if (parts[0] === 'stats' && parts.length === 1) return this.stats(req);
    if (parts[0] === 'metrics' && parts.length === 1) return this.metrics(req.nowMs);
    if (parts[0] === 'report' && parts[1] === 'monthly') {
      const rest = parts.slice(2);
      const tz = this.tz(req);
      if (rest.length === 0) return { status: 200, type: JSON_TYPE, body: JSON.stringify(this.months(tz)) + '\n' };
      const details = rest[0] === 'details';
      const ym = details ? rest.slice(1) : rest;
      if (ym.length === 2 && /^\d{4}$/.test(ym[0]!) && /^\d{1,2}$/.test(ym[1]!)) {
        const month = parseMonth(`${ym[0]}-${ym[1]!.padStart(2, '0')}`, 'month');
        const r = monthlyReport(this.view, month, tz, { details });
        return { status: 200, type: CSV_TYPE, body: details ? detailsCsv(r.details!) : monthlyCsv(r.summary) };
      }
    }
    throw new ApiError(404, `no such path: ${req.path}; see /report/monthly, /stats, /health, /metrics`);
  }

  private one(req: ApiRequest, name: string): string | undefined {
    const v = req.query[name];
    if (v && v.length > 1) throw new ApiError(400, `give ${name} once`);
    return v?.[0];
  }

  private tz(req: ApiRequest): string {
    return checkTimeZone(this.one(req, 'tz') ?? 'UTC', 'tz');
  }

  /** Months with snapshots, as PrimeHub lists them: "2020/8". */
  private months(tz: string): string[] {
    const s = this.store.catalogue.span();
    if (s === null) return [];
    return monthsBetween(monthOf(s.firstUs, tz), monthOf(s.lastUs, tz)).map((m) => `${m.year}/${m.month}`);
  }

  private stats(req: ApiRequest): ApiResponse {
    const tz = this.tz(req);
    const s = this.store.catalogue.span();
    const from = this.one(req, 'from');
    const to = this.one(req, 'to');
    if ((from === undefined || to === undefined) && s === null) throw new ApiError(400, 'the index holds no snapshots yet: give from and to');
    const period = resolvePeriod(from ?? dayOf(s!.firstUs, tz), to ?? dayOf(s!.lastUs, tz), tz);
    const byText = this.one(req, 'by') ?? 'namespace';
    const groupBy = byText.split(',').map((k) => k.trim());
    for (const k of groupBy) if (!(GROUP_KEYS as readonly string[]).includes(k)) throw new ApiError(400, `by ${JSON.stringify(k)}: group by one of ${GROUP_KEYS.join(', ')}, or a comma list`);
    if (new Set(groupBy).size !== groupBy.length) throw new ApiError(400, 'by: each key may appear once');
    const gapPolicy = (this.one(req, 'gap-policy') ?? 'midpoint') as GapPolicy;
    if (!['midpoint', 'last-seen', 'next'].includes(gapPolicy)) throw new ApiError(400, `gap-policy ${JSON.stringify(gapPolicy)}: use midpoint, last-seen or next`);
    const gc = this.one(req, 'gc-window');
    const gcWindowUs = gc === undefined ? null : parseDuration(gc);
    if (gc !== undefined && gcWindowUs === null) throw new ApiError(400, `gc-window ${JSON.stringify(gc)} is not a duration: use e.g. 4h, 90m or 0`);
    const maxGap = this.one(req, 'max-gap');
    const maxGapUs = maxGap === undefined ? undefined : parseDuration(maxGap);
    if (maxGapUs === null) throw new ApiError(400, `max-gap ${JSON.stringify(maxGap)} is not a duration: use e.g. 30m, 18h or 2d`);
    const filters = { clusters: req.query.cluster ?? [], namespaces: req.query.namespace ?? [], users: req.query.user ?? [], groups: req.query.group ?? [] };
    const { tracks: _t, files: _f, ...report } = statsFromView(this.view, {
      period,
      groupBy: groupBy as GroupKey[],
      filters,
      estimate: { gapPolicy, gcWindowUs },
      unnamedFiles: req.unnamedFiles,
      maxGapUs,
      nowUs: req.nowMs * 1000,
    });
    return { status: 200, type: JSON_TYPE, body: JSON.stringify(report) + '\n' };
  }

  /** The JSON of `hourmeter quota show` (no request) or `quota check`, whatever the decision. */
  private quota(q: QuotaQuestion, nowMs: number): ApiResponse {
    if (q.page === 'admin') return { status: 200, type: JSON_TYPE, body: JSON.stringify(reportQuota(this.view, q.config, q.userdb, nowMs * 1000)) };
    const d = checkQuota(this.view, q.config, q.userdb, { user: q.user, groups: q.groups, request: q.request ?? NO_REQUEST, nowUs: nowMs * 1000 });
    if (q.page === 'user') return { status: 200, type: JSON_TYPE, body: JSON.stringify({ answer: d, daily: dailyUsage(this.view, q.user, nowMs * 1000) }) };
    return { status: 200, type: JSON_TYPE, body: JSON.stringify(d) + '\n' };
  }

  /** Prometheus text format; names in base units (seconds, bytes), as Prometheus asks. */
  private metrics(nowMs: number): ApiResponse {
    const mark = this.store.catalogue.mark();
    if (!this.metricsCache || this.metricsCache.mark !== mark) this.metricsCache = { mark, text: this.historyMetrics() };
    const latest = this.store.catalogue.latest();
    const out = new MetricsText();
    if (latest) {
      const at = latest.capturedUs / 1e6;
      out.gauge('hourmeter_latest_snapshot_timestamp_seconds', 'Capture time of the latest readable snapshot in the index.', [[{}, at]]);
      out.gauge('hourmeter_latest_snapshot_age_seconds', 'Seconds since the latest readable snapshot was captured.', [[{}, Math.max(0, nowMs / 1000 - at)]]);
      out.gauge('hourmeter_latest_snapshot_failed_scopes', 'Namespaces whose capture failed in the latest snapshot.', [[{}, latest.failedScopes]]);
    }
    return { status: 200, type: METRICS_TYPE, body: out.text() + this.metricsCache.text };
  }

  /** What changes only when an ingest adds snapshots: computed once per index state. */
  private historyMetrics(): string {
    const out = new MetricsText();
    out.counter('hourmeter_snapshot_failures_total', 'Snapshot files that recorded a failed scope, or could not be read.', [[{}, this.store.catalogue.failures()]]);
    const now = this.store.holdingByNamespace();
    out.gauge('hourmeter_allocations', 'Allocations holding resources in the latest snapshot.', now.map((r) => [namespaceLabels(r.namespace), r.allocations]));
    out.gauge('hourmeter_allocated_gpus', 'GPUs held by allocations in the latest snapshot.', now.map((r) => [namespaceLabels(r.namespace), r.gpus]));
    const s = this.store.catalogue.span();
    if (s !== null) {
      const period = resolvePeriod(dayOf(s.firstUs, 'UTC'), dayOf(s.lastUs, 'UTC'), 'UTC');
      const r = statsFromView(this.view, { period, groupBy: ['cluster', 'namespace'], filters: {}, estimate: { gapPolicy: 'midpoint', gcWindowUs: null }, unnamedFiles: 0 });
      const series = (pick: (h: (typeof r.rows)[number]) => number) =>
        r.rows.map((row): Sample => [row.cluster === UNNAMED_CLUSTER ? { namespace: row.namespace! } : { cluster: row.cluster!, namespace: row.namespace! }, pick(row)]);
      const HOUR = 3600;
      // One counter per resource that declares one (resources.ts), in the report order.
      for (const res of REPORT_ORDER) {
        const m: Resource['metric'] = res.metric;
        if (m !== null) out.counter(m.name, m.help, series((h) => h[res.hours] * HOUR * m.perUnit));
      }
    }
    return out.text();
  }
}

type Sample = [labels: Record<string, string>, value: number];

/** A namespace as metric labels: its name, and its cluster unless that is the unnamed one (docs/accounting.md#clusters). */
function namespaceLabels(qualified: string): Record<string, string> {
  const cluster = clusterOf(qualified);
  return cluster === '' ? { namespace: qualified } : { cluster, namespace: bareName(qualified) };
}

class MetricsText {
  private readonly lines: string[] = [];

  gauge(name: string, help: string, samples: Sample[]): void {
    this.family(name, 'gauge', help, samples);
  }

  counter(name: string, help: string, samples: Sample[]): void {
    this.family(name, 'counter', help, samples);
  }

  text(): string {
    return this.lines.map((l) => l + '\n').join('');
  }

  private family(name: string, type: string, help: string, samples: Sample[]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
      this.lines.push(`${name}${l.length ? `{${l.join(',')}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  }
}

