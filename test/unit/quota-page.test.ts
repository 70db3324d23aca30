import { describe, expect, it } from 'vitest';
import type { CoverageJson } from '../../src/accounting/coverage.js';
import { decide, NO_REQUEST, quotaReport } from '../../src/quota/decide.js';
import { parseQuotaFile, type QuotaConfig } from '../../src/quota/policy.js';
import { checkQuota, type QuotaAnswer, type QuotaReport } from '../../src/quota/service.js';
import type { UsageInterval } from '../../src/quota/usage.js';
import { renderQuotaAdminPage, renderQuotaPage, type QuotaDay } from '../../src/reports/quota-page.js';
import { renderDecisionTable, renderReportTable } from '../../src/reports/quota.js';
import { userDbOf } from '../../src/userdb/store.js';
import { amounts, us } from '../helpers/builders.js';

/**
 * The quota service's pages, from answers the real decision code computes on hand-made
 * lifetimes. Now is 2024-10-02T00:00Z, the latest snapshot 2024-10-01T23:00Z; "1d" windows
 * are [10-01 00:00, now).
 */

const NOW = us('2024-10-02T00:00:00Z');
const LATEST = us('2024-10-01T23:00:00Z');
const PREFIX = '/services/quota/';

const CONFIG: QuotaConfig = parseQuotaFile(
  `
stale_after: 2h
failure: closed
exempt: [root]
policies:
  - name: mem-day
    resource: memory
    limit: 20 GiB-hours
    window: 1d
    groups: [regular]
  - name: mem-week
    resource: memory
    limit: 1500 GiB-hours
    window: 7d
    groups: [regular]
  - name: cpu
    resource: cpu
    limit: 8 CPU-hours
    window: 1d
    groups: [regular]
  - name: gpu
    resource: gpu
    limit: 10 GPU-hours
    window: 1d
    groups: [regular]
`,
  'quota.yaml',
);

const iv = (start: string, end: string, res: Parameters<typeof amounts>[0], open = false): UsageInterval => ({ startUs: us(start), endUs: us(end), open, amounts: amounts(res) });

const LIVES: UsageInterval[] = [
  // 4 GiB for 18 h: 6 h (24 GiB-hours) in the 1d window, all 72 in the 7d one; leaves the 1d window at 4 per hour.
  iv('2024-09-30T12:00:00Z', '2024-10-01T06:00:00Z', { memMiB: 4096 }),
  // 2 cores from 20:00, running at the latest snapshot: 6 CPU-hours.
  iv('2024-10-01T20:00:00Z', '2024-10-01T23:00:00Z', { cpu: 2 }, true),
  // 1 GPU since midnight, still running: 23 GPU-hours, and it alone fills any 1d window.
  iv('2024-10-01T00:00:00Z', '2024-10-01T23:00:00Z', { gpu: 1 }, true),
];

/** A name that breaks HTML unless escaped. */
const ODD = `<b>"O'Hare" & co</b>`;
const ODD_ESCAPED = '&lt;b&gt;&quot;O&#39;Hare&quot; &amp; co&lt;/b&gt;';

const COVERED: CoverageJson = { covered_fraction: 1, max_gap_hours: 6, stretches: [], until: null, warning: null };

function answerFor(user: string, opts: { intervals?: UsageInterval[]; coverage?: CoverageJson } = {}): QuotaAnswer {
  const d = decide(CONFIG, { user, membership: { groups: ['regular'], from: 'caller' }, request: NO_REQUEST, nowUs: NOW, latestUs: LATEST, intervals: opts.intervals ?? LIVES });
  return { ...d, coverage: opts.coverage ?? COVERED };
}

/** 30 days, 2024-09-03..2024-10-02: CPU rises by a quarter hour a day, memory has one big day, one GPU-hour a day. */
const DAILY: QuotaDay[] = Array.from({ length: 30 }, (_, i) => ({
  date: new Date(Date.UTC(2024, 8, 3 + i)).toISOString().slice(0, 10),
  used: { cpu: i * 0.25, memory: i === 10 ? 1234.5 : 0, gpu: 1, disk: 0 },
}));

/** The body rows of a table as `quota` prints it, cell by cell. */
function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('│'))
    .map((line) =>
      line
        .split('│')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

/** The text of `<span data-field="…">` inside the card of one limit. */
function cardFields(html: string, resource: string, window: string): Record<string, string> {
  const start = html.indexOf(`<section class="card`);
  const card = html.slice(start).split('</section>').find((s) => s.includes(`data-resource="${resource}" data-window="${window}"`));
  if (!card) throw new Error(`no card for ${resource} over ${window}`);
  return Object.fromEntries([...card.matchAll(/<span data-field="([a-z_]+)">([^<]*)<\/span>/g)].map((m) => [m[1]!, m[2]!]));
}

describe('the user quota page', () => {
  const answer = answerFor('alice');
  const page = renderQuotaPage({ answer, daily: DAILY }, { prefix: PREFIX, isAdmin: false });

  it('shows each limit with the very strings of `quota show`', () => {
    const rows = tableRows(renderDecisionTable(answer, { request: false }));
    const [head, ...body] = rows;
    expect(head).toEqual(['Resource', 'Window', 'Used', 'Limit', 'Unit', 'Remaining', '% used', 'Allowed', 'Frees up at', 'Policies']);
    expect(body).toHaveLength(4);
    for (const [resource, window, used, limit, , remaining, percent, allowed, freesUp] of body) {
      const fields = cardFields(page, resource!, window!);
      expect(fields).toEqual({ used, limit, remaining, percent, ...(allowed === 'no' ? { retry_at: freesUp } : {}) });
    }
    // Worked out by hand, so that a change in both renderers is caught too.
    expect(cardFields(page, 'cpu', '1d')).toEqual({ used: '6.00', limit: '8.00', remaining: '2.00', percent: '75.0%' });
    expect(cardFields(page, 'memory', '1d')).toEqual({ used: '24.00', limit: '20.00', remaining: '0.00', percent: '120.0%', retry_at: '2024-10-02T01:00:00Z' });
    expect(cardFields(page, 'memory', '7d')).toEqual({ used: '72.00', limit: '1,500.00', remaining: '1,428.00', percent: '4.8%' });
    expect(cardFields(page, 'gpu', '1d')).toEqual({ used: '23.00', limit: '10.00', remaining: '0.00', percent: '230.0%', retry_at: 'never' });
    expect(page).toContain('<dt>Limit</dt><dd><span data-field="limit">1,500.00</span> GiB-hours</dd>');
  });

  it('shows the % used as a bar, full when over the limit', () => {
    expect(page).toContain('<section class="card" data-resource="cpu" data-window="1d">\n<h3>cpu over the last 1d</h3>\n<div class="bar" aria-hidden="true"><span style="width: 75.0%"></span></div>');
    expect(page).toContain('<section class="card over" data-resource="memory" data-window="1d">\n<h3>memory over the last 1d</h3>\n<div class="bar" aria-hidden="true"><span style="width: 100.0%"></span></div>');
    expect(page).toContain('data-window="7d">\n<h3>memory over the last 7d</h3>\n<div class="bar" aria-hidden="true"><span style="width: 4.8%"></span></div>');
  });

  it('over a limit: when it frees up, or never and why', () => {
    expect(page).toContain('<p class="retry">Frees up at <span data-field="retry_at">2024-10-02T01:00:00Z</span> (in 1h 0m)</p>');
    expect(page).toContain(
      '<p class="retry">Frees up: <span data-field="retry_at">never</span> (not while the running allocations keep running: they alone use the limit within a window)</p>',
    );
    // Limits within bounds have no retry line.
    expect(page.match(/class="retry"/g)).toHaveLength(2);
  });

  it('shows the verdict, the message, the groups and how fresh the data is', () => {
    expect(page).toContain('<div class="verdict denied" data-field="decision">\n<p><strong>DENIED</strong>: quota exceeded: memory over 1d, gpu over 1d</p>');
    expect(page).toContain(
      '<p data-field="message">Quota exceeded for alice: memory over the last 1d: used 24.00 of 20.00 GiB-hours: 4.00 GiB-hours over; it frees up at 2024-10-02T01:00:00Z (in 1h 0m); gpu over the last 1d: used 23.00 of 10.00 GPU-hours: 13.00 GPU-hours over; it frees up only once your running servers stop.</p>',
    );
    expect(page).toContain('<p class="meta">As of 2024-10-02T00:00:00Z. Groups: <span data-field="groups">regular</span>.</p>');
    expect(page).toContain('<p class="meta" data-field="freshness">Data: latest snapshot 2024-10-01T23:00:00Z (1h 0m old, stale after 2h).</p>');
    expect(page).not.toContain('Coverage:');
  });

  it('within every limit: ALLOWED, no message', () => {
    const ok = renderQuotaPage({ answer: answerFor('alice', { intervals: [LIVES[1]!] }), daily: DAILY }, { prefix: PREFIX, isAdmin: false });
    expect(ok).toContain('<div class="verdict allowed" data-field="decision">\n<p><strong>ALLOWED</strong>: within every quota</p>\n</div>');
    expect(ok).not.toContain('data-field="message"');
    expect(ok).not.toContain('class="retry"');
  });

  it('says when the data is stale, and shows the coverage warning', () => {
    const stale = decide(CONFIG, { user: 'alice', membership: { groups: ['regular'], from: 'caller' }, request: NO_REQUEST, nowUs: NOW, latestUs: us('2024-10-01T21:00:00Z'), intervals: LIVES });
    const coverage = { ...COVERED, covered_fraction: 0.5, warning: 'snapshots cover 50.0% of the window <gap>' };
    const html = renderQuotaPage({ answer: { ...stale, coverage }, daily: DAILY }, { prefix: PREFIX, isAdmin: false });
    expect(html).toContain(
      '<p class="warning" data-field="freshness">Stale data: latest snapshot 2024-10-01T21:00:00Z (3h 0m old, stale after 2h); stale: failure: closed applied.</p>',
    );
    expect(html).toContain('<p class="warning">Coverage: snapshots cover 50.0% of the window &lt;gap&gt;</p>');
    expect(html).toContain('<div class="verdict denied" data-field="decision">');
  });

  it('escapes the user name everywhere', () => {
    const html = renderQuotaPage({ answer: answerFor(ODD), daily: DAILY }, { prefix: PREFIX, isAdmin: true });
    expect(html).toContain(`<title>Quota: ${ODD_ESCAPED}</title>`);
    expect(html).toContain(`<h1>Quota of <span data-field="user">${ODD_ESCAPED}</span></h1>`);
    expect(html).toContain(`<p data-field="message">Quota exceeded for ${ODD_ESCAPED}: memory over the last 1d`);
    expect(html).not.toContain('<b>');
    expect(html).not.toContain(`O'Hare`);
    expect(html).not.toContain('"O');
  });

  it('is self-contained: a strict CSP, a viewport, no script and no external address', () => {
    expect(page).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">`,
    );
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/https?:\/\//);
    expect(page).not.toMatch(/\bsrc=|<link|<img|<iframe|@import|url\(/i);
  });

  it('charts the last 30 days of each resource with a limit: one bar per day, titled with the day and amount', () => {
    const figures = [...page.matchAll(/<figure class="chart" data-resource="([a-z]+)">([\s\S]*?)<\/figure>/g)];
    expect(figures.map((f) => f[1])).toEqual(['cpu', 'memory', 'gpu']);
    for (const [, , svg] of figures) expect(svg!.match(/<rect class="day"/g)).toHaveLength(30);
    const cpu = figures[0]![2]!;
    expect(cpu).toContain('<svg viewBox="0 0 320 120" role="img" aria-labelledby="chart-cpu">\n<title id="chart-cpu">cpu: CPU-hours per day, 2024-09-03 to 2024-10-02 (UTC); most in a day 7.25</title>');
    // Slots of 320/30 px, bars 80% of a slot; the largest day (7.25) is 86 px high.
    expect(cpu).toContain('<rect class="day" x="1.07" y="100" width="8.53" height="0"><title>2024-09-03: 0.00 CPU-hours</title></rect>');
    expect(cpu).toContain('<rect class="day" x="150.4" y="58.48" width="8.53" height="41.52"><title>2024-09-17: 3.50 CPU-hours</title></rect>');
    expect(cpu).toContain('<rect class="day" x="310.4" y="14" width="8.53" height="86"><title>2024-10-02: 7.25 CPU-hours</title></rect>');
    expect(figures[1]![2]).toContain('<title>2024-09-13: 1,234.50 GiB-hours</title>');
    expect(figures[2]![2]).toContain('<title>2024-10-02: 1.00 GPU-hours</title>');
  });

  it('links to the admin page for admins only', () => {
    expect(page).not.toContain('admin');
    const admin = renderQuotaPage({ answer, daily: DAILY }, { prefix: PREFIX, isAdmin: true });
    expect(admin).toContain(`<p><a href="/services/quota/admin">Every user's quota</a></p>`);
    // A prefix without its trailing slash still gives one slash.
    expect(renderQuotaPage({ answer, daily: DAILY }, { prefix: '/services/quota', isAdmin: true })).toContain('<a href="/services/quota/admin">');
  });

  it('says so when exempt, and charts CPU and memory when no limit applies', () => {
    const root = renderQuotaPage({ answer: answerFor('root'), daily: DAILY }, { prefix: PREFIX, isAdmin: false });
    expect(root).toContain('<p><strong>ALLOWED</strong>: root is exempt from quotas</p>');
    expect(root).toContain('<p data-field="limits">You are exempt from quotas: no limit applies to you.</p>');
    expect(root).not.toContain('<section class="card');
    expect([...root.matchAll(/<figure class="chart" data-resource="([a-z]+)">/g)].map((m) => m[1])).toEqual(['cpu', 'memory']);

    const nobody = decide(CONFIG, { user: 'carol', membership: { groups: [], from: 'none' }, request: NO_REQUEST, nowUs: NOW, latestUs: LATEST, intervals: [] });
    const html = renderQuotaPage({ answer: { ...nobody, coverage: COVERED }, daily: [] }, { prefix: PREFIX, isAdmin: false });
    expect(html).toContain('<p><strong>ALLOWED</strong>: no quota applies to carol</p>');
    expect(html).toContain('<p data-field="limits">No quota applies to you.</p>');
    expect(html).toContain('<p>No daily usage to show.</p>');
  });

  it('with no snapshot at all (the real path of checkQuota without data): no limits, the failure rule decides', () => {
    const answer = checkQuota(null, CONFIG, userDbOf(), { user: 'alice', groups: ['regular'], request: NO_REQUEST, nowUs: NOW });
    const html = renderQuotaPage({ answer, daily: DAILY }, { prefix: PREFIX, isAdmin: false });
    expect(html).toContain('<p class="warning" data-field="freshness">Stale data: no snapshot; stale: failure: closed applied.</p>');
    expect(html).toContain('<p data-field="limits">No limits can be shown: there is no accounting data to measure them against.</p>');
    expect(html).toContain(
      '<p data-field="message">The quota of alice cannot be checked: there is no accounting data (no readable snapshot); new requests are refused until it is up to date.</p>',
    );
    expect(html).toMatch(/<p class="warning">Coverage: .+<\/p>/);
  });

  it('fits a phone: cards in a grid that shrinks to one column, long names wrap, charts scale', () => {
    expect(page).toContain('.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 260px), 1fr));');
    expect(page).toContain('overflow-wrap: anywhere;');
    expect(page).toContain('.chart svg { width: 100%; height: auto;');
    expect(page).toContain('* { box-sizing: border-box; }');
  });
});

describe('the admin quota page', () => {
  const users = [
    { user: 'alice', membership: { groups: ['regular'], from: 'file' as const }, intervals: LIVES },
    { user: ODD, membership: { groups: ['regular', 'x&y'], from: 'file' as const }, intervals: [] },
  ];
  const report: QuotaReport = {
    now: '2024-10-02T00:00:00.000000Z',
    latest_snapshot: '2024-10-01T23:00:00.000000Z',
    coverage: { ...COVERED, warning: 'no snapshot from 2024-09-28 to 2024-09-29' },
    stale: false,
    stale_after: '2h',
    exempt: ['root'],
    rows: quotaReport(CONFIG, users, NOW),
  };
  const page = renderQuotaAdminPage(report, { prefix: PREFIX });

  it('lists every row of `quota report`, in its order, with its strings', () => {
    const trs = [...page.matchAll(/<tr><td[\s\S]*?<\/tr>/g)].map((m) => [...m[0].matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((c) => c[1]!));
    const td = (user: string, groups: string, resource: string, window: string, used: string, limit: string, unit: string, remaining: string, pct: string) => [user, groups, resource, window, used, limit, unit, remaining, pct];
    expect(trs).toEqual([
      td('alice', 'regular', 'gpu', '1d', '23.00', '10.00', 'GPU-hours', '0.00', '230.0%'),
      td('alice', 'regular', 'memory', '1d', '24.00', '20.00', 'GiB-hours', '0.00', '120.0%'),
      td('alice', 'regular', 'cpu', '1d', '6.00', '8.00', 'CPU-hours', '2.00', '75.0%'),
      td('alice', 'regular', 'memory', '7d', '72.00', '1,500.00', 'GiB-hours', '1,428.00', '4.8%'),
      td(ODD_ESCAPED, 'regular x&amp;y', 'cpu', '1d', '0.00', '8.00', 'CPU-hours', '8.00', '0.0%'),
      td(ODD_ESCAPED, 'regular x&amp;y', 'memory', '1d', '0.00', '20.00', 'GiB-hours', '20.00', '0.0%'),
      td(ODD_ESCAPED, 'regular x&amp;y', 'memory', '7d', '0.00', '1,500.00', 'GiB-hours', '1,500.00', '0.0%'),
      td(ODD_ESCAPED, 'regular x&amp;y', 'gpu', '1d', '0.00', '10.00', 'GPU-hours', '10.00', '0.0%'),
    ]);
    // The same strings as the terminal table (which has no Remaining column).
    const terminal = tableRows(renderReportTable(report)).slice(1);
    const unescape = (s: string | undefined) => (s ?? '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    expect(trs.map(([user, groups, resource, window, used, limit, unit, , pct]) => [user, groups, resource, window, used, limit, unit, pct].map(unescape))).toEqual(terminal);
    expect(page).toContain(
      '<tr><td data-label="User">alice</td><td data-label="Groups">regular</td><td data-label="Resource">gpu</td><td data-label="Window">1d</td><td class="num" data-label="Used">23.00</td>',
    );
  });

  it('shows freshness, exempt users and the coverage warning; links back; self-contained', () => {
    expect(page).toContain('<p class="meta" data-field="freshness">As of 2024-10-02T00:00:00Z; latest snapshot 2024-10-01T23:00:00Z; 8 rows.</p>');
    expect(page).toContain('<p class="meta">Exempt: root.</p>');
    expect(page).toContain('<p class="warning">Coverage: no snapshot from 2024-09-28 to 2024-09-29</p>');
    expect(page).toContain('<p><a href="/services/quota/">Your own quota</a></p>');
    expect(page).not.toContain('<b>');
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/https?:\/\//);
    expect(page).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">`);
    // On a phone each row becomes a block of labelled lines instead of a wide table.
    expect(page).toContain('@media (max-width: 640px) {\n  table.report thead { display: none; }');
    expect(page).toContain('table.report td::before { content: attr(data-label);');
  });

  it('says when stale, and when no user has a quota', () => {
    const empty = renderQuotaAdminPage({ ...report, latest_snapshot: null, stale: true, exempt: [], coverage: COVERED, rows: [] }, { prefix: PREFIX });
    expect(empty).toContain('<p class="warning" data-field="freshness">As of 2024-10-02T00:00:00Z; latest snapshot none (STALE: older than 2h); 0 rows.</p>');
    expect(empty).toContain('<tbody><tr><td colspan="9">no user has a quota</td></tr></tbody>');
    expect(empty).not.toContain('Exempt:');
    expect(empty).not.toContain('Coverage:');
  });
});
