import type { PolicyDecision, ReportRow } from '../quota/decide.js';
import { DISPLAY_UNIT, type QuotaResource } from '../quota/policy.js';
import type { QuotaAnswer, QuotaReport } from '../quota/service.js';
import { formatSpan, readableInstant } from '../util/time.js';
import { escapeHtml } from './html.js';
import type { Column } from './output.js';
import { describeData, POLICY_COLUMNS, QUOTA_REPORT_COLUMNS } from './quota.js';
import { fixed } from './table.js';

/**
 * The pages of the JupyterHub quota service: a user's own quota, and every user's for admins.
 * Pure: a quota answer (or report) in, HTML text out. The pages run no script and load
 * nothing: the charts are inline SVG, and the CSP forbids every request.
 */

/** One UTC day of a user's usage, in each resource's quota unit (CPU-hours, GiB-hours...). */
export interface QuotaDay {
  /** YYYY-MM-DD, UTC. */
  date: string;
  used: Record<QuotaResource, number>;
}

export interface QuotaPageData {
  answer: QuotaAnswer;
  /** The last 30 days, oldest first. */
  daily: QuotaDay[];
}

/** No script at all (unlike the plot pages), inline styles, images only as data: URLs. */
export const QUOTA_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const STYLE = `
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; padding: 12px; max-width: 980px; color: #222; background: #fff; overflow-wrap: anywhere; }
h1 { font-size: 1.4em; margin: 8px 0 4px; }
h2 { font-size: 1.15em; margin: 24px 0 8px; }
h3 { font-size: 1em; margin: 0 0 6px; }
p { margin: 6px 0; }
.meta { color: #555; font-size: 13px; }
.warning { color: #8a4b00; font-size: 13px; }
.verdict { padding: 8px 12px; border-radius: 6px; border: 1px solid #ccc; }
.verdict.allowed { background: #eef7ee; border-color: #2e7d32; }
.verdict.denied, .verdict.unable { background: #fdeeee; border-color: #c62828; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 260px), 1fr)); gap: 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; min-width: 0; }
.card.over { border-color: #c62828; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
.card dt { color: #555; }
.card dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: 8px; background: #e6e6e6; border-radius: 4px; overflow: hidden; margin: 8px 0 4px; }
.bar span { display: block; height: 100%; background: #1565c0; }
.over .bar span { background: #c62828; }
.retry { font-size: 13px; }
.chart { margin: 0; }
.chart svg { width: 100%; height: auto; max-width: 640px; display: block; }
.chart rect.day { fill: #1565c0; }
.chart text { font-size: 12px; fill: #555; }
table.report { border-collapse: collapse; width: 100%; }
table.report th, table.report td { padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }
table.report td.num, table.report th.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: #1565c0; }
@media (max-width: 640px) {
  table.report thead { display: none; }
  table.report tr { display: block; border-bottom: 2px solid #bbb; padding: 4px 0; }
  table.report td, table.report td.num { display: flex; justify-content: space-between; gap: 12px; border: 0; padding: 2px 4px; text-align: right; }
  table.report td::before { content: attr(data-label); color: #555; text-align: left; }
}
`;

function pageHead(title: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${QUOTA_PAGE_CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
  ].join('\n');
}

/** The cell a `quota` table prints for this column: the page shows the very same strings. */
function cellOf<R>(columns: readonly Column<R>[], key: string): (row: R) => string {
  const table = columns.find((c) => c.key === key)?.table;
  if (!table || 'omitted' in table) throw new Error(`the quota table has no ${key} column`);
  return table.cell;
}

const policyCell = {
  used: cellOf(POLICY_COLUMNS, 'used'),
  limit: cellOf(POLICY_COLUMNS, 'limit'),
  remaining: cellOf(POLICY_COLUMNS, 'remaining'),
  percent: cellOf(POLICY_COLUMNS, 'percent'),
  retryAt: cellOf(POLICY_COLUMNS, 'retry_at'),
};

const reportCell = {
  used: cellOf(QUOTA_REPORT_COLUMNS, 'used'),
  limit: cellOf(QUOTA_REPORT_COLUMNS, 'limit'),
  percent: cellOf(QUOTA_REPORT_COLUMNS, 'percent'),
};

/** `/services/quota/` + `admin`, with one slash between them whichever way the prefix ends. */
function under(prefix: string, path: string): string {
  return prefix.replace(/\/*$/, '/') + path;
}

/** The width of a % bar: a limit of zero with usage (null) and anything over 100 fill it. */
function barWidth(percent: number | null): string {
  return `${fixed(percent === null ? 100 : Math.max(0, Math.min(100, percent)), 1)}%`;
}

/** The headline: what `quota show` says first, for people. */
function verdict(a: QuotaAnswer): string {
  const out = [`<div class="verdict ${a.decision}" data-field="decision">`, `<p><strong>${a.decision.toUpperCase()}</strong>: ${escapeHtml(a.reason)}</p>`];
  if (a.message !== null) out.push(`<p data-field="message">${escapeHtml(a.message)}</p>`);
  out.push('</div>');
  return out.join('\n');
}

function retryLine(p: PolicyDecision): string {
  if (p.allowed) return '';
  const at = escapeHtml(policyCell.retryAt(p));
  if (p.retry_at !== null) {
    const wait = p.retry_in_seconds === null ? '' : ` (in ${formatSpan(p.retry_in_seconds * 1e6)})`;
    return `<p class="retry">Frees up at <span data-field="retry_at">${at}</span>${wait}</p>`;
  }
  return `<p class="retry">Frees up: <span data-field="retry_at">${at}</span>${p.retry_note ? ` (${escapeHtml(p.retry_note)})` : ''}</p>`;
}

function limitCard(p: PolicyDecision): string {
  const unit = escapeHtml(p.unit);
  const num = (field: string, text: string) => `<span data-field="${field}">${escapeHtml(text)}</span>`;
  return [
    `<section class="card${p.allowed ? '' : ' over'}" data-resource="${escapeHtml(p.resource)}" data-window="${escapeHtml(p.window)}">`,
    `<h3>${escapeHtml(p.resource)} over the last ${escapeHtml(p.window)}</h3>`,
    `<div class="bar" aria-hidden="true"><span style="width: ${barWidth(p.percent)}"></span></div>`,
    '<dl>',
    `<dt>Used</dt><dd>${num('used', policyCell.used(p))} ${unit}</dd>`,
    `<dt>Limit</dt><dd>${num('limit', policyCell.limit(p))} ${unit}</dd>`,
    `<dt>Remaining</dt><dd>${num('remaining', policyCell.remaining(p))} ${unit}</dd>`,
    `<dt>% used</dt><dd>${num('percent', policyCell.percent(p))}</dd>`,
    '</dl>',
    retryLine(p),
    `<p class="meta">${p.allowed ? 'Within this limit' : 'Over this limit'}; from ${escapeHtml(p.policies.join(', '))}.</p>`,
    '</section>',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

/** Why there are no limit cards, when there are none. */
function noLimits(a: QuotaAnswer): string {
  if (a.exempt) return '<p data-field="limits">You are exempt from quotas: no limit applies to you.</p>';
  if (a.reason_code === 'no_limits') return '<p data-field="limits">No quota applies to you.</p>';
  return '<p data-field="limits">No limits can be shown: there is no accounting data to measure them against.</p>';
}

/** The resources charted: those with a limit, in the answer's (quota) order; CPU and memory when none. */
function chartedResources(a: QuotaAnswer): QuotaResource[] {
  const limited = [...new Set(a.policies.map((p) => p.resource))];
  return limited.length > 0 ? limited : ['cpu', 'memory'];
}

const CHART = { width: 320, height: 120, top: 14, bottom: 100 };
const round2 = (x: number) => Math.round(x * 100) / 100;

/** One bar per day, each with its day and amount as its title; the largest day sets the scale. */
function dailyChart(resource: QuotaResource, daily: readonly QuotaDay[]): string {
  const unit = DISPLAY_UNIT[resource].name;
  const first = daily[0]!.date;
  const last = daily[daily.length - 1]!.date;
  const values = daily.map((d) => d.used[resource] ?? 0);
  const max = Math.max(0, ...values);
  const slot = CHART.width / daily.length;
  const span = CHART.bottom - CHART.top;
  const id = `chart-${resource}`;
  const title = `${resource}: ${unit} per day, ${first} to ${last} (UTC); most in a day ${fixed(max)}`;
  const bars = daily.map((d, i) => {
    const h = max > 0 ? round2((values[i]! / max) * span) : 0;
    return `<rect class="day" x="${round2(i * slot + slot * 0.1)}" y="${round2(CHART.bottom - h)}" width="${round2(slot * 0.8)}" height="${h}"><title>${escapeHtml(d.date)}: ${fixed(values[i]!)} ${unit}</title></rect>`;
  });
  return [
    `<figure class="chart" data-resource="${resource}">`,
    `<svg viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-labelledby="${id}">`,
    `<title id="${id}">${escapeHtml(title)}</title>`,
    `<line x1="0" y1="${CHART.bottom}" x2="${CHART.width}" y2="${CHART.bottom}" stroke="#999" stroke-width="1"/>`,
    ...bars,
    `<text x="0" y="10">${fixed(max)} ${unit}</text>`,
    `<text x="0" y="${CHART.height - 4}">${escapeHtml(first)}</text>`,
    `<text x="${CHART.width}" y="${CHART.height - 4}" text-anchor="end">${escapeHtml(last)}</text>`,
    '</svg>',
    `<figcaption class="meta">${escapeHtml(resource)}, ${unit} per day</figcaption>`,
    '</figure>',
  ].join('\n');
}

/** `GET <prefix>/`: the logged-in user's limits, the verdict, and their last 30 days. */
export function renderQuotaPage(d: QuotaPageData, o: { prefix: string; isAdmin: boolean }): string {
  const a = d.answer;
  const groups = a.groups.length > 0 ? a.groups.join(', ') : '(none)';
  const body = [
    `<h1>Quota of <span data-field="user">${escapeHtml(a.user)}</span></h1>`,
    `<p class="meta">As of ${escapeHtml(readableInstant(a.now))}. Groups: <span data-field="groups">${escapeHtml(groups)}</span>.</p>`,
    `<p class="${a.data.stale ? 'warning' : 'meta'}" data-field="freshness">${a.data.stale ? 'Stale data: ' : 'Data: '}${escapeHtml(describeData(a))}.</p>`,
    ...(a.coverage.warning === null ? [] : [`<p class="warning">Coverage: ${escapeHtml(a.coverage.warning)}</p>`]),
    verdict(a),
    '<h2>Limits</h2>',
    a.policies.length > 0 ? `<div class="cards">\n${a.policies.map(limitCard).join('\n')}\n</div>` : noLimits(a),
    '<h2>The last 30 days</h2>',
    d.daily.length > 0 ? `<div class="cards">\n${chartedResources(a).map((r) => dailyChart(r, d.daily)).join('\n')}\n</div>` : '<p>No daily usage to show.</p>',
    ...(o.isAdmin ? [`<p><a href="${escapeHtml(under(o.prefix, 'admin'))}">Every user's quota</a></p>`] : []),
  ];
  return [pageHead(`Quota: ${a.user}`), '<body>', '<main>', ...body, '</main>', '</body>', '</html>', ''].join('\n');
}

const REPORT_HEADERS = ['User', 'Groups', 'Resource', 'Window', 'Used', 'Limit', 'Unit', 'Remaining', '% used'];
const NUMERIC = new Set(['Used', 'Limit', 'Remaining', '% used']);

function reportRow(r: ReportRow): string {
  const cells = [r.user, r.groups.join(' '), r.resource, r.window, reportCell.used(r), reportCell.limit(r), r.unit, fixed(r.remaining), reportCell.percent(r)];
  const tds = cells.map((c, i) => {
    const label = REPORT_HEADERS[i]!;
    return `<td${NUMERIC.has(label) ? ' class="num"' : ''} data-label="${label}">${escapeHtml(c)}</td>`;
  });
  return `<tr>${tds.join('')}</tr>`;
}

/** `GET <prefix>/admin`: every row of `quota report`, in its order. */
export function renderQuotaAdminPage(r: QuotaReport, o: { prefix: string }): string {
  const latest = r.latest_snapshot === null ? 'none' : readableInstant(r.latest_snapshot);
  const body = [
    '<h1>Quota usage of every user</h1>',
    `<p class="${r.stale ? 'warning' : 'meta'}" data-field="freshness">As of ${escapeHtml(readableInstant(r.now))}; latest snapshot ${escapeHtml(latest)}${r.stale ? ` (STALE: older than ${escapeHtml(r.stale_after)})` : ''}; ${r.rows.length} row${r.rows.length === 1 ? '' : 's'}.</p>`,
    ...(r.exempt.length > 0 ? [`<p class="meta">Exempt: ${escapeHtml(r.exempt.join(', '))}.</p>`] : []),
    ...(r.coverage.warning === null ? [] : [`<p class="warning">Coverage: ${escapeHtml(r.coverage.warning)}</p>`]),
    '<table class="report">',
    `<thead><tr>${REPORT_HEADERS.map((h) => `<th${NUMERIC.has(h) ? ' class="num"' : ''}>${h}</th>`).join('')}</tr></thead>`,
    `<tbody>${r.rows.length > 0 ? r.rows.map(reportRow).join('\n') : `<tr><td colspan="${REPORT_HEADERS.length}">no user has a quota</td></tr>`}</tbody>`,
    '</table>',
    `<p><a href="${escapeHtml(under(o.prefix, ''))}">Your own quota</a></p>`,
  ];
  return [pageHead('Quota usage of every user'), '<body>', '<main>', ...body, '</main>', '</body>', '</html>', ''].join('\n');
}
