import { UNNAMED_CLUSTER } from '../accounting/clusters.js';
import { coverageJson, windowCoverage, type CoverageInput, type CoverageJson } from '../accounting/coverage.js';
import type { Micros, Period } from '../accounting/types.js';
import { formatTimestamp } from '../util/time.js';

/**
 * The coverage file written beside the files of `summarize` and `report monthly` (and copied
 * by `plot`): the report's period and what its snapshots cover of it, so that whoever opens
 * the CSV files later can tell an unknown stretch from a quiet one. Pure: data in, text out.
 */

export const COVERAGE_FILE = 'coverage.json';

export interface CoverageDocument {
  period: { from: string; to: string; timezone: string; start: string; end: string };
  /** `until` is set when the period was still running as the file was written. */
  coverage: CoverageJson;
}

/**
 * What the snapshots cover of `period`, up to `nowUs` when the period is still running:
 * a report written mid-month or mid-day must not call the rest of it unknown.
 */
export function periodCoverage(files: CoverageInput, period: Period, nowUs: Micros, maxGapUs?: Micros, clusters?: readonly string[]): CoverageDocument {
  // Clusters as reports name them: "(unnamed)" is the unnamed one.
  const picked = clusters?.map((c) => (c === UNNAMED_CLUSTER ? '' : c));
  return {
    period: { from: period.from, to: period.to, timezone: period.timezone, start: formatTimestamp(period.startUs), end: formatTimestamp(period.endUs) },
    coverage: coverageJson(windowCoverage(files, period, { maxGapUs, nowUs, clusters: picked })),
  };
}

export function coverageFileText(doc: CoverageDocument): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/** The warning line of a coverage file read back; throws an Error saying what is wrong with it. */
export function coverageFileWarning(text: string): string | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`);
  }
  const warning = (doc as { coverage?: { warning?: unknown } } | null)?.coverage?.warning;
  if (warning === null || typeof warning === 'string') return warning;
  throw new Error('expected {"period": {...}, "coverage": {"warning": ...}}');
}

/**
 * Which snapshots lie nearest a stretch with none, for the message that skips it:
 * the last before its start and the first at or after its end (null when there is none).
 */
export function neighboursOf(capturedUs: readonly Micros[], window: { startUs: Micros; endUs: Micros }): { beforeUs: Micros | null; afterUs: Micros | null } {
  let beforeUs: Micros | null = null;
  let afterUs: Micros | null = null;
  for (const t of capturedUs) {
    if (t < window.startUs && (beforeUs === null || t > beforeUs)) beforeUs = t;
    if (t >= window.endUs && (afterUs === null || t < afterUs)) afterUs = t;
  }
  return { beforeUs, afterUs };
}

/** Whether a snapshot was captured inside the window. */
export function hasSnapshotIn(capturedUs: readonly Micros[], window: { startUs: Micros; endUs: Micros }): boolean {
  return capturedUs.some((t) => t >= window.startUs && t < window.endUs);
}
