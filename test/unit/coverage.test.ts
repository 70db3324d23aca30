import { describe, expect, it } from 'vitest';
import { coverageJson, coverageOf, coverageWarning, defaultMaxGapUs, windowCoverage } from '../../src/accounting/coverage.js';
import { us } from '../helpers/builders.js';

const H = 3_600_000_000;
const day = { startUs: us('2024-09-02T00:00:00Z'), endUs: us('2024-09-03T00:00:00Z') };

describe('defaultMaxGapUs', () => {
  it('is 3 x the median interval, the mean of the middle two for an even count', () => {
    // Intervals 1 h, 2 h, 10 h: median 2 h.
    expect(defaultMaxGapUs([0, H, 3 * H, 13 * H])).toBe(6 * H);
    // Intervals 1 h, 2 h, 4 h, 10 h: median 3 h; order and duplicates do not matter.
    expect(defaultMaxGapUs([17 * H, 0, H, 3 * H, 7 * H, 7 * H])).toBe(9 * H);
  });

  it('is null with fewer than two distinct captures', () => {
    expect(defaultMaxGapUs([])).toBeNull();
    expect(defaultMaxGapUs([5 * H, 5 * H])).toBeNull();
  });
});

describe('coverageOf', () => {
  const at = (h: number) => day.startUs + h * H;

  it('a day sampled every 6 h, first at 00:01, is one sampled stretch', () => {
    const c = coverageOf([at(1 / 60), at(6), at(12), at(18), at(24)], day, 18 * H);
    expect(c.stretches).toEqual([{ startUs: day.startUs, endUs: day.endUs, kind: 'sampled' }]);
    expect(c.coveredFraction).toBe(1);
    expect(coverageWarning(c)).toBeNull();
  });

  it('a gap longer than the max gap is uncovered where it meets the period', () => {
    // The gap 06:00 -> next day 02:00 is 20 h: from 06:00 to midnight it lies in the period.
    const c = coverageOf([at(0), at(6), at(26)], day, 18 * H);
    expect(c.stretches).toEqual([
      { startUs: at(0), endUs: at(6), kind: 'sampled' },
      { startUs: at(6), endUs: day.endUs, kind: 'uncovered', afterUs: at(6), beforeUs: at(26) },
    ]);
    expect(c.coveredFraction).toBe(0.25);
    expect(coverageWarning(c)).toBe('no snapshot between 2024-09-02T06:00:00Z and 2024-09-03T02:00:00Z (20 h): 18 of 24 h are unknown, not zero');
  });

  it('the part before the first or after the last snapshot counts when longer than the max gap', () => {
    const c = coverageOf([at(3), at(5)], day, 2 * H);
    expect(c.stretches.map((s) => [s.kind, (s.startUs - day.startUs) / H, (s.endUs - day.startUs) / H])).toEqual([
      ['uncovered', 0, 3],
      ['sampled', 3, 5],
      ['uncovered', 5, 24],
    ]);
    expect(c.coveredFraction).toBe(2 / 24);
    expect(coverageWarning(c)).toBe('no snapshot before 2024-09-02T03:00:00Z; no snapshot after 2024-09-02T05:00:00Z: 22 of 24 h are unknown, not zero');
    // 3 h before the first is within a max gap of 3 h: not uncovered.
    expect(coverageOf([at(3), at(5)], day, 3 * H).stretches[0]).toEqual({ startUs: day.startUs, endUs: at(5), kind: 'sampled' });
  });

  it('consecutive long gaps stay apart, each with its snapshots', () => {
    const c = coverageOf([at(-10), at(10), at(30)], day, 5 * H);
    expect(c.stretches).toEqual([
      { startUs: day.startUs, endUs: at(10), kind: 'uncovered', afterUs: at(-10), beforeUs: at(10) },
      { startUs: at(10), endUs: day.endUs, kind: 'uncovered', afterUs: at(10), beforeUs: at(30) },
    ]);
    expect(c.coveredFraction).toBe(0);
    expect(coverageWarning(c)).toBe(
      'no snapshot between 2024-09-01T14:00:00Z and 2024-09-02T10:00:00Z (20 h); no snapshot between 2024-09-02T10:00:00Z and 2024-09-03T06:00:00Z (20 h): all 24 h are unknown, not zero',
    );
  });

  it('no snapshot at all, or no interval known', () => {
    expect(coverageWarning(coverageOf([], day, null))).toBe('no snapshot in or around the period: all 24 h are unknown, not zero');
    // One snapshot and no max gap: only its instant is known.
    const one = coverageOf([at(12)], day, null);
    expect(one.stretches.map((s) => s.kind)).toEqual(['uncovered', 'uncovered']);
    expect(one.coveredFraction).toBe(0);
  });

  it('counts days over long periods, and lists at most three gaps', () => {
    const month = { startUs: us('2024-09-01T00:00:00Z'), endUs: us('2024-10-01T00:00:00Z') };
    const d = (n: number) => month.startUs + n * 24 * H;
    // Snapshots on days 0, 2, 4, 6, 8 and 10 (gaps of 2 days), nothing after day 10.
    const c = coverageOf([0, 2, 4, 6, 8, 10].map(d), month, 24 * H);
    expect(c.stretches.filter((s) => s.kind === 'uncovered')).toHaveLength(6);
    expect(coverageWarning(c)).toBe(
      'no snapshot between 2024-09-01T00:00:00Z and 2024-09-03T00:00:00Z (48 h); no snapshot between 2024-09-03T00:00:00Z and 2024-09-05T00:00:00Z (48 h); ' +
        'no snapshot between 2024-09-05T00:00:00Z and 2024-09-07T00:00:00Z (48 h); and 3 more gaps: all 30 days are unknown, not zero',
    );
  });
});

describe('windowCoverage and its JSON', () => {
  it('measures the default max gap with the neighbours, so a window inside a long gap is uncovered', () => {
    // Hourly snapshots until 2024-09-01T23:00, then none until 09-04T00:00; the window is 09-02.
    const before = Array.from({ length: 24 }, (_, i) => us('2024-09-01T00:00:00Z') + i * H);
    const files = { capturedUs: [before[23]!, us('2024-09-04T00:00:00Z')], nearbyUs: before.slice(0, 23) };
    const c = windowCoverage(files, day);
    expect(c.maxGapUs).toBe(3 * H);
    expect(coverageJson(c)).toEqual({
      covered_fraction: 0,
      max_gap_hours: 3,
      stretches: [{ start: '2024-09-02T00:00:00.000000Z', end: '2024-09-03T00:00:00.000000Z', kind: 'uncovered' }],
      until: null,
      warning: 'no snapshot between 2024-09-01T23:00:00Z and 2024-09-04T00:00:00Z (49 h): all 24 h are unknown, not zero',
    });
    // A max gap given wins over the default.
    expect(windowCoverage(files, day, { maxGapUs: 49 * H }).coveredFraction).toBe(1);
  });

  it('a period still running is judged up to now: the rest has not happened', () => {
    // Snapshots every hour from 00:00 to 09:00, now 09:30: nothing is missing yet.
    const files = { capturedUs: Array.from({ length: 10 }, (_, i) => day.startUs + i * H), nearbyUs: [] };
    const now = day.startUs + 9.5 * H;
    const running = windowCoverage(files, day, { nowUs: now });
    expect(coverageJson(running)).toEqual({
      covered_fraction: 1,
      max_gap_hours: 3,
      stretches: [{ start: '2024-09-02T00:00:00.000000Z', end: '2024-09-02T09:30:00.000000Z', kind: 'sampled' }],
      until: '2024-09-02T09:30:00.000000Z',
      warning: null,
    });
    // At 14:00, five hours after the last snapshot, the stretch since is uncovered so far.
    const later = windowCoverage(files, day, { nowUs: day.startUs + 14 * H });
    expect(later.coveredFraction).toBe(9 / 14);
    expect(coverageWarning(later)).toBe('no snapshot after 2024-09-02T09:00:00Z: 5 of 14 h so far are unknown, not zero');
    // Once the period is over, it is judged whole.
    expect(windowCoverage(files, day, { nowUs: day.endUs }).untilUs).toBeNull();
  });
});
