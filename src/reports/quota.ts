import type { QuotaDecision } from '../quota/decide.js';
import type { QuotaAnswer, QuotaReport } from '../quota/service.js';
import { formatSpan, readableInstant } from '../util/time.js';
import { toCsv } from './csv.js';
import { decimal, fixed, plainTable, withRules } from './table.js';
import { drawnWidth, NO_NAMES, UserColumn, type UserNames } from './user-names.js';

/** Tables and CSV for `hourmeter quota`; JSON is the objects themselves. */

const pct = (p: number | null): string => (p === null ? '∞' : `${fixed(p, 1)}%`);

function describeData(d: QuotaDecision): string {
  const latest = d.data.latest_snapshot === null ? 'no snapshot' : `latest snapshot ${readableInstant(d.data.latest_snapshot)} (${formatSpan(d.data.age_seconds! * 1e6)} old, stale after ${d.data.stale_after})`;
  const failure = d.data.failure_applied ? `; stale: failure: ${d.data.failure_applied} applied` : '';
  return `${latest}${failure}`;
}

/** `quota check` and `quota show` for people: the verdict, the limits, the message. */
export function renderDecisionTable(d: QuotaAnswer, opts: { request: boolean }): string {
  const groups = d.groups.length > 0 ? d.groups.join(', ') : '(none)';
  const lines = [`${d.user}: ${d.decision.toUpperCase()}: ${d.reason}`, `groups: ${groups} (from ${d.groups_from}); ${describeData(d)}; now ${readableInstant(d.now)}`];
  if (opts.request) {
    const r = d.request;
    const parts = [r.cpu ? `cpu ${r.cpu}` : '', r.memory_gib ? `memory ${r.memory_gib} GiB` : '', r.gpu ? `gpu ${r.gpu}` : '', r.disk_gib ? `disk ${r.disk_gib} GiB` : ''].filter(Boolean);
    lines.push(`request: ${parts.length ? parts.join(', ') : 'nothing'}${r.hours === null ? '' : ` for ${r.hours} h`}`);
  }
  let out = lines.join('\n') + '\n';
  if (d.policies.length > 0) {
    const head = ['Resource', 'Window', 'Used', 'Limit', 'Unit', ...(opts.request ? ['Requested'] : []), 'Remaining', '% used', 'Allowed', 'Frees up at', 'Policies'];
    const t = plainTable({ head, colAligns: ['left', 'left', 'right', 'right', 'left', ...(opts.request ? ['right' as const] : []), 'right', 'right', 'left', 'left', 'left'] });
    for (const p of d.policies) {
      t.push([
        p.resource,
        p.window,
        fixed(p.used),
        fixed(p.limit),
        p.unit,
        ...(opts.request ? [fixed(p.requested)] : []),
        fixed(p.remaining),
        pct(p.percent),
        p.allowed ? 'yes' : 'no',
        p.retry_at !== null ? readableInstant(p.retry_at) : p.allowed ? '' : 'never',
        p.policies.join(', '),
      ]);
    }
    out += withRules(t, { afterHeader: true, beforeLast: false }) + '\n';
  }
  if (d.message) out += d.message + '\n';
  if (d.coverage.warning !== null) out += `Coverage: ${d.coverage.warning}\n`;
  return out;
}

const REPORT_COLUMNS = ['user', 'groups', 'resource', 'window', 'unit', 'used', 'limit', 'remaining', 'percent', 'source', 'policies'] as const;

/** Users show by name where `names` knows one, their ids shortened as much as `width` needs. */
export function renderReportTable(r: QuotaReport, width = Infinity, names: UserNames = NO_NAMES): string {
  const head = `Quota usage at ${readableInstant(r.now)}; latest snapshot ${r.latest_snapshot === null ? 'none' : readableInstant(r.latest_snapshot)}${r.stale ? ` (STALE: older than ${r.stale_after})` : ''}; ${r.rows.length} rows${r.exempt.length ? `; exempt: ${r.exempt.join(', ')}` : ''}\n`;
  const draw = (users: string[]) => {
    const t = plainTable({ head: ['User', 'Groups', 'Resource', 'Window', 'Used', 'Limit', 'Unit', '% used'], colAligns: ['left', 'left', 'left', 'left', 'right', 'right', 'left', 'right'] });
    r.rows.forEach((row, i) => t.push([users[i]!, row.groups.join(' '), row.resource, row.window, fixed(row.used), fixed(row.limit), row.unit, pct(row.percent)]));
    if (r.rows.length === 0) t.push([{ colSpan: 8, content: 'no user has a quota' }]);
    return t;
  };
  // The room left for the user column is what the table takes without it.
  const room = width - (drawnWidth(draw(r.rows.map(() => ''))) - 'User'.length);
  const t = draw(new UserColumn(r.rows.map((row) => row.user), names).labels(room));
  const coverage = r.coverage.warning === null ? '' : `Coverage: ${r.coverage.warning}\n`;
  return head + withRules(t, { afterHeader: true, beforeLast: false }) + '\n' + coverage;
}

export function renderReportCsv(r: QuotaReport, delimiter = ','): string {
  return toCsv(
    REPORT_COLUMNS,
    r.rows.map((row) => ({
      ...row,
      groups: row.groups.join(' '),
      policies: row.policies.join(' '),
      used: decimal(row.used),
      limit: decimal(row.limit),
      remaining: decimal(row.remaining),
      percent: row.percent === null ? 'inf' : decimal(row.percent),
    })),
    delimiter,
  );
}

export function renderReportJson(r: QuotaReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}
