import { BadInputError } from './errors.js';
import { dayOf, resolvePeriod } from './period.js';
import type { Micros, Period } from './types.js';

/** Calendar months, `YYYY-MM`, in a report time zone: what monthly reports cover. */

export interface Month {
  year: number;
  /** 1–12. */
  month: number;
}

export function parseMonth(text: string, what = '--month'): Month {
  const m = /^(\d{4})-(\d{2})$/.exec(text);
  const month = m ? Number(m[2]) : 0;
  if (!m || month < 1 || month > 12) throw new BadInputError(`${what} ${JSON.stringify(text)} is not a month: use YYYY-MM, e.g. 2024-09`);
  if (Number(m[1]) < 1970) throw new BadInputError(`${what} ${text} is before 1970: give a month of the snapshots' history`);
  return { year: Number(m[1]), month };
}

export function formatMonth(m: Month): string {
  return `${m.year}-${String(m.month).padStart(2, '0')}`;
}

/** PrimeHub's `report_date`: YYYYMM. */
export function reportDate(m: Month): string {
  return `${m.year}${String(m.month).padStart(2, '0')}`;
}

export function previousMonth(m: Month): Month {
  return m.month === 1 ? { year: m.year - 1, month: 12 } : { year: m.year, month: m.month - 1 };
}

export function nextMonth(m: Month): Month {
  return m.month === 12 ? { year: m.year + 1, month: 1 } : { year: m.year, month: m.month + 1 };
}

/** The month, in `tz`, that contains the instant `us`. */
export function monthOf(us: Micros, tz: string): Month {
  const [year, month] = dayOf(us, tz).split('-').map(Number) as [number, number];
  return { year, month };
}

/** The whole month as a period: its first day 00:00 to the next month's first day 00:00, in `tz`. */
export function monthPeriod(m: Month, tz: string): Period {
  const last = new Date(Date.UTC(m.year, m.month, 0)).getUTCDate();
  const mm = String(m.month).padStart(2, '0');
  return resolvePeriod(`${m.year}-${mm}-01`, `${m.year}-${mm}-${String(last).padStart(2, '0')}`, tz);
}

/** Every month from `first` to `last`, both included. */
export function monthsBetween(first: Month, last: Month): Month[] {
  const out: Month[] = [];
  for (let m = first; m.year < last.year || (m.year === last.year && m.month <= last.month); m = nextMonth(m)) out.push(m);
  return out;
}
