import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError, UnreadableDataError } from '../../src/accounting/errors.js';
import { DataError, exitCodeOf, UsageError } from '../../src/util/errors.js';
import { ROOT } from '../helpers/cli.js';

/**
 * The accounting core and the quota decisions take data and return data: they import nothing
 * from the layers that render (reports/), parse flags (cli/) or serve (server/), and the core
 * throws its own errors, which the edges turn into exit codes.
 */

const SRC = join(ROOT, 'src');
const OUTER_LAYERS = ['reports', 'cli', 'server'];
const EXIT_CODE_ERRORS = ['HourmeterError', 'UsageError', 'DataError', 'CheckFailed'];

interface Import {
  file: string;
  /** The imported module, relative to src/ when it is one of ours ("reports/table.ts"). */
  module: string;
  names: string[];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Static imports and re-exports (one or several lines), side-effect imports and import(). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const add = (specifier: string, clause: string) => {
    const module = specifier.startsWith('.') ? relative(SRC, join(dirname(file), specifier)).replace(/\.js$/, '.ts') : specifier;
    const names = [...clause.matchAll(/(?:\btype\s+)?([A-Za-z_$][\w$]*)(?:\s+as\s+[\w$]+)?/g)].map((m) => m[1]!).filter((n) => n !== 'type');
    found.push({ file: relative(SRC, file), module, names });
  };
  for (const m of text.matchAll(/^\s*(?:import|export)\b([^;'"]*?)\bfrom\s*['"]([^'"]+)['"]/gm)) add(m[2]!, m[1]!);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) add(m[1]!, '');
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1]!, '');
  return found;
}

const layerOf = (module: string) => module.split('/')[0]!;

describe('the accounting core and quota decisions', () => {
  const core = sourceFiles(join(SRC, 'accounting')).flatMap(importsOf);
  const quota = sourceFiles(join(SRC, 'quota')).flatMap(importsOf);

  it('are read as modules with imports (the scan finds them)', () => {
    expect(core.some((i) => i.file === 'accounting/months.ts' && i.module === 'accounting/period.ts' && i.names.includes('resolvePeriod'))).toBe(true);
    expect(quota.some((i) => i.file === 'quota/decide.ts' && i.module === 'util/numbers.ts' && i.names.includes('fixed'))).toBe(true);
  });

  it('import nothing from reports/, cli/ or server/', () => {
    const outward = [...core, ...quota].filter((i) => OUTER_LAYERS.includes(layerOf(i.module))).map((i) => `${i.file} imports ${i.module}`);
    expect(outward).toEqual([]);
  });

  it('the core throws no exit-code errors: it imports none of them', () => {
    const exitCoded = core
      .filter((i) => i.module === 'util/errors.ts' || i.names.some((n) => EXIT_CODE_ERRORS.includes(n)))
      .map((i) => `${i.file} imports ${i.names.join(', ')} from ${i.module}`);
    expect(exitCoded).toEqual([]);
  });
});

describe("the core's errors at the edges", () => {
  it('keep the exit codes they had: bad input 2 (a usage error), unreadable stored data 3', () => {
    expect(exitCodeOf(new BadInputError('--from "x" is not a date'))).toBe(2);
    expect(exitCodeOf(new UnreadableDataError('the index holds a segment in an unknown layout'))).toBe(3);
    expect(exitCodeOf(new UsageError('--tz'))).toBe(2);
    expect(exitCodeOf(new DataError('disk'))).toBe(3);
    // A bug is no usage error: the CLI says "unexpected error" and the server answers 500.
    expect(exitCodeOf(new Error('no name with id 7'))).toBeNull();
  });
});
