import { Command, Option } from 'commander';
import { dayOf, resolvePeriod } from '../accounting/period.js';
import type { EstimateOptions } from '../accounting/reconstruct.js';
import type { GapPolicy, Micros, Period } from '../accounting/types.js';
import type { Listing } from '../snapshots/files.js';
import { UsageError } from '../util/errors.js';
import { parseDuration } from '../util/time.js';
import { FROM, TO, type Settings, type SharedOption } from './options.js';

/**
 * Options of the summary commands (`summarize`, `merge-users`, `plot`), declared once: the
 * summaries folder and its CSV delimiter mean the same in all three, and `summarize`
 * estimates lifetimes with the same settings as `stats`.
 */

/** The layouts `summarize --format` writes (see reports/summaries.ts). */
export const SUMMARY_FORMATS = ['hourmeter', 'ai4os'] as const;

export const GAP_POLICIES: readonly GapPolicy[] = ['midpoint', 'last-seen', 'next'];
const DEFAULT_GAP_POLICY: GapPolicy = 'midpoint';

/** --gap-policy: where a lifetime that vanished between snapshots ends. */
export const GAP_POLICY: SharedOption<GapPolicy> = {
  name: 'gap-policy',
  option: () => new Option('--gap-policy <policy>', `end of an allocation that vanished between snapshots: ${GAP_POLICIES.join(', ')} (default: ${DEFAULT_GAP_POLICY})`),
  read: (s) => s.choice('gap-policy', GAP_POLICIES, DEFAULT_GAP_POLICY),
};

/** --gc-window in microseconds, or null for the default of the snapshots' kind. */
export const GC_WINDOW: SharedOption<Micros | null> = {
  name: 'gc-window',
  option: () => new Option('--gc-window <duration>', "the scheduler's GC window, e.g. 4h, 90m, 0 (default: 4h for AI4OS files, 1h for native Nomad, 0 for Kubernetes)"),
  read: (s) => {
    const gc = s.string('gc-window');
    if (gc === undefined) return null;
    const us = parseDuration(gc);
    if (us === null) throw new UsageError(`${s.source('gc-window')} ${JSON.stringify(gc)} is not a duration: use e.g. 4h, 90m or 0`);
    return us;
  },
};

export function addEstimateOptions(cmd: Command): Command {
  return cmd.addOption(GAP_POLICY.option()).addOption(GC_WINDOW.option());
}

export function estimateOptions(s: Settings): EstimateOptions {
  const gapPolicy = s.get(GAP_POLICY);
  return { gapPolicy, gcWindowUs: s.get(GC_WINDOW) };
}

const DEFAULT_SUMMARIES = 'summaries';

/** --summaries: the folder `summarize` writes and `merge-users` and `plot` read; `help` says which. */
export const SUMMARIES: SharedOption<string> = {
  name: 'summaries',
  option: (help = 'folder of the CSV files written by `summarize`') => new Option('--summaries <dir>', `${help} (default: ./${DEFAULT_SUMMARIES})`).env('HOURMETER_SUMMARIES'),
  read: (s) => s.string('summaries', DEFAULT_SUMMARIES),
};

/** --delimiter, checked and with its names resolved: one character. */
function delimiterOption(fallback: ';' | ','): SharedOption<string> {
  return {
    name: 'delimiter',
    option: () => new Option('--delimiter <char>', `CSV field separator, or tab (default: "${fallback}"${fallback === ';' ? ', as AI4OS' : ''})`),
    read: (s) => {
      const d = s.string('delimiter', fallback);
      const named: Record<string, string> = { tab: '\t', '\\t': '\t', semicolon: ';', comma: ',' };
      const c = named[d] ?? d;
      if ([...c].length !== 1 || c === '"' || c === '\n' || c === '\r' || c === '\uFEFF') {
        throw new UsageError(`${s.source('delimiter')} ${JSON.stringify(d)}: the separator is one character other than a quote or a line break, e.g. ";" or "," (or "tab")`);
      }
      return c;
    },
  };
}

/** The summaries keep AI4OS's ";" by default; reports printed as CSV a ",". */
export const SUMMARY_DELIMITER = delimiterOption(';');
export const CSV_DELIMITER = delimiterOption(',');

/** Where --from and --to came from (a flag, or a config file's key), as errors name them. */
export function dateNames(s: Settings): { from: string; to: string } {
  return { from: s.sourceOf(FROM), to: s.sourceOf(TO) };
}

/** Checks explicit dates before anything touches the disk, so that a typo fails fast. */
export function checkDates(s: Settings, tz: string): void {
  const from = s.get(FROM);
  const to = s.get(TO);
  const names = dateNames(s);
  // A date given alone is checked against itself, under its own name.
  if (from !== undefined || to !== undefined) resolvePeriod(from ?? to!, to ?? from!, tz, { from: from !== undefined ? names.from : names.to, to: to !== undefined ? names.to : names.from });
}

/** The report period: --from and --to, each defaulting to the first or last snapshot day. */
export function periodOf(s: Settings, listing: Listing, tz: string): Period {
  const from = s.get(FROM);
  const to = s.get(TO);
  const firstDay = dayOf(listing.files[0]!.timeUs, tz);
  const lastDay = dayOf(listing.files[listing.files.length - 1]!.timeUs, tz);
  const names = dateNames(s);
  if (from !== undefined && to === undefined && from > lastDay) throw new UsageError(`${names.from} ${from} is after the last snapshot day ${lastDay}: give --to as well, or an earlier --from`);
  if (to !== undefined && from === undefined && to < firstDay) throw new UsageError(`${names.to} ${to} is before the first snapshot day ${firstDay}: give --from as well, or a later --to`);
  return resolvePeriod(from ?? firstDay, to ?? lastDay, tz, names);
}
