import { describe, expect, it } from 'vitest';
import { monthOf, monthPeriod, monthsBetween, parseMonth, previousMonth, reportDate } from '../../src/accounting/months.js';

const HOUR = 3_600_000_000;

describe('calendar months', () => {
  it('covers the whole month in the report zone, DST included', () => {
    const utc = monthPeriod(parseMonth('2024-02'), 'UTC');
    expect([utc.from, utc.to]).toEqual(['2024-02-01', '2024-02-29']);
    expect((utc.endUs - utc.startUs) / HOUR).toBe(29 * 24);
    // Madrid springs forward on 2024-03-31: March has one hour less, and starts at 23:00 UTC.
    const madrid = monthPeriod(parseMonth('2024-03'), 'Europe/Madrid');
    expect((madrid.endUs - madrid.startUs) / HOUR).toBe(31 * 24 - 1);
    expect(new Date(madrid.startUs / 1000).toISOString()).toBe('2024-02-29T23:00:00.000Z');
  });

  it('steps across years, and names months as PrimeHub does', () => {
    expect(previousMonth({ year: 2025, month: 1 })).toEqual({ year: 2024, month: 12 });
    expect(reportDate({ year: 2024, month: 9 })).toBe('202409');
    expect(monthsBetween({ year: 2024, month: 11 }, { year: 2025, month: 2 }).map(reportDate)).toEqual(['202411', '202412', '202501', '202502']);
    // 2024-09-30 23:30 UTC is already October in Madrid.
    expect(monthOf(Date.parse('2024-09-30T23:30:00Z') * 1000, 'Europe/Madrid')).toEqual({ year: 2024, month: 10 });
  });

  it('refuses what is not a month', () => {
    expect(() => parseMonth('2024-00')).toThrow('--month "2024-00" is not a month: use YYYY-MM, e.g. 2024-09');
    expect(() => parseMonth('1969-12')).toThrow('--month 1969-12 is before 1970');
  });
});
