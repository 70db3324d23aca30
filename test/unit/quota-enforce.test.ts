import { describe, expect, it } from 'vitest';
import { decide, enforce, NO_REQUEST, withGrace } from '../../src/quota/decide.js';
import { parseQuotaFile, type QuotaConfig } from '../../src/quota/policy.js';
import { openUntil, usedBetween, type UsageInterval } from '../../src/quota/usage.js';
import { amounts, us } from '../helpers/builders.js';

/**
 * Holding running servers to their limits, on hand-computed 1d windows: now is
 * 2024-10-02T00:00Z, the latest snapshot 2024-10-01T23:00Z, the window [10-01 00:00, now).
 * Open allocations count up to now here (one hour more than `quota show` counts).
 */

const NOW = us('2024-10-02T00:00:00Z');
const LATEST = us('2024-10-01T23:00:00Z');
const HOUR = 3_600_000_000;
const GIB_HOUR = BigInt(2 ** 30) * 3_600_000_000n;

const iv = (start: string, end: string, res: Parameters<typeof amounts>[0], open = false): UsageInterval => ({ startUs: us(start), endUs: us(end), open, amounts: amounts(res) });

const CONFIG: QuotaConfig = parseQuotaFile(
  `
stale_after: 2h
failure: closed
exempt: [root]
policies:
  - name: mem
    resource: memory
    limit: 30 GiB-hours
    window: 1d
    groups: [regular]
  - name: cpu
    resource: cpu
    limit: 8 CPU-hours
    window: 1d
    groups: [regular]
`,
  'quota.yaml',
);

const PERCENT = 10_000n;

const run = (intervals: UsageInterval[], gracePpm = 0n, o: { user?: string; latestUs?: number } = {}) =>
  enforce(CONFIG, { user: o.user ?? 'alice', membership: { groups: ['regular'], from: 'caller' }, nowUs: NOW, latestUs: o.latestUs ?? LATEST, intervals, gracePpm });

/** 4 GiB from 10-01 16:00, still running at 23:00: 28 GiB-hours up to the snapshot, 32 up to now. */
const OPEN_MEMORY = iv('2024-10-01T16:00:00Z', '2024-10-01T23:00:00Z', { memMiB: 4096 }, true);

describe('running allocations counted up to now', () => {
  it('extends only open intervals, and only up to now', () => {
    const closed = iv('2024-10-01T10:00:00Z', '2024-10-01T12:00:00Z', { cpu: 1 });
    expect(openUntil([OPEN_MEMORY, closed], NOW)).toEqual([{ ...OPEN_MEMORY, endUs: NOW }, closed]);
    expect(usedBetween(openUntil([OPEN_MEMORY], NOW), 'memory', NOW - 24 * HOUR, NOW)).toBe(32n * GIB_HOUR);
  });

  it('makes a user over the limit who is within it up to the latest snapshot', () => {
    // quota show: 7 h x 4 GiB = 28 of 30 GiB-hours, allowed.
    const shown = decide(CONFIG, { user: 'alice', membership: { groups: ['regular'], from: 'caller' }, request: NO_REQUEST, nowUs: NOW, latestUs: LATEST, intervals: [OPEN_MEMORY] });
    expect(shown.policies.find((p) => p.resource === 'memory')).toMatchObject({ used: 28, limit: 30, allowed: true });
    expect(shown.decision).toBe('allowed');
    // Up to now: 8 h x 4 GiB = 32 of 30.
    const e = run([OPEN_MEMORY]);
    expect(e).toEqual({
      user: 'alice',
      groups: ['regular'],
      action: 'stop',
      reason_code: 'over_limit',
      reason: 'memory over the last 1d: used 32.00 of 30.00 GiB-hours',
      over: [{ resource: 'memory', window: '1d', unit: 'GiB-hours', policies: ['mem'], used: 32, limit: 30, stop_above: 30 }],
    });
  });

  it('keeps a user exactly at a limit: over means above it', () => {
    // 2 cores from 20:00: 4 h x 2 = 8 of 8 CPU-hours up to now.
    const e = run([iv('2024-10-01T20:00:00Z', '2024-10-01T23:00:00Z', { cpu: 2 }, true)]);
    expect(e).toMatchObject({ action: 'keep', reason_code: 'within_limits', reason: 'within every quota', over: [] });
    // Started 3 minutes earlier: 4 h 3 min x 2 = 8.1 CPU-hours, over.
    const over = run([iv('2024-10-01T19:57:00Z', '2024-10-01T23:00:00Z', { cpu: 2 }, true)]);
    expect(over.action).toBe('stop');
    expect(over.over).toEqual([{ resource: 'cpu', window: '1d', unit: 'CPU-hours', policies: ['cpu'], used: 8.1, limit: 8, stop_above: 8 }]);
  });
});

describe('grace', () => {
  it('is a share of each limit, rounded down in base units', () => {
    expect(withGrace(30n * GIB_HOUR, 10n * PERCENT)).toBe(33n * GIB_HOUR);
    expect(withGrace(8n, 125_000n)).toBe(9n);
    expect(withGrace(7n, 100_000n)).toBe(7n);
  });

  it('lets a user run up to the limit plus the grace', () => {
    // 32 GiB-hours: within 30 + 10% = 33, over 30 + 5% = 31.5.
    expect(run([OPEN_MEMORY], 10n * PERCENT)).toMatchObject({ action: 'keep', over: [] });
    expect(run([OPEN_MEMORY], 5n * PERCENT)).toMatchObject({
      action: 'stop',
      reason: 'memory over the last 1d: used 32.00 of 30.00 GiB-hours (grace 5%: up to 31.50)',
      over: [{ resource: 'memory', used: 32, limit: 30, stop_above: 31.5 }],
    });
    // Exactly at limit + grace is not over: 32 = 30 + 6.6666...% is not exact, 40 + 25% = 50 is.
    const c = parseQuotaFile('stale_after: 2h\npolicies:\n  - { name: m, resource: memory, limit: 40 GiB-hours, window: 1d, scope: users, users: [x] }\n', 'quota.yaml');
    const fifty = iv('2024-10-01T11:30:00Z', '2024-10-01T23:00:00Z', { memMiB: 4096 }, true); // 12.5 h x 4 GiB = 50
    const at = (ppm: bigint) => enforce(c, { user: 'x', membership: { groups: [], from: 'caller' }, nowUs: NOW, latestUs: LATEST, intervals: [fifty], gracePpm: ppm }).action;
    expect(at(25n * PERCENT)).toBe('keep');
    expect(at(24n * PERCENT)).toBe('stop');
  });
});

describe('several limits', () => {
  // 24 GiB-hours from 09-30 12:00 → 10-01 06:00 (6 h x 4 GiB in the window), then 3 cores and
  // 2 GiB from 20:00, running: up to now 4 h, so memory 24 + 8 = 32 of 30, CPU 12 of 8.
  const USAGE = [iv('2024-09-30T12:00:00Z', '2024-10-01T06:00:00Z', { memMiB: 4096 }), iv('2024-10-01T20:00:00Z', '2024-10-01T23:00:00Z', { cpu: 3, memMiB: 2048 }, true)];

  it('lists every limit exceeded, in quota order', () => {
    const e = run(USAGE);
    expect(e.action).toBe('stop');
    expect(e.reason).toBe('cpu over the last 1d: used 12.00 of 8.00 CPU-hours; memory over the last 1d: used 32.00 of 30.00 GiB-hours');
    expect(e.over.map((o) => [o.resource, o.used, o.limit, o.stop_above])).toEqual([
      ['cpu', 12, 8, 8],
      ['memory', 32, 30, 30],
    ]);
  });

  it('with a 10% grace, only the limit still exceeded: CPU 12 > 8.8, memory 32 <= 33', () => {
    const e = run(USAGE, 10n * PERCENT);
    expect(e.reason).toBe('cpu over the last 1d: used 12.00 of 8.00 CPU-hours (grace 10%: up to 8.80)');
    expect(e.over.map((o) => o.resource)).toEqual(['cpu']);
  });
});

describe('what is never stopped', () => {
  it('an exempt user, however much they use', () => {
    expect(run([OPEN_MEMORY], 0n, { user: 'root' })).toMatchObject({ action: 'keep', reason_code: 'exempt', reason: 'root is exempt from quotas' });
  });

  it('anyone, on stale data (the failure rule is for new requests)', () => {
    const e = run([OPEN_MEMORY], 0n, { latestUs: us('2024-10-01T21:00:00Z') });
    expect(e).toMatchObject({ action: 'unable', reason_code: 'stale', over: [] });
    expect(e.reason).toBe('the accounting data is stale: the latest snapshot, 2024-10-01T21:00:00Z, is 3h 0m old (stale_after 2h)');
  });
});
