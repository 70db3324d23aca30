import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from '../helpers/browser.js';
import { parseCsv, toCsv } from '../../src/reports/csv.js';
import { TIMESERIES_COLUMNS, USERS_COLUMNS, FULL_COLUMNS } from '../../src/reports/summaries.js';
import { FIXTURES, ROOT, run, tempDir, withAi4osFixture } from '../helpers/cli.js';

/**
 * Opens the pages `plot` writes in a real browser: Debian's chromium, driven by
 * playwright-core. HOURMETER_CHROMIUM names another binary. Without a browser the test is
 * skipped on a workstation; in CI (CI set) a missing browser fails it.
 */

const executablePath = findChromium();
if (!executablePath && process.env.CI) throw new Error('chromium not found: CI installs it (apt-get install chromium, see .ci/run), or set HOURMETER_CHROMIUM');
const ARTIFACTS = join(ROOT, 'test-artifacts');

interface Drawn {
  id: string;
  title: string;
  points: number;
  series: number;
}

/** Loads a page, noting console errors, page errors and any request that is not a local file. */
async function open(browser: Browser, file: string): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:')) return route.continue();
    requests.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, problems, requests };
}

/** Pixels a chart's canvas has painted (not transparent). Runs in the page (no DOM types here). */
function paintedPixels(page: Page, id: string): Promise<number> {
  return page.evaluate(`(() => {
    const canvas = document.querySelector('#${id} canvas');
    if (!canvas || canvas.width === 0) return 0;
    const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  })()`);
}

/** What the page says it drew (see the drawing script in reports/html.ts). */
function drawnCharts(page: Page): Promise<Drawn[]> {
  return page.evaluate('window.hourmeterCharts');
}

describe.skipIf(!executablePath)('hourmeter plot in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: executablePath!, args: ['--no-sandbox', '--disable-gpu'] });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('draws every chart with one point per day or per top user, without errors or requests', async () => {
    const cwd = withAi4osFixture();
    expect(run(['userdb', 'import', join(FIXTURES, 'ai4os/user-db.json')], { cwd }).code).toBe(0);
    expect(run(['summarize'], { cwd }).code).toBe(0);
    const r = run(['plot'], { cwd });
    // The fixture misses 2024-09-06: the summaries' coverage line is told, and their
    // coverage.json copied beside the pages.
    const coverage = 'no snapshot between 2024-09-05T18:00:30Z and 2024-09-07T00:00:48Z (30.01 h): 1.25 of 12 days are unknown, not zero';
    expect(r).toMatchObject({ code: 0, stderr: `hourmeter: warning: ${coverage}\n` });
    expect(readdirSync(join(cwd, 'htmls')).sort()).toEqual(['ai4eosc.html', 'ai4life.html', 'coverage.json', 'imagine.html', 'index.html']);

    for (const ns of ['ai4eosc', 'ai4life', 'imagine']) {
      const days = parseCsv(readFileSync(join(cwd, 'summaries', `${ns}-timeseries.csv`), 'utf8'), ';').rows.length;
      const users = parseCsv(readFileSync(join(cwd, 'summaries', `${ns}-users-agg.csv`), 'utf8'), ';').rows;
      const withUsage = (c: string) => Math.min(10, users.filter((u) => Number(u[c]) > 0).length);
      const { page, problems, requests } = await open(browser, join(cwd, 'htmls', `${ns}.html`));
      const charts = await drawnCharts(page);
      expect(charts.map((c) => [c.id, c.points, c.series])).toEqual([
        ['chart-cpu_hours', days, 1],
        ['chart-gpu_hours', days, 1],
        ['chart-memory_gib_hours', days, 1],
        ['chart-disk_gib_hours', days, 1],
        ['chart-cpu_mhz_hours', days, 1],
        ['chart-jobs', days, 2],
        ['chart-snapshots', days, 1],
        ['chart-top-cpu_hours', withUsage('cpu_hours'), 1],
        ['chart-top-gpu_hours', withUsage('gpu_hours'), 1],
      ]);
      expect(days).toBe(12);
      for (const c of charts) expect(await paintedPixels(page, c.id), c.id).toBeGreaterThan(500);

      // Values on hover: the legend shows the day and its CPU-hours under the cursor.
      const plot = page.locator('#chart-cpu_hours .u-over');
      const box = (await plot.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const legend = await page.locator('#chart-cpu_hours .u-legend .u-value').allTextContents();
      expect(legend[0]).toMatch(/^2024-09-\d\d$/);
      expect(legend[1]).toMatch(/^[\d,]+(\.\d+)?$/);
      await page.screenshot({ path: join(ARTIFACTS, `plot-${ns}.png`), fullPage: true });
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      await page.close();
    }

    const { page, problems, requests } = await open(browser, join(cwd, 'htmls', 'index.html'));
    const links = await page.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect(links).toEqual(['ai4eosc.html', 'ai4life.html', 'imagine.html']);
    expect(await page.locator('p.coverage').textContent()).toBe(`Coverage: ${coverage}`);
    await page.screenshot({ path: join(ARTIFACTS, 'plot-index.png'), fullPage: true });
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it('draws a year of days, and names with markup stay text', async () => {
    // Summaries of 2024 (366 days) for a namespace and a user whose names are markup.
    const cwd = tempDir();
    const dir = join(cwd, 'summaries');
    mkdirSync(dir);
    const ns = '<b>lab</b>';
    const base = encodeURIComponent(ns);
    const days = Array.from({ length: 366 }, (_, i) => new Date(Date.UTC(2024, 0, 1 + i)).toISOString().slice(0, 10));
    const rows = days.map((date, i) => ({
      date,
      hours: 24,
      snapshots: i % 50 === 7 ? 0 : 4,
      cpu_hours: 100 + (i % 30),
      gpu_hours: i % 7,
      memory_gib_hours: 500,
      disk_gib_hours: 800,
      cpu_mhz_hours: 1000,
      cpu_cores_avg: 4,
      gpus_avg: 0,
      memory_gib_avg: 20,
      disk_gib_avg: 33,
      cpu_mhz_avg: 41,
      running_jobs_avg: i % 50 === 7 ? '' : 3,
      queued_jobs_avg: i % 50 === 7 ? '' : 1,
      jobs: 3,
      users: 2,
    }));
    writeFileSync(join(dir, `${base}-timeseries.csv`), toCsv(TIMESERIES_COLUMNS, rows, ';'));
    const evil = '<img src=x onerror="console.error(1)">';
    writeFileSync(
      join(dir, `${base}-users-agg.csv`),
      toCsv(USERS_COLUMNS, [{ user: evil, cpu_hours: 5, gpu_hours: 1, memory_gib_hours: 1, disk_gib_hours: 1, cpu_mhz_hours: 1, jobs: 1, allocations: 1, first_day: '2024-01-01', last_day: '2024-12-31' }], ';'),
    );
    writeFileSync(join(dir, `${base}-full-agg.csv`), toCsv(FULL_COLUMNS, [{ from: '2024-01-01', to: '2024-12-31', timezone: 'UTC', cpu_hours: 1, gpu_hours: 1, memory_gib_hours: 1, disk_gib_hours: 1, cpu_mhz_hours: 1, jobs: 1, users: 1, allocations: 1, first_day: '', last_day: '' }], ';'));
    expect(run(['plot', '--quiet'], { cwd })).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const started = performance.now();
    const { page, problems, requests } = await open(browser, join(cwd, 'htmls', `${base}.html`));
    const loadMs = performance.now() - started;
    const charts = await drawnCharts(page);
    expect(charts.filter((c) => !c.id.startsWith('chart-top')).map((c) => c.points)).toEqual(Array(7).fill(366));
    expect(charts.filter((c) => c.id.startsWith('chart-top')).map((c) => c.points)).toEqual([1, 1]);
    expect(await page.locator('h1').textContent()).toBe(ns);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('table.data td.id').first().textContent()).toBe(evil);
    await page.screenshot({ path: join(ARTIFACTS, 'plot-year.png'), fullPage: true });
    writeFileSync(join(ARTIFACTS, 'plot-year.json'), JSON.stringify({ days: 366, load_ms: Math.round(loadMs), html_bytes: readFileSync(join(cwd, 'htmls', `${base}.html`)).length }) + '\n');
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });
});
