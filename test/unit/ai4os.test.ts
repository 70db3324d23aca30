import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ai4osAccumulator, parseAi4osTime, type Ai4osJob } from '../../src/accounting/ai4os.js';
import { ai4osSnapshotOf } from '../../src/snapshots/ai4os-input.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/ai4os');
const us = (iso: string) => Date.parse(iso) * 1000;

describe('AI4OS time parsing (the original drops 4 characters)', () => {
  it('keeps the first 6 digits of a 9-digit fraction', () => {
    expect(parseAi4osTime('2024-08-28T15:38:44.706117474Z')).toBe(us('2024-08-28T15:38:44Z') + 706117);
  });
  it('reads .12345Z as .12', () => {
    expect(parseAi4osTime('2024-09-01T00:00:00.12345Z')).toBe(us('2024-09-01T00:00:00Z') + 120000);
  });
  it('does not crash on 3 or fewer fraction digits, or none', () => {
    expect(parseAi4osTime('2024-09-01T00:00:00.123Z')).toBe(us('2024-09-01T00:00:00Z') + 123000);
    expect(parseAi4osTime('2024-09-01T00:00:00.5Z')).toBe(us('2024-09-01T00:00:00Z') + 500000);
    expect(parseAi4osTime('2024-09-01T00:00:00Z')).toBe(us('2024-09-01T00:00:00Z'));
  });
  it('treats Go zero time and null as unset', () => {
    expect(parseAi4osTime('0001-01-01T00:00:00Z')).toBeNull();
    expect(parseAi4osTime(null)).toBeNull();
  });
});

describe('AI4OS accumulation rules', () => {
  const job = (status: string, start: string | null, end: string | null, cpu = 2, mhz = 100): Ai4osJob => [status, 'j1', 'u1', start, end, cpu, mhz, 1, 1000, 2000];
  it('accrues running jobs from the previous snapshot and clips dead ones at alloc_end', () => {
    const acc = new Ai4osAccumulator(us('2024-09-01T00:00:00Z'));
    // running since before the range: counts from range start to the snapshot (6 h)
    acc.add(us('2024-09-01T06:00:00Z'), new Map([['ns', [job('running', '2024-08-30T00:00:00.000000000Z', null)]]]));
    // dead at 09:00: counts 06:00 -> 09:00 (3 h)
    acc.add(us('2024-09-01T12:00:00Z'), new Map([['ns', [job('dead', '2024-08-30T00:00:00.000000000Z', '2024-09-01T09:00:00.000000000Z')]]]));
    const r = acc.result();
    expect(r.rows).toEqual([{ namespace: 'ns', cpu_num_hours: 18, cpu_MHz_hours: 900, gpu_num_hours: 9, memory_MB_hours: 9000, disk_MB_hours: 18000, jobs: 1, users: 1 }]);
  });
  it('replaces cpu_num 0 by cpu_MHz, and counts zero-second jobs in jobs and users', () => {
    const acc = new Ai4osAccumulator(us('2024-09-01T00:00:00Z'));
    acc.add(us('2024-09-01T01:00:00Z'), new Map([['ns', [job('running', '2024-09-01T00:00:00.000000000Z', null, 0, 250), ['dead', 'j2', 'u2', '2024-08-01T00:00:00.000000000Z', '2024-08-02T00:00:00.000000000Z', 1, 1, 1, 1, 1]]]]));
    const r = acc.result();
    expect(r.rows[0]).toMatchObject({ cpu_num_hours: 250, cpu_MHz_hours: 250, jobs: 2, users: 2 });
  });
  it('gives a namespace with no usage a row of zeros', () => {
    const acc = new Ai4osAccumulator(us('2024-09-01T00:00:00Z'));
    acc.add(us('2024-09-01T06:00:00Z'), new Map([['empty', []]]));
    expect(acc.result()).toEqual({
      rows: [{ namespace: 'empty', cpu_num_hours: 0, cpu_MHz_hours: 0, gpu_num_hours: 0, memory_MB_hours: 0, disk_MB_hours: 0, jobs: 0, users: 0 }],
      total: { cpu_num_hours: 0, cpu_MHz_hours: 0, gpu_num_hours: 0, memory_MB_hours: 0, disk_MB_hours: 0, jobs: 0, users: 0 },
    });
  });
});

describe('the AI4OS fixture folder', () => {
  it('matches every integer of the original usage_stats output', () => {
    const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected-usage-stats.json'), 'utf8'));
    const start = us('2024-09-03T00:00:00Z');
    const end = us('2024-09-10T23:59:59Z');
    const acc = new Ai4osAccumulator(start);
    for (const name of readdirSync(join(FIXTURE, 'snapshots')).sort()) {
      const t = us(name.replace('.json', 'Z'));
      if (t < start || t > end) continue;
      acc.add(t, ai4osSnapshotOf(JSON.parse(readFileSync(join(FIXTURE, 'snapshots', name), 'utf8'))));
    }
    const got = acc.result();
    expect(got.rows).toEqual(expected.rows);
    expect(got.total).toEqual(expected.total);
  });
});
