import type { Micros } from '../accounting/types.js';
import { formatInstant, formatSpan } from '../util/time.js';

/**
 * `hourmeter check`: is the newest snapshot recent and complete, and has every watcher
 * written lately? Pure: what the newest file and the journals say and the time now in, a
 * verdict and its one line out.
 */

export interface LatestFacts {
  /** The file's name, relative to the snapshot folder. */
  file: string;
  /** Capture time: from the content when readable, else from the file name. */
  capturedUs: Micros;
  /** Why the file could not be read, or null. */
  unreadable: string | null;
  failedScopes: readonly { namespace: string; reason: string }[];
  /** Namespaces captured, and allocations holding resources (readable files only). */
  namespaces: number;
  holding: number;
  /** Each watcher's journal: its source and the time of its last line (null: no line yet). */
  watchers?: readonly { source: string; lastUs: Micros | null; disconnected: boolean }[];
  /** Captures waiting in the spool for a store that could not be reached (history/spool.ts). */
  spool?: SpoolFacts;
}

export interface SpoolFacts {
  dir: string;
  /** Snapshot documents waiting. */
  files: number;
  /** Journal files a watcher spooled, and their lines. */
  journalFiles?: number;
  journalLines?: number;
  /** The oldest waiting capture's time, or null when none waits. */
  oldestUs: Micros | null;
}

/** Why a spool that is not empty fails the check: what waits, since when, and what forwards it; null when empty. */
export function spoolReason(spool: SpoolFacts | undefined, nowUs: Micros): string | null {
  const journalFiles = spool?.journalFiles ?? 0;
  const journalLines = spool?.journalLines ?? 0;
  if (!spool || (spool.files === 0 && journalFiles === 0) || spool.oldestUs === null) return null;
  const what: string[] = [];
  if (spool.files > 0) what.push(plural(spool.files, 'snapshot'));
  if (journalFiles > 0) what.push(`${plural(journalLines, 'journal line')} (${plural(journalFiles, 'file')})`);
  const one = what.length === 1 && (spool.files === 1 || (journalFiles > 0 && journalLines === 1));
  return (
    `${what.join(' and ')} wait${one ? 's' : ''} in the spool ${spool.dir} since ${formatInstant(spool.oldestUs)} ` +
    `(${formatSpan(Math.max(0, nowUs - spool.oldestUs))}): the store could not be reached; \`hourmeter store push\` forwards them once it can`
  );
}

export interface CheckLimits {
  nowUs: Micros;
  maxAgeUs: Micros;
  /** --max-age as given, for the message. */
  maxAgeText: string;
  /** How long a watcher's journal may stay silent (--max-silence), and as given. */
  maxSilenceUs?: Micros;
  maxSilenceText?: string;
}

export type Verdict = { ok: true; line: string } | { ok: false; reason: string };

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function checkLatest(f: LatestFacts, limits: CheckLimits): Verdict {
  const ageUs = limits.nowUs - f.capturedUs;
  const age = formatSpan(ageUs);
  const at = formatInstant(f.capturedUs);
  const reasons: string[] = [];
  if (ageUs > limits.maxAgeUs) reasons.push(`latest snapshot ${at} is ${age} old (max ${limits.maxAgeText})`);
  if (f.unreadable !== null) reasons.push(`latest snapshot file ${f.file} cannot be read: ${f.unreadable}`);
  if (f.failedScopes.length > 0) {
    const what = f.failedScopes.map((s) => `${s.namespace === '*' ? 'the namespace list' : s.namespace} (${s.reason})`).join(', ');
    reasons.push(`latest snapshot ${at} failed to capture ${what}`);
  }
  const heard: string[] = [];
  for (const w of f.watchers ?? []) {
    const silentUs = w.lastUs === null ? Infinity : limits.nowUs - w.lastUs;
    const state = w.disconnected ? ', disconnected' : '';
    if (limits.maxSilenceUs !== undefined && silentUs > limits.maxSilenceUs) {
      reasons.push(w.lastUs === null ? `watcher ${w.source} has written nothing yet` : `watcher ${w.source} silent for ${formatSpan(silentUs)} since ${formatInstant(w.lastUs)}${state} (max ${limits.maxSilenceText})`);
    } else if (w.lastUs !== null) heard.push(`watcher ${w.source} heard ${formatSpan(Math.max(0, silentUs))} ago${state}`);
  }
  const spooled = spoolReason(f.spool, limits.nowUs);
  if (spooled !== null) reasons.push(spooled);
  if (reasons.length > 0) return { ok: false, reason: reasons.join('; ') };
  return {
    ok: true,
    line: `ok: latest snapshot ${at} is ${age} old (max ${limits.maxAgeText}), ${plural(f.namespaces, 'namespace')}, ${plural(f.holding, 'allocation')} holding resources${heard.map((h) => `; ${h}`).join('')}`,
  };
}

/**
 * `check` over several clusters (docs/accounting.md#clusters): each cluster's newest snapshot is
 * judged as the newest of a folder is, so a cluster that stopped capturing fails the check
 * even while another goes on. `newest` is the verdict on the history's newest file (its
 * watchers and spool included); the clusters' reasons are added, each naming its cluster.
 */
export function checkClusters(newest: Verdict, clusters: readonly (LatestFacts & { cluster: string })[], limits: CheckLimits): Verdict {
  const reasons: string[] = newest.ok ? [] : [newest.reason];
  const lines: string[] = [];
  for (const c of clusters) {
    const v = checkLatest({ ...c, watchers: [], spool: undefined }, limits);
    if (v.ok) lines.push(`cluster ${c.cluster} ${v.line.slice('ok: '.length)}`);
    else reasons.push(`cluster ${c.cluster}: ${v.reason}`);
  }
  if (reasons.length > 0) return { ok: false, reason: reasons.join('; ') };
  return { ok: true, line: `${newest.ok ? newest.line : 'ok'}; ${lines.join('; ')}` };
}
