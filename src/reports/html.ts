/**
 * The HTML report of `plot`: one self-contained page per namespace and an index page. The
 * chart library (uPlot) and its CSS are given as text and inlined, the data is embedded as
 * JSON, and a Content-Security-Policy forbids any request: the pages work offline, from a
 * file or any static web server. Pure: data in, HTML text out.
 */

export interface ChartSeries {
  label: string;
  /** One value per x; null is a gap (a day no snapshot saw). */
  values: (number | null)[];
  bars: boolean;
}

export interface Chart {
  id: string;
  title: string;
  /** `days`: x is each day's UTC midnight in Unix seconds; `ranks`: x is 0..n-1 with labels. */
  kind: 'days' | 'ranks';
  x: number[];
  /** For `ranks`: what each x stands for (shown on the axis, shortened, and in full on hover). */
  labels?: string[];
  unit: string;
  series: ChartSeries[];
}

export interface TopUsersTable {
  title: string;
  columns: string[];
  rows: { rank: number; user: string; name: string; values: number[] }[];
}

export interface NamespacePage {
  namespace: string;
  from: string;
  to: string;
  days: number;
  charts: Chart[];
  tables: TopUsersTable[];
}

export interface Assets {
  /** uPlot's minified IIFE build (defines the global `uPlot`). */
  js: string;
  css: string;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that can sit inside a <script> element: no `</script>`, no `<!--`. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Library code inside a <script> element: a closing tag in a string would end it early. */
function scriptCode(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

const number = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 4px; }
h2 { font-size: 1.15em; margin: 28px 0 8px; }
p.meta { color: #555; margin: 0 0 16px; }
p.coverage { color: #8a4b00; font-size: 13px; }
.chart { margin: 12px 0 24px; }
table.data { border-collapse: collapse; margin: 8px 0 24px; }
table.data th, table.data td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; }
table.data th.text, table.data td.text { text-align: left; }
table.data td.id { font-family: ui-monospace, monospace; font-size: 12px; color: #555; text-align: left; }
a { color: #1565c0; }
.u-legend .u-value { font-variant-numeric: tabular-nums; }
`;

/** The page's own script: draws each chart of the embedded data with uPlot. */
const DRAW = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('hourmeter-data').textContent);
  var COLORS = ['#1565c0', '#ef6c00', '#2e7d32', '#c62828', '#6a1b9a'];
  var fmt = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
  var compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 2 });
  var HALF_DAY = 43200;
  var HEIGHT = 280;
  function day(ts) { return new Date(ts * 1000).toISOString().slice(0, 10); }
  function width() { return Math.max(320, Math.min(1100, document.documentElement.clientWidth - 64)); }
  function short(s) { s = s || ''; return s.length > 14 ? s.slice(0, 13) + '\\u2026' : s; }
  var drawn = [];
  data.charts.forEach(function (c) {
    var el = document.getElementById(c.id);
    var days = c.kind === 'days';
    var series = [{
      label: days ? 'Day' : 'User',
      value: function (u, v) { return v == null ? '\\u2013' : days ? day(v) : (c.labels[v] || ''); }
    }];
    c.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({
        label: s.label,
        stroke: color,
        fill: color + (s.bars ? 'aa' : '22'),
        width: s.bars ? 0 : 2,
        paths: s.bars ? uPlot.paths.bars({ size: [0.75, 48] }) : undefined,
        points: { show: !s.bars && c.x.length <= 93 },
        value: function (u, v, si, idx) {
          if (idx == null) return '\u2013';
          return v == null ? 'no snapshot' : fmt.format(v) + (c.unit ? ' ' + c.unit : '');
        }
      });
    });
    var xAxis = days ? { space: 60 } : {
      space: 10,
      incrs: [1],
      rotate: c.x.length > 6 ? -25 : 0,
      size: c.x.length > 6 ? 70 : 40,
      values: function (u, splits) { return splits.map(function (i) { return Number.isInteger(i) && i >= 0 && i < c.labels.length ? short(c.labels[i]) : ''; }); }
    };
    var opts = {
      title: c.title,
      width: width(),
      height: HEIGHT,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); },
      scales: {
        // Half a day (or half a rank) on each side, so that the first and last bars show whole.
        x: days
          ? { time: true, range: function (u, min, max) { return min == null ? [0, 86400] : [min - HALF_DAY, max + HALF_DAY]; } }
          : { time: false, range: function () { return [-0.5, Math.max(c.x.length, 1) - 0.5]; } },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; } }
      },
      axes: [xAxis, { size: 60, values: function (u, vals) { return vals.map(function (v) { return compact.format(v); }); } }],
      series: series
    };
    var plot = new uPlot(opts, [c.x].concat(c.series.map(function (s) { return s.values; })), el);
    drawn.push({ id: c.id, title: c.title, plot: plot });
  });
  window.hourmeterCharts = drawn.map(function (d) {
    return { id: d.id, title: d.title, points: d.plot.data[0].length, series: d.plot.series.length - 1 };
  });
  window.addEventListener('resize', function () {
    drawn.forEach(function (d) { d.plot.setSize({ width: width(), height: HEIGHT }); });
  });
})();
`;

function head(title: string, assets: Assets | null): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    assets ? `<style>${assets.css.replace(/<\//g, '<\\/')}</style>` : '',
    `<style>${STYLE}</style>`,
    '</head>',
  ].join('\n');
}

export function namespacePageHtml(page: NamespacePage, assets: Assets): string {
  const ns = escapeHtml(page.namespace);
  const charts = page.charts.map((c) => `<div class="chart" id="${escapeHtml(c.id)}"></div>`);
  const tables = page.tables.map(renderTable);
  return [
    head(`${page.namespace}: resource usage`, assets),
    '<body>',
    `<p><a href="index.html">All namespaces</a></p>`,
    `<h1>${ns}</h1>`,
    `<p class="meta">${escapeHtml(page.from)} to ${escapeHtml(page.to)}, ${page.days} day${page.days === 1 ? '' : 's'}. Hover over a chart for its values.</p>`,
    ...charts,
    ...tables,
    `<script id="hourmeter-data" type="application/json">${scriptJson({ charts: page.charts })}</script>`,
    `<script>${scriptCode(assets.js)}</script>`,
    `<script>${DRAW}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function renderTable(t: TopUsersTable): string {
  const rows = t.rows.map(
    (r) =>
      `<tr><td>${r.rank}</td><td class="text">${escapeHtml(r.name)}</td><td class="id">${escapeHtml(r.user)}</td>${r.values.map((v) => `<td>${number.format(v)}</td>`).join('')}</tr>`,
  );
  return [
    `<h2>${escapeHtml(t.title)}</h2>`,
    '<table class="data">',
    `<thead><tr><th>#</th><th class="text">Name</th><th class="text">User</th>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead>`,
    `<tbody>${rows.length ? rows.join('') : `<tr><td colspan="${t.columns.length + 3}" class="text">no usage</td></tr>`}</tbody>`,
    '</table>',
  ].join('\n');
}

export interface IndexEntry {
  namespace: string;
  /** The namespace page, relative to the index. */
  href: string;
  from: string;
  to: string;
  days: number;
  totals: { label: string; value: number | null }[];
}

/** `coverage`: the warning of the summaries' coverage.json, shown under the table; null for none. */
export function indexPageHtml(entries: IndexEntry[], coverage: string | null = null): string {
  const labels = entries[0]?.totals.map((t) => t.label) ?? [];
  const rows = entries.map(
    (e) =>
      `<tr><td class="text"><a href="${escapeHtml(e.href)}">${escapeHtml(e.namespace)}</a></td><td class="text">${escapeHtml(e.from)} to ${escapeHtml(e.to)}</td><td>${e.days}</td>` +
      e.totals.map((t) => `<td>${t.value === null ? '' : number.format(t.value)}</td>`).join('') +
      '</tr>',
  );
  return [
    head('Resource usage per namespace', null),
    '<body>',
    '<h1>Resource usage per namespace</h1>',
    '<p class="meta">Each page charts a namespace day by day: resource-hours, running and queued jobs, snapshots, and the top users.</p>',
    '<table class="data">',
    `<thead><tr><th class="text">Namespace</th><th class="text">Period</th><th>Days</th>${labels.map((l) => `<th>${escapeHtml(l)}</th>`).join('')}</tr></thead>`,
    `<tbody>${rows.join('')}</tbody>`,
    '</table>',
    ...(coverage === null ? [] : [`<p class="coverage">Coverage: ${escapeHtml(coverage)}</p>`]),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
