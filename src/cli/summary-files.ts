import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsv, type ParsedCsv } from '../reports/csv.js';
import { namespaceFileBase, namespaceOfFile } from '../reports/summaries.js';
import { DataError, UsageError } from '../util/errors.js';

/** Finding and reading the CSV files `summarize` wrote, for `merge-users` and `plot`. */

export interface SummaryEntry {
  namespace: string;
  /** File name inside the summaries folder. */
  file: string;
}

/** The namespaces with a `<ns><suffix>` file in `dir`, sorted, narrowed to `only` when given. */
export function summaryNamespaces(dir: string, suffix: string, only: readonly string[], flag: string): SummaryEntry[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`${flag} ${dir}: no such folder; run \`hourmeter summarize\` first, or point ${flag} at the folder it wrote`);
  }
  const found: SummaryEntry[] = [];
  for (const file of readdirSync(dir).sort()) {
    const namespace = namespaceOfFile(file, suffix);
    if (namespace !== null && namespaceFileBase(namespace) + suffix === file) found.push({ namespace, file });
  }
  if (found.length === 0) throw new UsageError(`${flag} ${dir} holds no *${suffix} file; run \`hourmeter summarize\` first, or point ${flag} at the folder it wrote`);
  if (only.length === 0) return found;
  return only.map((ns) => {
    const e = found.find((f) => f.namespace === ns);
    if (!e) throw new UsageError(`--namespace ${ns}: ${join(dir, namespaceFileBase(ns) + suffix)} does not exist; summaries hold ${found.map((f) => f.namespace).join(', ')}`);
    return e;
  });
}

/** Reads one summary CSV; a malformed one is a data error naming the file. */
export function readSummaryCsv(dir: string, file: string, delimiter: string): { path: string; csv: ParsedCsv } {
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(`${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return { path, csv: parseCsv(text, delimiter) };
  } catch (e) {
    throw new DataError(`${path}: ${(e as Error).message}; run \`hourmeter summarize\` again to rewrite it`);
  }
}
