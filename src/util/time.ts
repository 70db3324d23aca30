import type { Micros } from '../accounting/types.js';

/**
 * Instants are integer microseconds since the epoch. Sources give RFC 3339 strings with up
 * to nanosecond fractions (Nomad) and Unix-nanosecond integers beyond 2^53 (Nomad's
 * CreateTime/ModifyTime); both are truncated to microseconds here, exactly.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

export class BadTimeError extends Error {}

/** True for Go's zero time in any spelling of year 1 (`0001-01-01T00:00:00Z`). */
function isGoZeroTime(s: string): boolean {
  return s.startsWith('0001-01-01');
}

/**
 * Parses an RFC 3339 instant to microseconds. `null`, `undefined`, `""` and Go's zero time
 * mean "unset" and give null. Anything else that is not RFC 3339 throws BadTimeError.
 */
export function parseInstant(value: unknown): Micros | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value !== 'string') throw new BadTimeError(`expected an RFC 3339 string, got ${JSON.stringify(value)}`);
  if (isGoZeroTime(value)) return null;
  const fast = parseCommonInstant(value);
  if (fast !== null) return fast;
  const m = RFC3339.exec(value);
  if (!m) throw new BadTimeError(`not an RFC 3339 time: ${JSON.stringify(value)}`);
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as string[];
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not turn years 0-99 into 1900-1999.
  date.setUTCFullYear(+y!, +mo! - 1, +d!);
  date.setUTCHours(+h!, +mi!, +s!, 0);
  const ms = date.getTime();
  const check = new Date(ms);
  if (check.getUTCDate() !== +d! || check.getUTCMonth() !== +mo! - 1 || +h! > 23 || +mi! > 59 || +s! > 60) {
    throw new BadTimeError(`not a real calendar time: ${JSON.stringify(value)}`);
  }
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    offsetMin = sign * (+zone!.slice(1, 3) * 60 + +zone!.slice(4, 6));
  }
  const micros = frac ? +(frac + '00000').slice(0, 6) : 0;
  return (ms - offsetMin * 60_000) * 1000 + micros;
}

/** The text of an instant that is set and well formed; null for unset ones (null, "", Go's zero time) and malformed ones. */
export function instantText(value: unknown): string | null {
  try {
    return parseInstant(value) === null ? null : (value as string);
  } catch (e) {
    if (e instanceof BadTimeError) return null;
    throw e;
  }
}

const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/**
 * The common spelling `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` read by position, several times faster
 * than the general parser below; anything else (offsets, odd values) returns null.
 */
function parseCommonInstant(s: string): Micros | null {
  const n = s.length;
  if (n < 20 || s.charCodeAt(n - 1) !== 90 /* Z */ || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return null;
  // Every position of the date and time must be a digit: a stray '/' or ':' would still
  // give a plausible number below.
  for (const i of [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  const d = (i: number) => s.charCodeAt(i) - 48;
  const two = (i: number) => d(i) * 10 + d(i + 1);
  const year = d(0) * 1000 + d(1) * 100 + two(2);
  const month = two(5);
  const day = two(8);
  const hour = two(11);
  const minute = two(14);
  const second = two(17);
  let micros = 0;
  if (n > 20) {
    if (s.charCodeAt(19) !== 46 /* . */ || n < 22 || n > 30) return null;
    for (let i = 20; i < 26; i++) {
      const c = i < n - 1 ? d(i) : 0;
      if (c < 0 || c > 9) return null;
      micros = micros * 10 + c;
    }
    for (let i = 26; i < n - 1; i++) if (d(i) < 0 || d(i) > 9) return null;
  } else if (n !== 20) return null;
  if (!(year >= 1 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59) || Number.isNaN(year + month + day + hour + minute + second)) return null;
  const leap = month > 2 && ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0) ? 1 : 0;
  const monthDays = month === 2 ? (((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0) ? 29 : 28) : [31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  if (day > monthDays) return null;
  // Days since the epoch by the civil calendar, as Date.UTC computes them.
  const y = year - 1;
  const days = 365 * (year - 1970) + (Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400)) - 477 + DAYS_BEFORE_MONTH[month - 1]! + leap + day - 1;
  return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros;
}

/** Unix nanoseconds (as bigint, decimal string or a safe number) to microseconds, truncated. */
export function nanosToMicros(value: bigint | string | number): Micros {
  const ns = typeof value === 'bigint' ? value : BigInt(value);
  // BigInt division truncates toward zero; instants before 1970 do not occur here.
  return Number(ns / 1000n);
}

/**
 * Microseconds to the one timestamp form of every CSV and JSON report: RFC 3339 UTC with
 * exactly six fraction digits, `2024-09-01T00:00:00.000000Z` (docs/accounting.md#report-timestamps).
 * One fixed width lets pandas, spreadsheets and `sort` read a whole column alike.
 */
export function formatTimestamp(us: Micros): string {
  const ms = Math.floor(us / 1000);
  const micros = String(us - Math.floor(ms / 1000) * 1_000_000).padStart(6, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${micros}Z`;
}

/**
 * An RFC 3339 text in any offset and precision, in the report form; null when unset
 * (null, "" or Go's zero time). Throws BadTimeError on malformed text.
 */
export function timestampText(value: unknown): string | null {
  const us = parseInstant(value);
  return us === null ? null : formatTimestamp(us);
}

/** A report timestamp (or any RFC 3339 text) as people read it: formatInstant's form. */
export function readableInstant(text: string): string {
  const us = parseInstant(text);
  return us === null ? text : formatInstant(us);
}

/**
 * Microseconds to RFC 3339 UTC for people and for snapshot files: the fraction is printed
 * only when non-zero (`2024-09-01T00:00:00Z`). Reports' CSV and JSON use formatTimestamp.
 */
export function formatInstant(us: Micros): string {
  const ms = Math.floor(us / 1000);
  const sub = us - ms * 1000;
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (sub === 0 && ms % 1000 === 0) return iso.slice(0, 19) + 'Z';
  const micros = String((ms % 1000 + 1000) % 1000 * 1000 + sub).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}

export const MICROS_PER_HOUR = 3_600_000_000;
export const MICROS_PER_MINUTE = 60_000_000;

/** Parses a duration such as `4h`, `90m`, `30s`, `1h30m`, `2d` or `0` to microseconds. */
export function parseDuration(text: string): Micros | null {
  const t = text.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(d|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += n * (unit === 'd' ? 86_400e6 : unit === 'h' ? 3_600e6 : unit === 'm' ? 60e6 : 1e6);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== t.length) return null;
  return Math.round(total);
}

/**
 * A span for people, truncated to its two largest units: `3d 4h`, `5h 12m`, `42m`; under a
 * minute (or negative, as with a clock behind the snapshot) it is `0m`.
 */
export function formatSpan(us: Micros): string {
  const minutes = Math.max(0, Math.floor(us / MICROS_PER_MINUTE));
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes % 60}m`;
  return `${minutes}m`;
}
