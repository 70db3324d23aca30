import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError } from '../util/errors.js';

/**
 * The config file (`./hourmeter.yaml`, or `--config FILE`): a flat YAML map whose keys mirror
 * the long flags (`snapshots: /srv/snaps`, `gap-policy: midpoint`). A flag beats the
 * environment, which beats this file, which beats the default.
 */

export type ConfigValues = Record<string, unknown>;

export const DEFAULT_CONFIG = 'hourmeter.yaml';

export function loadConfig(path: string | undefined, knownKeys: ReadonlySet<string>): { file: string | null; values: ConfigValues } {
  const explicit = path !== undefined;
  const file = path ?? DEFAULT_CONFIG;
  if (!existsSync(file)) {
    if (explicit) throw new UsageError(`--config ${file}: no such file; give the path of a YAML file whose keys mirror the long flags`);
    return { file: null, values: {} };
  }
  const text = readFileSync(file, 'utf8');
  // Loaded only when a config file exists: most runs have none, and start faster without it.
  const { parseDocument } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new UsageError(`${file}${line ? `:${line}` : ''}: ${e.message.split('\n')[0]}; fix the YAML syntax`);
  }
  const values = doc.toJS() as unknown;
  if (values === null || values === undefined) return { file, values: {} };
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new UsageError(`${file}: expected a map of settings such as "snapshots: ./snapshots"`);
  }
  for (const key of Object.keys(values)) {
    if (!knownKeys.has(key)) {
      const pair = doc.contents && 'items' in doc.contents ? (doc.contents.items as { key: { range?: number[]; value?: unknown } }[]).find((i) => i.key?.value === key) : undefined;
      const offset = pair?.key.range?.[0];
      const line = offset === undefined ? undefined : text.slice(0, offset).split('\n').length;
      throw new UsageError(`${file}${line ? `:${line}` : ''}: unknown setting "${key}"; keys mirror the long flags, e.g. "gap-policy" for --gap-policy`);
    }
  }
  return { file, values: values as ConfigValues };
}
