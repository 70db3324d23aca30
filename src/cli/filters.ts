import { UNATTRIBUTED } from '../accounting/aggregate.js';
import type { FilterKey } from '../accounting/known.js';
import type { HistoryView } from '../history/store.js';
import { closest } from '../util/closest.js';
import { CLUSTER_FILTER, GROUP, NAMESPACE, USER, type Settings, type SharedOption } from './options.js';

/**
 * A filter value nothing carries is most often a typo: the report, empty, would look like
 * an idle namespace. Such values get a warning naming the nearest known value; the report
 * is printed all the same.
 */

export interface FilterGiven {
  key: FilterKey;
  /** Where the values came from, as messages name it: `--namespace`, or a config file's key. */
  source: string;
  values: readonly string[];
}

/** The option of each filter key. */
const FILTER_OPTIONS: Record<FilterKey, SharedOption<string[]>> = { cluster: CLUSTER_FILTER, namespace: NAMESPACE, user: USER, group: GROUP };

/** The filters a command was given, for the keys it has. */
export function filtersGiven(s: Settings, keys: readonly FilterKey[]): FilterGiven[] {
  return keys.map((key) => ({ key, source: s.sourceOf(FILTER_OPTIONS[key]), values: s.get(FILTER_OPTIONS[key]) })).filter((f) => f.values.length > 0);
}

/**
 * One warning per value no known value equals. `known` gives a key's known values (asked
 * only for keys with a value to check); `where` names the data, as in "in the snapshots".
 */
export function unmatchedFilterWarnings(filters: readonly FilterGiven[], known: (key: FilterKey) => readonly string[], where: string): string[] {
  const lines: string[] = [];
  for (const f of filters) {
    const values = known(f.key);
    const knownSet = new Set(values);
    for (const value of new Set(f.values)) {
      if (knownSet.has(value)) continue;
      const head = `${f.source} ${value} matches nothing ${where}`;
      const near = closest(value, values);
      // (unattributed) stands for a missing name: it is not one of the names counted.
      const named = values.filter((v) => v !== UNATTRIBUTED).length;
      if (value === UNATTRIBUTED) lines.push(`${head}: every allocation there has a ${f.key}`);
      else if (near !== null) lines.push(`${head}; the closest ${f.key} is ${near}`);
      else if (named === 0) lines.push(`${head}: ${f.key === 'namespace' ? 'no allocation there held resources' : `no allocation there has a ${f.key}`}`);
      else lines.push(`${head}, and none of the ${named} ${f.key}${named === 1 ? '' : 's'} there is close to it; check the spelling`);
    }
  }
  return lines;
}

/** Warns about filter values that no allocation in the whole history carries. */
export function warnUnmatchedFilters(view: HistoryView, filters: readonly FilterGiven[], warn: (line: string) => void): void {
  if (filters.length === 0) return;
  for (const line of unmatchedFilterWarnings(filters, (key) => view.knownValues(key), 'in the snapshots')) warn(line);
}
