import { QUOTA_ORDER } from '../accounting/resources.js';
import type { PolicyDecision, QuotaDecision, ReportRow } from '../quota/decide.js';
import type { QuotaAnswer, QuotaReport } from '../quota/service.js';
import { formatSpan, readableInstant } from '../util/time.js';
import { tableColumns, tableParts, type Column, type Output } from './output.js';
import { decimal, fixed, plainTable, withRules } from './table.js';
import { drawnWidth, NO_NAMES, UserColumn, type UserNames } from './user-names.js';

/** Tables and CSV for `hourmeter quota`; JSON is the objects themselves. */

const pct = (p: number | null): string => (p === null ? '∞' : `${fixed(p, 1)}%`);

/** The freshness line of `quota show`: the latest snapshot, its age, and the failure rule when stale. */
export function describeData(d: QuotaDecision): string {
  const latest = d.data.latest_snapshot === null ? 'no snapshot' : `latest snapshot ${readableInstant(d.data.latest_snapshot)} (${formatSpan(d.data.age_seconds! * 1e6)} old, stale after ${d.data.stale_after})`;
  const failure = d.data.failure_applied ? `; stale: failure: ${d.data.failure_applied} applied` : '';
  return `${latest}${failure}`;
}

/** The limits of `quota check` and `quota show`: JSON's `policies`, and the table under the verdict. */
export const POLICY_COLUMNS: readonly Column<PolicyDecision>[] = [
  { key: 'resource', table: { header: 'Resource', align: 'left', cell: (p) => p.resource } },
  { key: 'window', table: { header: 'Window', align: 'left', cell: (p) => p.window } },
  { key: 'used', table: { header: 'Used', align: 'right', cell: (p) => fixed(p.used) } },
  { key: 'limit', table: { header: 'Limit', align: 'right', cell: (p) => fixed(p.limit) } },
  { key: 'unit', table: { header: 'Unit', align: 'left', cell: (p) => p.unit } },
  { key: 'requested', table: { header: 'Requested', only: 'with a request (quota check)', align: 'right', cell: (p) => fixed(p.requested) } },
  { key: 'remaining', table: { header: 'Remaining', align: 'right', cell: (p) => fixed(p.remaining) } },
  { key: 'percent', table: { header: '% used', align: 'right', cell: (p) => pct(p.percent) } },
  { key: 'allowed', table: { header: 'Allowed', align: 'left', cell: (p) => (p.allowed ? 'yes' : 'no') } },
  { key: 'retry_at', table: { header: 'Frees up at', align: 'left', cell: (p) => (p.retry_at !== null ? readableInstant(p.retry_at) : p.allowed ? '' : 'never') } },
  { key: 'retry_in_seconds', table: { omitted: 'Frees up at counted from now: for programs' } },
  { key: 'retry_note', table: { omitted: 'why a denied limit never frees up: for programs; the table says never' } },
  { key: 'source', table: { omitted: 'for programs: the Policies column names the limit' } },
  { key: 'policies', table: { header: 'Policies', align: 'left', cell: (p) => p.policies.join(', ') } },
];

/** `quota check` and `quota show` for people: the verdict, the limits, the message. */
export function renderDecisionTable(d: QuotaAnswer, opts: { request: boolean }): string {
  const groups = d.groups.length > 0 ? d.groups.join(', ') : '(none)';
  const lines = [`${d.user}: ${d.decision.toUpperCase()}: ${d.reason}`, `groups: ${groups} (from ${d.groups_from}); ${describeData(d)}; now ${readableInstant(d.now)}`];
  if (opts.request) {
    const r = d.request;
    // "cpu 2, memory 4 GiB": the resources asked for, in quota order.
    const parts = QUOTA_ORDER.filter((res) => r[res.quota.request.key]).map((res) => `${res.name} ${r[res.quota.request.key]}${res.quota.request.withUnit ? ` ${res.unitName}` : ''}`);
    lines.push(`request: ${parts.length ? parts.join(', ') : 'nothing'}${r.hours === null ? '' : ` for ${r.hours} h`}`);
  }
  let out = lines.join('\n') + '\n';
  if (d.policies.length > 0) {
    const shown = tableColumns(POLICY_COLUMNS, { keep: (c) => c.key !== 'requested' || opts.request });
    const { head, colAligns, body } = tableParts(shown, d.policies);
    const t = plainTable({ head, colAligns });
    for (const cells of body) t.push(cells);
    out += withRules(t, { afterHeader: true, beforeLast: false }) + '\n';
  }
  if (d.message) out += d.message + '\n';
  if (d.coverage.warning !== null) out += `Coverage: ${d.coverage.warning}\n`;
  return out;
}

const NOT_IN_TABLE = 'in JSON and CSV only: too wide for a terminal';

/** The rows of `quota report`: lists in CSV are space-separated, amounts unrounded to 2 decimals, an infinite % is `inf`. */
export const QUOTA_REPORT_COLUMNS: readonly Column<ReportRow>[] = [
  { key: 'user', table: { header: 'User', align: 'left', cell: (row) => row.user } },
  { key: 'groups', csv: (row) => row.groups.join(' '), table: { header: 'Groups', align: 'left', cell: (row) => row.groups.join(' ') } },
  { key: 'resource', table: { header: 'Resource', align: 'left', cell: (row) => row.resource } },
  { key: 'window', table: { header: 'Window', align: 'left', cell: (row) => row.window } },
  { key: 'unit', table: { header: 'Unit', align: 'left', cell: (row) => row.unit } },
  { key: 'used', csv: (row) => decimal(row.used), table: { header: 'Used', align: 'right', cell: (row) => fixed(row.used) } },
  { key: 'limit', csv: (row) => decimal(row.limit), table: { header: 'Limit', align: 'right', cell: (row) => fixed(row.limit) } },
  { key: 'remaining', csv: (row) => decimal(row.remaining), table: { omitted: 'Limit less Used: in JSON and CSV only, for width' } },
  { key: 'percent', csv: (row) => (row.percent === null ? 'inf' : decimal(row.percent)), table: { header: '% used', align: 'right', cell: (row) => pct(row.percent) } },
  { key: 'source', table: { omitted: NOT_IN_TABLE } },
  { key: 'policies', csv: (row) => row.policies.join(' '), table: { omitted: NOT_IN_TABLE } },
];

/** The table's order: the amounts next to each other, the unit after them. */
const REPORT_TABLE_ORDER = ['user', 'groups', 'resource', 'window', 'used', 'limit', 'unit', 'percent'];

/** `quota report` as one output; users show by name in the table where `names` knows one. */
export function quotaReportOutput(r: QuotaReport, names: UserNames = NO_NAMES): Output<ReportRow> {
  return { columns: QUOTA_REPORT_COLUMNS, rows: r.rows, json: r, table: (width) => renderReportTable(r, width, names) };
}

/** Users show by name where `names` knows one, their ids shortened as much as `width` needs. */
export function renderReportTable(r: QuotaReport, width = Infinity, names: UserNames = NO_NAMES): string {
  const head = `Quota usage at ${readableInstant(r.now)}; latest snapshot ${r.latest_snapshot === null ? 'none' : readableInstant(r.latest_snapshot)}${r.stale ? ` (STALE: older than ${r.stale_after})` : ''}; ${r.rows.length} rows${r.exempt.length ? `; exempt: ${r.exempt.join(', ')}` : ''}\n`;
  const shown = tableColumns(QUOTA_REPORT_COLUMNS, { order: REPORT_TABLE_ORDER });
  const { head: heads, colAligns, body } = tableParts(shown, r.rows);
  const draw = (users: string[]) => {
    const t = plainTable({ head: heads, colAligns });
    body.forEach((cells, i) => t.push([users[i]!, ...cells.slice(1)]));
    if (r.rows.length === 0) t.push([{ colSpan: shown.length, content: 'no user has a quota' }]);
    return t;
  };
  // The room left for the user column is what the table takes without it.
  const room = width - (drawnWidth(draw(r.rows.map(() => ''))) - 'User'.length);
  const t = draw(new UserColumn(r.rows.map((row) => row.user), names).labels(room));
  const coverage = r.coverage.warning === null ? '' : `Coverage: ${r.coverage.warning}\n`;
  return head + withRules(t, { afterHeader: true, beforeLast: false }) + '\n' + coverage;
}
