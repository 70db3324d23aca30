import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/accounting/aggregate.js';
import { FlavourTable } from '../../src/accounting/columns.js';
import { AI4OS_SUMMARY_ORDER, AMOUNT_FIELDS, HOUR_COLUMNS, NATIVE_ORDER, PRIMEHUB_ORDER, QUOTA_ORDER, RESOURCES, TOP_ORDER } from '../../src/accounting/resources.js';
import type { Lifetime } from '../../src/accounting/types.js';

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
