import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, startServe, tempDir } from '../helpers/cli.js';
import { monthlyFolder } from '../helpers/monthly-folder.js';

/**
 * `hourmeter serve` as a process, over real HTTP on 127.0.0.1, on the hand-computed
 * folder of test/helpers/monthly-folder.ts (A: 2 cores x 24 h with 1 GPU; C: 4 cores x 6 h;
 * B: 1 core, open for 36 h up to the last snapshot, 2024-10-01 12:00).
 */

const TOKEN = 's3cret-token';
function serve(cwd: string, extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  writeFileSync(join(cwd, 'token'), `${TOKEN}\n`);
  return startServe(cwd, ['--token-file', 'token', '--now', '2024-10-01T14:00:00Z', '--workers', '2', ...extra]);
}

const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };

function expectPromtoolAccepts(text: string): void {
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (promtool.error && !process.env.CI) return; // promtool is installed by .ci/run; optional on a workstation
  expect(promtool.error).toBeUndefined();
  expect(promtool.stdout + promtool.stderr).toBe('');
  expect(promtool.status).toBe(0);
}

describe('hourmeter serve', () => {
  it('answers health without a token, and everything else only with the right one', async () => {
    const { url } = await serve(monthlyFolder());
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toBe('application/json; charset=utf-8');
    // The last snapshot is 2024-10-01 12:00, now is 14:00: 7,200 s old.
    expect(await health.json()).toEqual({ status: 'ok', index: 'readable', snapshots: 4, latest_snapshot: '2024-10-01T12:00:00.000000Z', latest_snapshot_age_seconds: 7200, max_age_seconds: 43200 });
    for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: TOKEN }] as Record<string, string>[]) {
      const r = await fetch(`${url}/report/monthly`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(await r.json()).toEqual({ error: 'missing or wrong bearer token' });
    }
  });

  it('health says "stale", still with 200, once the latest snapshot is older than --max-age (default 12h, as check)', async () => {
    const health = async (args: string[], cwd = monthlyFolder()) => {
      const r = await fetch(`${(await startServe(cwd, ['--workers', '1', ...args])).url}/health`);
      return { code: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const latest = { index: 'readable', snapshots: 4, latest_snapshot: '2024-10-01T12:00:00.000000Z' };
    // 12 h after the last snapshot (2024-10-01 12:00) is still fresh; one second more is not.
    expect(await health(['--now', '2024-10-02T00:00:00Z'])).toEqual({ code: 200, body: { status: 'ok', ...latest, latest_snapshot_age_seconds: 43200, max_age_seconds: 43200 } });
    expect(await health(['--now', '2024-10-02T00:00:01Z'])).toEqual({ code: 200, body: { status: 'stale', ...latest, latest_snapshot_age_seconds: 43201, max_age_seconds: 43200 } });
    // 2 h old: stale past --max-age 90m, fresh within a config file's 3h.
    expect(await health(['--now', '2024-10-01T14:00:00Z', '--max-age', '90m'])).toEqual({ code: 200, body: { status: 'stale', ...latest, latest_snapshot_age_seconds: 7200, max_age_seconds: 5400 } });
    const configured = monthlyFolder();
    writeFileSync(join(configured, 'hourmeter.yaml'), 'max-age: 3h\n');
    expect(await health(['--now', '2024-10-01T14:00:00Z'], configured)).toEqual({ code: 200, body: { status: 'ok', ...latest, latest_snapshot_age_seconds: 7200, max_age_seconds: 10800 } });
    // No snapshot at all: nothing to serve.
    const empty = tempDir();
    mkdirSync(join(empty, 'snapshots'));
    expect(await health(['--now', '2024-10-01T14:00:00Z'], empty)).toEqual({
      code: 200,
      body: { status: 'stale', index: 'readable', snapshots: 0, latest_snapshot: null, latest_snapshot_age_seconds: null, max_age_seconds: 43200 },
    });
  });

  it("serves PrimeHub's monthly API: the months, then the CSVs the CLI writes", async () => {
    const cwd = monthlyFolder();
    const { url } = await serve(cwd);
    const months = await fetch(`${url}/report/monthly`, auth);
    expect(months.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await months.json()).toEqual(['2024/8', '2024/9', '2024/10']);
    const csv = await fetch(`${url}/report/monthly/2024/9`, auth);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const body = await csv.text();
    expect(body).toBe(
      'component,group_name,user_name,gpu_hours,cpu_hours,memory_gb_hours,total_hours,report_date\n' +
        'deployment,phusers,,0.00,24.00,48.00,24.00,202409\njupyter,phusers,foo,12.00,48.00,54.00,18.00,202409\n',
    );
    // The same bytes as the CLI (which reads the index the server keeps).
    expect(run(['report', 'monthly', '--month', '2024-09', '--out', '-'], { cwd }).stdout).toBe(body);
    const details = await (await fetch(`${url}/report/monthly/details/2024/9`, auth)).text();
    expect(details.trim().split('\n').map((l) => l.split(',')[4])).toEqual(['allocation', 'a', 'c', 'b']);
  });

  it('serves the stats JSON, with the query as parameters', async () => {
    const { url } = await serve(monthlyFolder());
    const r = await fetch(`${url}/stats?from=2024-09-01&to=2024-09-30&by=component`, auth);
    expect(r.status).toBe(200);
    const j = (await r.json()) as { group_by: string[]; rows: { component: string; cpu_hours: number; allocation_hours: number }[]; total: { cpu_hours: number } };
    expect(j.group_by).toEqual(['component']);
    expect(j.rows.map((x) => [x.component, x.cpu_hours, x.allocation_hours])).toEqual([
      ['deployment', 24, 24],
      ['jupyter', 48, 18],
    ]);
    expect(j.total.cpu_hours).toBe(72);
  });

  it.each([
    ['/stats?by=planet', 400, 'by "planet": group by one of cluster, namespace, user, group, component, job, or a comma list'],
    ['/stats?from=2024-02-30&to=2024-03-01', 400, 'from 2024-02-30 is not a real calendar date'],
    ['/stats?from=2024-09-01&from=2024-09-02', 400, 'give from once'],
    ['/stats?tz=Mars/Olympus', 400, 'Mars/Olympus'],
    ['/report/monthly/2024/13', 400, 'month "2024-13" is not a month'],
    ['/report/monthly/2024', 404, 'no such path: /report/monthly/2024'],
    ['/nope', 404, 'no such path: /nope'],
    ['/nope?__proto__=1&constructor=2', 404, 'no such path: /nope'],
  ])('GET %s: %i with a JSON error, never a stack trace', async (path, status, message) => {
    const { url } = await serve(monthlyFolder());
    const r = await fetch(`${url}${path}`, auth);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const j = (await r.json()) as { error: string };
    expect(j.error).toContain(message);
    expect(j.error).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['/stats?form=2024-09-01&to=2024-09-30', 'unknown parameter "form": /stats takes from, to, tz, by, cluster, namespace, user, group, gap-policy, gc-window, max-gap; did you mean "from"?'],
    ['/stats?from=2024-09-01&to=2024-09-30&gap_policy=next&verbose=1', 'unknown parameters "gap_policy", "verbose": /stats takes from, to, tz, by, cluster, namespace, user, group, gap-policy, gc-window, max-gap'],
    ['/report/monthly/2024/9?tz=UTC&zone=UTC', 'unknown parameter "zone": /report/monthly/2024/9 takes tz'],
    ['/report/monthly?month=2024-09', 'unknown parameter "month": /report/monthly takes tz'],
    ['/metrics?name=hourmeter_allocations', 'unknown parameter "name": /metrics takes no parameters'],
    ['/health?verbose', 'unknown parameter "verbose": /health takes no parameters'],
  ])('GET %s: 400 naming the parameter the path does not take', async (path, message) => {
    const { url } = await serve(monthlyFolder());
    const r = await fetch(`${url}${path}`, auth);
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({ error: message });
  });

  it('takes every parameter it knows, max-gap for the coverage, tz on a monthly CSV', async () => {
    const { url } = await serve(monthlyFolder());
    type Answer = { total: { cpu_hours: number }; coverage: { covered_fraction: number; max_gap_hours: number; stretches: { start: string; end: string; kind: string }[] } };
    const stats = await fetch(`${url}/stats?from=2024-09-01&to=2024-09-30&tz=UTC&by=component&namespace=hub&gap-policy=midpoint&gc-window=0&max-gap=4h`, auth);
    expect(stats.status).toBe(200);
    const narrow = (await stats.json()) as Answer;
    expect(narrow.total.cpu_hours).toBe(72);
    // Snapshots 08-31T18:00, 09-01T06:00, 09-15T00:00, 10-01T12:00: every gap is over 4 h.
    expect(narrow.coverage.covered_fraction).toBe(0);
    expect(narrow.coverage.stretches).toEqual([
      { start: '2024-09-01T00:00:00.000000Z', end: '2024-09-01T06:00:00.000000Z', kind: 'uncovered' },
      { start: '2024-09-01T06:00:00.000000Z', end: '2024-09-15T00:00:00.000000Z', kind: 'uncovered' },
      { start: '2024-09-15T00:00:00.000000Z', end: '2024-10-01T00:00:00.000000Z', kind: 'uncovered' },
    ]);
    // By default 3 x the median interval (12 h, 330 h, 396 h): 990 h, and the month is covered.
    const wide = (await (await fetch(`${url}/stats?from=2024-09-01&to=2024-09-30`, auth)).json()) as Answer;
    expect(wide.coverage.max_gap_hours).toBe(990);
    expect(wide.coverage.stretches).toEqual([{ start: '2024-09-01T00:00:00.000000Z', end: '2024-10-01T00:00:00.000000Z', kind: 'sampled' }]);
    expect((await fetch(`${url}/stats?max-gap=soon`, auth)).status).toBe(400);
    const csv = await fetch(`${url}/report/monthly/2024/9?tz=UTC`, auth);
    expect(csv.status).toBe(200);
    expect((await csv.text()).split('\n')[1]).toBe('deployment,phusers,,0.00,24.00,48.00,24.00,202409');
    // The token is asked before the parameters: nothing is said to a caller without it.
    expect((await fetch(`${url}/stats?form=2024-09-01`)).status).toBe(401);
  });

  it('is read-only: POST gets 405', async () => {
    const { url } = await serve(monthlyFolder());
    const r = await fetch(`${url}/stats`, { ...auth, method: 'POST', body: '{}' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, HEAD');
  });

  it('exports Prometheus metrics that promtool accepts', async () => {
    const { url } = await serve(monthlyFolder());
    const r = await fetch(`${url}/metrics`, auth);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    // The index's own metrics; the build and the process follow them (see the next test).
    const lines = text.split('\n').filter((l) => l.startsWith('hourmeter_') && !l.startsWith('hourmeter_build_info'));
    // Now: B alone holds resources in the latest snapshot. History: 2 x 24 + 4 x 6 + 1 x 36 =
    // 108 core-hours = 388,800 core-seconds; A's GPU for 24 h = 86,400 GPU-seconds.
    expect(lines).toEqual([
      'hourmeter_latest_snapshot_timestamp_seconds 1727784000',
      'hourmeter_latest_snapshot_age_seconds 7200',
      'hourmeter_latest_snapshot_failed_scopes 0',
      'hourmeter_snapshot_failures_total 0',
      'hourmeter_allocations{namespace="hub"} 1',
      'hourmeter_allocated_gpus{namespace="hub"} 0',
      'hourmeter_allocated_cpu_core_seconds_total{namespace="hub"} 388800',
      'hourmeter_allocated_gpu_seconds_total{namespace="hub"} 86400',
      // Memory: 4 GiB x 24 h + 1 GiB x 6 h + 2 GiB x 36 h = 174 GiB-hours.
      `hourmeter_allocated_memory_byte_seconds_total{namespace="hub"} ${174 * 3600 * 2 ** 30}`,
      'hourmeter_allocated_disk_byte_seconds_total{namespace="hub"} 0',
    ]);
    expect(text).toContain('# HELP hourmeter_allocated_cpu_core_seconds_total CPU core-seconds allocated since the first snapshot (exact, see docs/accounting.md#resource-hours).\n');
    expect(text).not.toContain('design.md');
    expectPromtoolAccepts(text);
  });

  it("exports the build's version and the serve process's own metrics, from the thread that listens", async () => {
    const startedS = Math.floor(Date.now() / 1000);
    const { url } = await serve(monthlyFolder());
    const text = await (await fetch(`${url}/metrics`, auth)).text();
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    // The server runs on the same node binary as this test.
    expect(text).toContain('# TYPE hourmeter_build_info gauge\n');
    expect(text.split('\n').filter((l) => l.startsWith('hourmeter_build_info'))).toEqual([`hourmeter_build_info{version="${version}",node="${process.version}"} 1`]);
    const value = (sample: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      expect(line, `${sample} in /metrics`).toBeDefined();
      return Number(line!.slice(sample.length + 1));
    };
    for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) expect(value(name), name).toBeGreaterThan(0);
    expect(text).toContain('# TYPE process_cpu_seconds_total counter\n');
    // Started after this test began, and before it answered (rounded to the second).
    expect(value('process_start_time_seconds')).toBeGreaterThanOrEqual(startedS - 1);
    expect(value('process_start_time_seconds')).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1);
    // Only the main thread holds the listening socket: a query worker's metrics would show none.
    expect(value('nodejs_active_handles{type="Server"}')).toBe(1);
    // A second scrape measures again; the index's part stays the same.
    const again = await (await fetch(`${url}/metrics`, auth)).text();
    const own = (t: string) => t.split('\n').filter((l) => l.startsWith('hourmeter_'));
    expect(own(again)).toEqual(own(text));
    expectPromtoolAccepts(again);
  });

  it('stops cleanly on SIGTERM', async () => {
    const { child } = await serve(monthlyFolder());
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });

  it('refuses a bad port or an empty token file: exit 2', () => {
    const cwd = monthlyFolder();
    const r = run(['serve', '--port', 'http'], { cwd });
    expect(r.stderr).toBe('hourmeter: --port "http": give a port number from 0 to 65535\n');
    expect(r.code).toBe(2);
    writeFileSync(join(cwd, 'empty'), '\n');
    const e = run(['serve', '--token-file', 'empty'], { cwd });
    expect(e.stderr).toBe('hourmeter: --token-file empty is empty: put the token in it\n');
    expect(e.code).toBe(2);
    const age = run(['serve', '--max-age', 'soon'], { cwd });
    expect(age.stderr).toBe('hourmeter: --max-age "soon" is not a duration: use e.g. 12h, 90m or 1d\n');
    expect(age.code).toBe(2);
  });
});
