import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/accounting/aggregate.js';
import { FlavourTable } from '../../src/accounting/columns.js';
import { join } from 'node:path';
import { AI4OS_SUMMARY_ORDER, AMOUNT_FIELDS, HOUR_COLUMNS, NATIVE_ORDER, PRIMEHUB_ORDER, QUOTA_ORDER, RESOURCES, TOP_ORDER } from '../../src/accounting/resources.js';
import type { Lifetime } from '../../src/accounting/types.js';
import { openIndexStore } from '../../src/history/sqlite.js';
import { decide, NO_REQUEST } from '../../src/quota/decide.js';
import { DISPLAY_UNIT, parseLimit, parseQuotaFile, QUOTA_RESOURCES } from '../../src/quota/policy.js';
import { parseRequest } from '../../src/quota/request.js';
import { statsColumns } from '../../src/reports/stats-report.js';
import { AI4OS_FULL_COLUMNS, AI4OS_TIMESERIES_COLUMNS, AI4OS_USERS_COLUMNS, FULL_COLUMNS, TIMESERIES_COLUMNS, USERS_COLUMNS } from '../../src/reports/summaries.js';
import { Queries } from '../../src/server/queries.js';
import { listSnapshots } from '../../src/snapshots/files.js';
import { withAi4osFixture } from '../helpers/cli.js';

const names = (rs: readonly { name: string }[]) => rs.map((r) => r.name).sort();

describe('the resource list', () => {
  it('keeps the stored flavour layout and the report column order', () => {
    // The flavour table the index stores is in the list's order: moving an entry changes it.
    expect(AMOUNT_FIELDS).toEqual(['cpuMilli', 'cpuMhz', 'gpu', 'memoryBytes', 'diskBytes']);
    expect(HOUR_COLUMNS).toEqual(['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours']);
  });

  it('names every resource once in each order that covers them all', () => {
    for (const order of [NATIVE_ORDER, AI4OS_SUMMARY_ORDER]) expect(names(order)).toEqual(names(RESOURCES));
    expect(names(QUOTA_ORDER)).toEqual(names(RESOURCES.filter((r) => r.quota !== null)));
    expect(names(PRIMEHUB_ORDER)).toEqual(names(RESOURCES.filter((r) => r.primehub !== null)));
    expect(TOP_ORDER.map((r) => r.name)).toEqual(['gpu', 'cpu', 'memory']);
  });

  it('gives each resource distinct fields, columns and metric names', () => {
    for (const key of ['name', 'amount', 'column', 'hours', 'held', 'average', 'averageColumn', 'legacy'] as const) {
      expect(new Set(RESOURCES.map((r) => r[key])).size, key).toBe(RESOURCES.length);
    }
    const metrics = RESOURCES.flatMap((r) => (r.metric ? [r.metric.name] : []));
    expect(new Set(metrics).size).toBe(metrics.length);
  });

  it('packs a flavour by the list and reads it back', () => {
    const t = new FlavourTable();
    const a = { cpuMilli: 1500, cpuMhz: 2400, gpu: 2, memoryBytes: 3 * 2 ** 30, diskBytes: 2 ** 30 };
    const f = t.push(a);
    expect([...t.values.subarray(f * RESOURCES.length, (f + 1) * RESOURCES.length)]).toEqual([1500, 2400, 2, 3 * 2 ** 30, 2 ** 30]);
    expect(t.amounts(f)).toEqual(a);
  });

  it('divides each resource by its own unit: 1.5 cores, 2400 MHz, 2 GPUs, 3 GiB and 1 GiB for two hours', () => {
    const l: Lifetime = {
      key: 'nomad:a', namespace: 'ns', jobId: 'j', jobName: null, user: 'u', group: null, component: null, node: null,
      amounts: { cpuMilli: 1500, cpuMhz: 2400, gpu: 2, memoryBytes: 3 * 2 ** 30, diskBytes: 2 ** 30 },
      startUs: 0, endUs: 7_200_000_000, lowEndUs: 7_200_000_000, highEndUs: 7_200_000_000, endKind: 'ended',
    };
    const period = { from: '1970-01-01', to: '1970-01-01', timezone: 'UTC', startUs: 0, endUs: 86_400_000_000 };
    const t = aggregate([l], period, []).total;
    expect([t.cpu_hours, t.cpu_mhz_hours, t.gpu_hours, t.memory_gib_hours, t.disk_gib_hours, t.allocation_hours]).toEqual([3, 4800, 4, 6, 2, 2]);
  });
});

/**
 * Everything that lists resources takes them from the list: a quota resource, an hour column
 * of stats, a summaries column or a /metrics counter written out by hand would miss a resource
 * added to the list (or keep one removed), and these sets would differ.
 */
describe('outputs derive their resources from the list', () => {
  const sorted = (xs: Iterable<string>) => [...xs].sort();
  const quotaResources = RESOURCES.filter((r) => r.quota !== null);
  const without = (columns: readonly string[], fixed: readonly string[]) => sorted(columns.filter((c) => !fixed.includes(c)));

  it('quotas cover exactly the resources with a quota unit: files, requests, limits and decisions', () => {
    const names = sorted(quotaResources.map((r) => r.name));
    expect(sorted(QUOTA_RESOURCES)).toEqual(names);
    expect(sorted(Object.keys(DISPLAY_UNIT))).toEqual(names);
    const parsed = parseRequest('');
    expect(typeof parsed === 'string' ? parsed : sorted(Object.keys(parsed))).toEqual(names);
    expect(sorted(Object.keys(NO_REQUEST.amounts))).toEqual(names);
    expect(() => parseQuotaFile('policies:\n  - { resource: tpu, limit: 1 GPU-hours, window: 1d, groups: [g] }\n', 'q.yaml')).toThrow(`is not one of ${QUOTA_RESOURCES.join(', ')}`);
    // Each resource's example limit reads back in its own unit, and every word of its unit is understood.
    for (const r of quotaResources) {
      const example = parseLimit(r.quota.example, r.name);
      expect(typeof example === 'string' ? example : example.text, r.name).toBe(r.quota.example);
      for (const w of r.quota.words) expect(typeof parseLimit(`1 ${w}-hours`, r.name), `${w} for ${r.name}`).toBe('object');
    }
    const config = parseQuotaFile('policies: []\n', 'q.yaml');
    const d = decide(config, { user: 'u', membership: { groups: [], from: 'caller' }, request: NO_REQUEST, nowUs: 0, latestUs: 0, intervals: [] });
    expect(Object.keys(d.request)).toEqual([...QUOTA_ORDER.map((r) => r.quota.request.key), 'hours']);
  });

  it('stats show one hour column per resource', () => {
    const period = { from: '2024-09-01', to: '2024-09-01', timezone: 'UTC', start: '2024-09-01T00:00:00Z', end: '2024-09-02T00:00:00Z' };
    const keys = statsColumns({ group_by: ['user'], period }).map((c) => c.key);
    const fixed = ['user', 'user_name', 'allocation_hours', 'jobs', 'users', 'allocations', 'period_start', 'period_end', 'tz'];
    expect(without(keys, fixed)).toEqual(sorted(RESOURCES.map((r) => r.hours)));
  });

  it("summaries hold each resource's hours and average, and the AI4OS files its column", () => {
    const hours = sorted(RESOURCES.map((r) => r.hours));
    expect(without(TIMESERIES_COLUMNS, ['date', 'hours', 'snapshots', 'running_jobs_avg', 'queued_jobs_avg', 'jobs', 'users'])).toEqual(sorted([...hours, ...RESOURCES.map((r) => r.averageColumn)]));
    expect(without(USERS_COLUMNS, ['user', 'jobs', 'allocations', 'first_day', 'last_day'])).toEqual(hours);
    expect(without(FULL_COLUMNS, ['from', 'to', 'timezone', 'jobs', 'users', 'allocations', 'first_day', 'last_day'])).toEqual(hours);
    const ai4os = sorted(RESOURCES.map((r) => r.ai4os.column));
    expect(without(AI4OS_TIMESERIES_COLUMNS, ['date', 'queued', 'running'])).toEqual(ai4os);
    expect(without(AI4OS_USERS_COLUMNS, ['owner'])).toEqual(ai4os);
    expect(sorted(AI4OS_FULL_COLUMNS)).toEqual(ai4os);
  });

  it('/metrics exports one counter per resource that declares one, from a real index', async () => {
    const dir = withAi4osFixture();
    const store = openIndexStore(join(dir, 'index.sqlite'));
    try {
      await store.append(await listSnapshots(join(dir, 'snapshots'), '--snapshots', { stat: false }), { dir: join(dir, 'snapshots'), warn: () => {}, note: () => {} });
      const text = new Queries(store).answer({ path: '/metrics', query: {}, unnamedFiles: 0, nowMs: Date.parse('2024-09-13T00:00:00Z') }).body;
      const counters = [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]!).filter((n) => n !== 'hourmeter_snapshot_failures_total');
      expect(sorted(counters)).toEqual(sorted(RESOURCES.flatMap((r) => (r.metric ? [r.metric.name] : []))));
    } finally {
      store.close();
    }
  });
});
