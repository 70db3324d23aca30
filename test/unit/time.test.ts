import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/accounting/errors.js';
import { parseDay, resolvePeriod } from '../../src/accounting/period.js';
import { formatInstant, formatTimestamp, nanosToMicros, parseDuration, parseInstant, readableInstant, timestampText } from '../../src/util/time.js';

describe('instants', () => {
  it('truncates nanosecond fractions to microseconds', () => {
    expect(parseInstant('2025-03-08T11:07:40.220591718Z')).toBe(Date.UTC(2025, 2, 8, 11, 7, 40) * 1000 + 220591);
    expect(parseInstant('2025-03-08T11:07:40.2Z')).toBe(Date.UTC(2025, 2, 8, 11, 7, 40) * 1000 + 200000);
    expect(parseInstant('2025-03-08T13:07:40+02:00')).toBe(Date.UTC(2025, 2, 8, 11, 7, 40) * 1000);
  });
  it('reads null, empty and Go zero time as unset', () => {
    expect(parseInstant(null)).toBeNull();
    expect(parseInstant(undefined)).toBeNull();
    expect(parseInstant('0001-01-01T00:00:00Z')).toBeNull();
  });
  it('rejects what is not RFC 3339', () => {
    expect(() => parseInstant('2025-02-30T00:00:00Z')).toThrow(/real calendar/);
    expect(() => parseInstant('yesterday')).toThrow(/RFC 3339/);
    expect(() => parseInstant(1741431912)).toThrow(/RFC 3339 string/);
  });
  it('converts Unix nanoseconds above Number.MAX_SAFE_INTEGER exactly', () => {
    const text = '1741431912704418263';
    expect(BigInt(text) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    // JSON.parse would round this number to a multiple of 256 ns; the string and bigint paths do not.
    expect(Number(text)).not.toBe(1741431912704418263n);
    expect(nanosToMicros(text)).toBe(1741431912704418);
    expect(nanosToMicros(1741431912704418999n)).toBe(1741431912704418);
    expect(formatInstant(nanosToMicros(text))).toBe('2025-03-08T11:05:12.704418Z');
  });
  it('formats whole seconds without a fraction', () => {
    expect(formatInstant(Date.UTC(2024, 8, 1) * 1000)).toBe('2024-09-01T00:00:00Z');
  });
  it('writes reports with exactly six fraction digits, whatever the precision it was given', () => {
    const midnight = Date.UTC(2024, 8, 1) * 1000;
    expect(formatTimestamp(midnight)).toBe('2024-09-01T00:00:00.000000Z');
    expect(formatTimestamp(midnight + 1)).toBe('2024-09-01T00:00:00.000001Z');
    expect(formatTimestamp(midnight + 250_000)).toBe('2024-09-01T00:00:00.250000Z');
    expect(formatTimestamp(midnight - 1)).toBe('2024-08-31T23:59:59.999999Z');
    expect(timestampText('2024-09-01T02:00:00.123456789+02:00')).toBe('2024-09-01T00:00:00.123456Z');
    expect(timestampText('0001-01-01T00:00:00Z')).toBeNull();
    expect(readableInstant('2024-09-01T00:00:00.000000Z')).toBe('2024-09-01T00:00:00Z');
  });
});

describe('durations', () => {
  it.each([
    ['4h', 4 * 3600e6],
    ['90m', 90 * 60e6],
    ['1h30m', 90 * 60e6],
    ['0', 0],
    ['2d', 2 * 86400e6],
  ])('%s', (text, expected) => expect(parseDuration(text)).toBe(expected));
  it('rejects garbage', () => {
    expect(parseDuration('4 hours')).toBeNull();
    expect(parseDuration('')).toBeNull();
  });
});

describe('calendar days', () => {
  it('accepts 29 February in a leap year only', () => {
    expect(parseDay('2024-02-29', '--from')).toEqual({ year: 2024, month: 2, day: 29 });
    expect(() => parseDay('2023-02-29', '--from')).toThrow(BadInputError);
  });
  it('rejects impossible dates with the flag and a fix', () => {
    expect(() => parseDay('2025-02-30', '--to')).toThrow('--to 2025-02-30 is not a real calendar date (February has no day 30): pick an existing day');
    expect(() => parseDay('2025-13-01', '--to')).toThrow(/not a real calendar date/);
    expect(() => parseDay('1/2/2025', '--from')).toThrow('--from "1/2/2025" is not a date: use YYYY-MM-DD, e.g. 2024-09-01');
  });
  it('rejects --from after --to and unknown zones', () => {
    expect(() => resolvePeriod('2024-09-02', '2024-09-01', 'UTC')).toThrow(/--from 2024-09-02 is after --to 2024-09-01/);
    expect(() => resolvePeriod('2024-09-01', '2024-09-01', 'Mars/Olympus')).toThrow(/not a known IANA time zone/);
  });
  it('starts a day whose midnight does not exist at its first instant (America/Santiago)', () => {
    const p = resolvePeriod('2024-09-08', '2024-09-08', 'America/Santiago');
    expect(new Date(p.startUs / 1000).toISOString()).toBe('2024-09-08T04:00:00.000Z');
    expect((p.endUs - p.startUs) / 3600e6).toBe(23);
  });
});

describe('the fast path for the common spelling', () => {
  it('agrees with the calendar on 2,000 pseudo-random instants, leap days included', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const ms = Date.UTC(1971 + rand(200), rand(12), 1 + rand(31), rand(24), rand(60), rand(60));
      const iso = new Date(ms).toISOString().slice(0, 19);
      const digits = rand(10);
      const frac = String(rand(1_000_000_000)).padStart(9, '0').slice(0, digits);
      const text = `${iso}${digits ? '.' + frac : ''}Z`;
      expect(parseInstant(text), text).toBe(ms * 1000 + (digits ? +(frac + '000000').slice(0, 6) : 0));
    }
    expect(parseInstant('2024-02-29T23:59:59.999999999Z')).toBe(Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 999999);
  });
  it('still rejects impossible days and malformed fractions', () => {
    expect(() => parseInstant('2023-02-29T00:00:00Z')).toThrow(/real calendar/);
    expect(() => parseInstant('2024-09-01T00:00:00.Z')).toThrow(/RFC 3339/);
    expect(() => parseInstant('2024-09-01T00:00:00.12a4Z')).toThrow(/RFC 3339/);
    expect(() => parseInstant('2024-09-01T24:00:00Z')).toThrow();
  });
  it('rejects stray characters where digits belong', () => {
    for (const bad of ['2024-1/-01T00:00:00Z', '2024-01-01T00:00:0:Z', '202/-01-01T00:00:00Z', '2024-01-01T0 :00:00Z']) expect(() => parseInstant(bad), bad).toThrow(/RFC 3339/);
  });
  it('keeps years below 100 (no 19xx shift) in the general path', () => {
    expect(parseInstant('0050-03-01T00:00:00+00:00')).toBe(parseInstant('0050-03-01T00:00:00Z'));
  });
});
