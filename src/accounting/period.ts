import type { TZDate } from '@date-fns/tz';
import { createRequire } from 'node:module';
import { BadInputError } from './errors.js';
import type { Micros, Period } from './types.js';

/** Loaded on first use: UTC, the default zone, needs no zone data, and loading it is a noticeable part of start-up. */
let TZDateClass: typeof TZDate | null = null;
const zoned = (): typeof TZDate => (TZDateClass ??= (createRequire(import.meta.url)('@date-fns/tz') as typeof import('@date-fns/tz')).TZDate);

/**
 * Calendar periods (docs/accounting.md#period): `--from D1 --to D2` are whole days in a time zone,
 * both included, giving the half-open instant range [D1 00:00, (D2+1) 00:00).
 */

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

export interface CalendarDay {
  year: number;
  month: number; // 1..12
  day: number;
}

/** Parses a strict, real calendar date; `what` names the flag in the error. */
export function parseDay(text: string, what: string): CalendarDay {
  const m = DAY.exec(text);
  if (!m) throw new BadInputError(`${what} ${JSON.stringify(text)} is not a date: use YYYY-MM-DD, e.g. 2024-09-01`);
  const year = +m[1]!;
  const month = +m[2]!;
  const day = +m[3]!;
  if (year < 1970) throw new BadInputError(`${what} ${text} is before 1970: no snapshot can be that old; check the year`);
  const check = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || month > 12 || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    throw new BadInputError(`${what} ${text} is not a real calendar date (${monthName(month)} has no day ${day}): pick an existing day`);
  }
  return { year, month, day };
}

function monthName(month: number): string {
  if (month < 1 || month > 12) return `month ${month}`;
  return new Date(Date.UTC(2000, month - 1, 1)).toLocaleString('en', { month: 'long', timeZone: 'UTC' });
}

/** Throws BadInputError unless `tz` is an IANA zone this runtime knows. */
export function checkTimeZone(tz: string, what = '--tz'): string {
  // UTC needs no zone data; loading it is a noticeable part of a short report's run.
  if (tz === 'UTC') return tz;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new BadInputError(`${what} ${JSON.stringify(tz)} is not a known IANA time zone: use e.g. UTC or Europe/Madrid`);
  }
  return tz;
}

/** The instant at which `day` begins in `tz` (the first existing instant of that day). */
export function dayStartUs(day: CalendarDay, tz: string): Micros {
  if (tz === 'UTC') return Date.UTC(day.year, day.month - 1, day.day) * 1000;
  return new (zoned())(day.year, day.month - 1, day.day, 0, 0, 0, 0, tz).getTime() * 1000;
}

export function formatDay(day: CalendarDay): string {
  return `${String(day.year).padStart(4, '0')}-${String(day.month).padStart(2, '0')}-${String(day.day).padStart(2, '0')}`;
}

function nextDay(day: CalendarDay): CalendarDay {
  const d = new Date(Date.UTC(day.year, day.month - 1, day.day + 1));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** The calendar day, in `tz`, that contains the instant `us`. */
export function dayOf(us: Micros, tz: string): string {
  if (tz === 'UTC') {
    const u = new Date(Math.floor(us / 1000));
    return formatDay({ year: u.getUTCFullYear(), month: u.getUTCMonth() + 1, day: u.getUTCDate() });
  }
  const d = new (zoned())(Math.floor(us / 1000), tz);
  return formatDay({ year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate() });
}

/**
 * The period of `from` to `to`, both included. `names` says where each date came from, for
 * the errors: a flag by default, or a config file's key.
 */
export function resolvePeriod(from: string, to: string, timezone: string, names: { from: string; to: string } = { from: '--from', to: '--to' }): Period {
  checkTimeZone(timezone);
  const d1 = parseDay(from, names.from);
  const d2 = parseDay(to, names.to);
  if (formatDay(d1) > formatDay(d2)) {
    throw new BadInputError(`${names.from} ${from} is after ${names.to} ${to}: the period runs from the first day to the last, both included`);
  }
  return {
    from: formatDay(d1),
    to: formatDay(d2),
    timezone,
    startUs: dayStartUs(d1, timezone),
    endUs: dayStartUs(nextDay(d2), timezone),
  };
}
