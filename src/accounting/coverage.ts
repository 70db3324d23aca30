import { clusterLabel } from './clusters.js';
import type { Micros } from './types.js';
import { formatInstant, formatTimestamp } from '../util/time.js';

/**
 * What a report's snapshots cover (docs/accounting.md, "Coverage"). A stretch of the period
 * with no snapshot for longer than the max gap is *uncovered*: the resource-hours in it are
 * unknown, not zero. Pure: capture times and a period in, stretches out.
 */

export type StretchKind = 'watched' | 'sampled' | 'uncovered';

export interface Stretch {
  startUs: Micros;
  endUs: Micros;
  kind: StretchKind;
  /** For an uncovered stretch: the snapshots either side of the gap (null: none on that side). */
  afterUs?: Micros | null;
  beforeUs?: Micros | null;
}

export interface Coverage {
  /** Sampled time over the period's length, 0 to 1. */
  coveredFraction: number;
  /** The gap past which a stretch is uncovered; null when no interval could be measured. */
  maxGapUs: Micros | null;
  /** Tiling the period in order (up to untilUs): no two sampled ones in a row; each gap its own. */
  stretches: Stretch[];
  /** Set when the period runs past now: the stretches end there, since the rest has not happened. */
  untilUs: Micros | null;
  /**
   * When the history holds several clusters (docs/accounting.md#clusters): each one's own
   * coverage, by cluster name; the stretches above are then their intersection, a moment
   * counting as covered only where every cluster covers it.
   */
  clusters?: { cluster: string; coverage: Coverage }[];
}

/** The JSON form every report carries. Later kinds and per-cluster stretches extend it. */
export interface CoverageJson {
  covered_fraction: number;
  max_gap_hours: number | null;
  stretches: { start: string; end: string; kind: StretchKind }[];
  /** Where the stretches end when the period was still running: the time of the report. */
  until: string | null;
  /** The line people read (see coverageWarning); null when nothing is uncovered. */
  warning: string | null;
  /** Per cluster, when the history holds several (see Coverage.clusters). */
  clusters?: ({ cluster: string } & Omit<CoverageJson, 'clusters'>)[];
}

/** Snapshots on either side of a report's window that the default max gap also measures. */
export const CADENCE_NEIGHBOURS = 64;

/** The default max gap: 3 × the median interval between the given capture times; null below two. */
export function defaultMaxGapUs(capturesUs: readonly Micros[] | Float64Array): Micros | null {
  const t = sorted(capturesUs);
  const gaps = new Float64Array(Math.max(0, t.length - 1));
  let n = 0;
  for (let i = 1; i < t.length; i++) {
    const d = t[i]! - t[i - 1]!;
    // Two files of one capture time are one snapshot.
    if (d > 0) gaps[n++] = d;
  }
  if (n === 0) return null;
  const g = gaps.subarray(0, n).sort();
  const mid = n >> 1;
  return 3 * (n % 2 === 1 ? g[mid]! : (g[mid - 1]! + g[mid]!) / 2);
}

/**
 * The capture times in order. Reports read them nearly always sorted (by file name; a
 * file's own capture time may differ slightly), so they are copied and sorted only when
 * they are not: a year of 10-minute snapshots is fifty thousand of them.
 */
function sorted(values: readonly Micros[] | Float64Array): readonly Micros[] | Float64Array {
  for (let i = 1; i < values.length; i++) if (values[i - 1]! > values[i]!) return Float64Array.from(values).sort();
  return values;
}

/**
 * The stretches of `window` given the capture times of the snapshots in and around it (at
 * least the last one at or before its start and the first one at or after its end, when
 * they exist). A gap between consecutive snapshots longer than `maxGapUs` is uncovered
 * where it meets the window, and so is the part of the window before the first snapshot or
 * after the last one when that part is longer than `maxGapUs`. A null max gap (no interval
 * known) leaves only the snapshots' instants covered.
 */
export function coverageOf(capturesUs: readonly Micros[] | Float64Array, window: { startUs: Micros; endUs: Micros }, maxGapUs: Micros | null): Coverage {
  const { startUs, endUs } = window;
  const limit = maxGapUs ?? 0;
  const t = sorted(capturesUs);
  // The gaps first, each bounded by its snapshots (null: none on that side); what lies
  // between them is sampled. Only gaps are built: most intervals are short.
  const gaps: Stretch[] = [];
  const gap = (s: Micros, e: Micros, afterUs: Micros | null, beforeUs: Micros | null) => {
    const from = Math.max(s, startUs);
    const to = Math.min(e, endUs);
    if (to > from) gaps.push({ startUs: from, endUs: to, kind: 'uncovered', afterUs, beforeUs });
  };
  if (t.length === 0) gap(startUs, endUs, null, null);
  else {
    const first = t[0]!;
    const last = t[t.length - 1]!;
    // Judged by the part inside the window: a first snapshot at 00:01 costs nothing.
    if (first > startUs && Math.min(first, endUs) - startUs > limit) gap(startUs, first, null, first);
    for (let i = 1; i < t.length; i++) if (t[i]! - t[i - 1]! > limit) gap(t[i - 1]!, t[i]!, t[i - 1]!, t[i]!);
    if (last < endUs && endUs - Math.max(last, startUs) > limit) gap(last, endUs, last, null);
  }
  const stretches: Stretch[] = [];
  let at = startUs;
  let sampled = 0;
  for (const g of gaps) {
    if (g.startUs > at) {
      stretches.push({ startUs: at, endUs: g.startUs, kind: 'sampled' });
      sampled += g.startUs - at;
    }
    stretches.push(g);
    at = g.endUs;
  }
  if (at < endUs) {
    stretches.push({ startUs: at, endUs, kind: 'sampled' });
    sampled += endUs - at;
  }
  return { coveredFraction: endUs > startUs ? sampled / (endUs - startUs) : 1, maxGapUs, stretches, untilUs: null };
}

export function coverageJson(c: Coverage): CoverageJson {
  const json: CoverageJson = {
    covered_fraction: c.coveredFraction,
    max_gap_hours: c.maxGapUs === null ? null : c.maxGapUs / HOUR_US,
    stretches: c.stretches.map((s) => ({ start: formatTimestamp(s.startUs), end: formatTimestamp(s.endUs), kind: s.kind })),
    until: c.untilUs === null ? null : formatTimestamp(c.untilUs),
    warning: coverageWarning(c),
  };
  if (c.clusters) json.clusters = c.clusters.map((k) => ({ cluster: clusterLabel(k.cluster), ...coverageJson(k.coverage) }));
  return json;
}

const HOUR_US = 3_600_000_000;
const DAY_US = 24 * HOUR_US;
/** Gaps listed one by one in the warning; more are counted. */
const LISTED_GAPS = 3;

/** Up to two decimals, without trailing zeros: 17.25, 30, 6.5. */
function amount(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/**
 * The line people read when part of a period is uncovered, or null when none is:
 * `no snapshot after 2024-09-12T18:01:20Z: 17.25 of 30 days are unknown, not zero`.
 */
export function coverageWarning(c: Coverage): string | null {
  if (c.clusters) {
    // Each cluster's gaps, named: one cluster's snapshots say nothing of another's.
    const lines = c.clusters.flatMap((k) => {
      const w = coverageWarning(k.coverage);
      return w === null ? [] : [`cluster ${clusterLabel(k.cluster)}: ${w}`];
    });
    return lines.length === 0 ? null : lines.join('; ');
  }
  const gaps = c.stretches.filter((s) => s.kind === 'uncovered');
  if (gaps.length === 0) return null;
  // The stretches tile the period.
  const length = c.stretches[c.stretches.length - 1]!.endUs - c.stretches[0]!.startUs;
  const unknown = gaps.reduce((sum, s) => sum + s.endUs - s.startUs, 0);
  const inDays = length >= 2 * DAY_US;
  const unit = inDays ? DAY_US : HOUR_US;
  const what = (s: Stretch): string => {
    const after = s.afterUs ?? null;
    const before = s.beforeUs ?? null;
    if (after === null && before === null) return 'no snapshot in or around the period';
    if (after === null) return `no snapshot before ${formatInstant(before!)}`;
    if (before === null) return `no snapshot after ${formatInstant(after)}`;
    return `no snapshot between ${formatInstant(after)} and ${formatInstant(before)} (${amount((before - after) / HOUR_US)} h)`;
  };
  const listed = gaps.slice(0, LISTED_GAPS).map(what);
  if (gaps.length > LISTED_GAPS) listed.push(`and ${gaps.length - LISTED_GAPS} more gaps`);
  const of = `${amount(length / unit)} ${inDays ? 'days' : 'h'}${c.untilUs === null ? '' : ' so far'}`;
  const share = unknown === length ? `all ${of} are` : `${amount(unknown / unit)} of ${of} ${unknown === unit ? 'is' : 'are'}`;
  return `${listed.join('; ')}: ${share} unknown, not zero`;
}

/** The capture times of a window, their clusters when known, and the watchers' stretches (catalogue.ts, WindowFiles). */
export interface CoverageInput {
  capturedUs: readonly Micros[];
  nearbyUs: readonly Micros[];
  watched?: readonly (Interval & { cluster?: string })[];
  clusters?: readonly (string | null)[];
  nearbyClusters?: readonly (string | null)[];
}

/**
 * A report's coverage, per cluster when the history holds several or `opts.clusters` picks
 * some (docs/accounting.md#clusters): each cluster is judged by its own snapshots and
 * watchers only, and the report is covered where all of them are.
 */
export function windowCoverage(
  files: CoverageInput,
  window: { startUs: Micros; endUs: Micros },
  opts: { maxGapUs?: Micros | null; nowUs?: Micros; clusters?: readonly string[] } = {},
): Coverage {
  const seen = new Set<string>();
  for (const c of files.clusters ?? []) if (c !== null) seen.add(c);
  for (const c of files.nearbyClusters ?? []) if (c !== null) seen.add(c);
  for (const w of files.watched ?? []) seen.add(w.cluster ?? '');
  const picked = opts.clusters?.length ? [...new Set(opts.clusters)] : [...seen];
  if (!files.clusters || (picked.length <= 1 && !opts.clusters?.length)) return oneClusterCoverage(files, window, opts);
  const only = (times: readonly Micros[], clusters: readonly (string | null)[] | undefined, c: string) => times.filter((_, i) => (clusters?.[i] ?? null) === c);
  const per = picked.sort().map((cluster) => ({
    cluster,
    coverage: oneClusterCoverage(
      {
        capturedUs: only(files.capturedUs, files.clusters, cluster),
        nearbyUs: only(files.nearbyUs, files.nearbyClusters, cluster),
        watched: (files.watched ?? []).filter((w) => (w.cluster ?? '') === cluster),
      },
      window,
      opts,
    ),
  }));
  return { ...intersect(per.map((p) => p.coverage)), clusters: per };
}

/** Where every coverage covers: a moment is uncovered if one cluster's is, watched only if all are. */
function intersect(all: readonly Coverage[]): Coverage {
  const first = all[0]!;
  if (all.length === 1) return { ...first };
  const rank: Record<StretchKind, number> = { watched: 0, sampled: 1, uncovered: 2 };
  const cuts = [...new Set(all.flatMap((c) => c.stretches.flatMap((s) => [s.startUs, s.endUs])))].sort((a, b) => a - b);
  const stretches: Stretch[] = [];
  for (let i = 1; i < cuts.length; i++) {
    const [from, to] = [cuts[i - 1]!, cuts[i]!];
    let kind: StretchKind = 'watched';
    for (const c of all) {
      const s = c.stretches.find((x) => x.startUs <= from && x.endUs >= to);
      const k = s?.kind ?? 'uncovered';
      if (rank[k] > rank[kind]) kind = k;
    }
    const last = stretches[stretches.length - 1];
    if (last && last.kind === kind && last.endUs === from) last.endUs = to;
    else stretches.push({ startUs: from, endUs: to, kind });
  }
  const length = (cuts[cuts.length - 1] ?? 0) - (cuts[0] ?? 0);
  const known = stretches.reduce((n, s) => n + (s.kind === 'uncovered' ? 0 : s.endUs - s.startUs), 0);
  const gaps = all.map((c) => c.maxGapUs).filter((g): g is Micros => g !== null);
  return { coveredFraction: length > 0 ? known / length : 1, maxGapUs: gaps.length ? Math.max(...gaps) : null, stretches, untilUs: first.untilUs };
}

/**
 * One cluster's coverage from its window's capture times and their neighbours (WindowFiles),
 * with the max gap given, or by default 3 × the median interval between all of them. A
 * window still running at `nowUs` is judged up to then: the rest of today is not missing.
 */
function oneClusterCoverage(
  files: { capturedUs: readonly Micros[]; nearbyUs: readonly Micros[]; watched?: readonly Interval[] },
  window: { startUs: Micros; endUs: Micros },
  opts: { maxGapUs?: Micros | null; nowUs?: Micros },
): Coverage {
  // Nearby captures lie before and after the window's: their order does not matter here.
  const gap = opts.maxGapUs ?? defaultMaxGapUs(files.nearbyUs.length === 0 ? files.capturedUs : [...files.nearbyUs, ...files.capturedUs]);
  const now = opts.nowUs;
  const running = now !== undefined && window.startUs < now && now < window.endUs;
  const judged = running ? { startUs: window.startUs, endUs: now } : window;
  // The stretches the window overlaps (a history may hold others, an index only gives these).
  const watched = (files.watched ?? []).filter((w) => w.endUs > judged.startUs && w.startUs < judged.endUs);
  // A watcher's stretch ends where it was last heard from: gaps are measured from there.
  const captures = watched.length === 0 ? files.capturedUs : [...files.capturedUs, ...watched.flatMap((w) => [w.startUs, w.endUs])];
  const c = withWatched(coverageOf(captures, judged, gap), watched, judged);
  return running ? { ...c, untilUs: now } : c;
}

export interface Interval {
  startUs: Micros;
  endUs: Micros;
}

/**
 * Lays the time a watcher followed over the sampled and uncovered stretches: inside it,
 * every change was recorded (docs/accounting.md#watched-history), whatever the snapshots.
 */
export function withWatched(c: Coverage, watched: readonly Interval[], window: Interval): Coverage {
  if (watched.length === 0) return c;
  const cuts = [...watched].filter((w) => w.endUs > w.startUs).sort((a, b) => a.startUs - b.startUs);
  const out: Stretch[] = [];
  const push = (s: Stretch) => {
    if (s.endUs <= s.startUs) return;
    const last = out[out.length - 1];
    // Stretches of one kind in a row are one, but each gap stays its own.
    if (last && last.kind === s.kind && s.kind !== 'uncovered' && last.endUs === s.startUs) last.endUs = s.endUs;
    else out.push({ ...s });
  };
  for (const s of c.stretches) {
    let at = s.startUs;
    for (const w of cuts) {
      if (w.endUs <= at || w.startUs >= s.endUs) continue;
      if (w.startUs > at) push({ ...s, startUs: at, endUs: w.startUs });
      push({ startUs: Math.max(w.startUs, at), endUs: Math.min(w.endUs, s.endUs), kind: 'watched' });
      at = Math.min(w.endUs, s.endUs);
    }
    push({ ...s, startUs: at, endUs: s.endUs });
  }
  const length = window.endUs - window.startUs;
  const known = out.reduce((n, s) => n + (s.kind === 'uncovered' ? 0 : s.endUs - s.startUs), 0);
  return { ...c, stretches: out, coveredFraction: length > 0 ? known / length : 1 };
}
