import { Command, Option } from 'commander';
import { dayOf, resolvePeriod } from '../accounting/period.js';
import type { EstimateOptions } from '../accounting/reconstruct.js';
import type { GapPolicy, Micros, Period } from '../accounting/types.js';
import type { Listing } from '../snapshots/files.js';
import { UsageError } from '../util/errors.js';
import { parseDuration } from '../util/time.js';
import { FROM, TO, type Settings } from './options.js';

/**
 * Options of the summary commands (`summarize`, `merge-users`, `plot`), declared once: the
 * summaries folder and its CSV delimiter mean the same in all three, and `summarize`
 * estimates lifetimes with the same settings as `stats`.
 */

/** The layouts `summarize --format` writes (see reports/summaries.ts). */
export const SUMMARY_FORMATS = ['hourmeter', 'ai4os'] as const;

export const GAP_POLICIES: readonly GapPolicy[] = ['midpoint', 'last-seen', 'next'];

export function addEstimateOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--gap-policy <policy>', `end of an allocation that vanished between snapshots: ${GAP_POLICIES.join(', ')} (default: midpoint)`))
    .addOption(new Option('--gc-window <duration>', "the scheduler's GC window, e.g. 4h, 90m, 0 (default: 4h for AI4OS files, 1h for native Nomad, 0 for Kubernetes)"));
}

export function estimateOptions(s: Settings): EstimateOptions {
  const gapPolicy = s.choice('gap-policy', GAP_POLICIES, 'midpoint');
  let gcWindowUs: Micros | null = null;
  const gc = s.string('gc-window');
  if (gc !== undefined) {
    gcWindowUs = parseDuration(gc);
    if (gcWindowUs === null) throw new UsageError(`${s.source('gc-window')} ${JSON.stringify(gc)} is not a duration: use e.g. 4h, 90m or 0`);
  }
  return { gapPolicy, gcWindowUs };
}

const DEFAULT_SUMMARIES = 'summaries';

/** --summaries: the folder `summarize` writes and `merge-users` and `plot` read. */
export const summariesDir = (s: Settings): string => s.string('summaries', DEFAULT_SUMMARIES);

export function addSummariesOption(cmd: Command, what: string): Command {
  return cmd.addOption(new Option('--summaries <dir>', `${what} (default: ./${DEFAULT_SUMMARIES})`).env('HOURMETER_SUMMARIES'));
}

/** --delimiter: the summaries keep AI4OS's ";" by default, reports printed as CSV a ",". */
export function addDelimiterOption(cmd: Command, fallback: ';' | ',' = ';'): Command {
  return cmd.addOption(new Option('--delimiter <char>', `CSV field separator, or tab (default: "${fallback}"${fallback === ';' ? ', as AI4OS' : ''})`));
}

export function delimiterOf(s: Settings, fallback: ';' | ',' = ';'): string {
  const d = s.string('delimiter', fallback);
  const named: Record<string, string> = { tab: '\t', '\\t': '\t', semicolon: ';', comma: ',' };
  const c = named[d] ?? d;
  if ([...c].length !== 1 || c === '"' || c === '\n' || c === '\r' || c === '\uFEFF') {
    throw new UsageError(`${s.source('delimiter')} ${JSON.stringify(d)}: the separator is one character other than a quote or a line break, e.g. ";" or "," (or "tab")`);
  }
  return c;
}

/** Where --from and --to came from (a flag, or a config file's key), as errors name them. */
export function dateNames(s: Settings): { from: string; to: string } {
  return { from: s.source('from'), to: s.source('to') };
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
