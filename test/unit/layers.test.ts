import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';

/**
 * The layers the code flows through, checked on the source: the server and quota never reach
 * into the CLI; the CLI, the server and quota reach the index only through the history layer
 * (src/history); and SQL is written only in src/store.
 */

interface Source {
  /** Path under src, with forward slashes. */
  path: string;
  text: string;
}

function sourcesUnder(src: string): Source[] {
  return (readdirSync(src, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .sort()
    .map((f) => ({ path: f.split('\\').join('/'), text: readFileSync(join(src, f), 'utf8') }));
}

/** The src paths a file imports (static, re-exported or dynamic), relative ones only. */
function importsOf(file: Source): string[] {
  const specs = [...file.text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm), ...file.text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative('/src', resolve('/src', dirname(file.path), s)).split('\\').join('/'));
}

const SQL = [
  /\bbetter-sqlite3\b/,
  /\.prepare\(/,
  /\bdb\.(exec|pragma|transaction)\(/,
  /\bSELECT\s+[\w*(]/,
  /\bINSERT\s+(OR\s+\w+\s+)?INTO\b/,
  /\bDELETE\s+FROM\b/,
  /\bUPDATE\s+\w+\s+SET\b/,
  /\bCREATE\s+(TABLE|INDEX|VIEW)\b/,
];

const within = (path: string, folder: string) => path.startsWith(`${folder}/`);

/** Each breach of the layering, as "<file>: <what>". */
function layerViolations(src: string): string[] {
  const out: string[] = [];
  for (const f of sourcesUnder(src)) {
    for (const target of importsOf(f)) {
      if ((within(f.path, 'server') || within(f.path, 'quota')) && within(target, 'cli')) out.push(`${f.path}: imports ${target}`);
      if ((within(f.path, 'cli') || within(f.path, 'server') || within(f.path, 'quota')) && within(target, 'store')) out.push(`${f.path}: imports ${target} (go through src/history)`);
    }
    if (within(f.path, 'store')) continue;
    f.text.split('\n').forEach((line, i) => {
      const hit = SQL.find((re) => re.test(line));
      if (hit) out.push(`${f.path}:${i + 1}: SQL outside src/store (${hit.source})`);
    });
  }
  return out;
}

describe('layers', () => {
  it('hold in src: server and quota import nothing from cli, the index is reached through history, SQL only in store', () => {
    expect(layerViolations(join(ROOT, 'src'))).toEqual([]);
  });

  it('would be caught: a server importing the CLI, a command opening the store, SQL in a command', () => {
    const src = tempDir();
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(src, path)), { recursive: true });
      writeFileSync(join(src, path), text);
    };
    put('server/app.ts', "import type { CliIO } from '../cli/io.js';\nexport const x = 1;\n");
    put('quota/source.ts', "export async function f() {\n  return import('../cli/history.js');\n}\n");
    put('cli/commands/stats.ts', "import { openIndex } from '../../store/schema.js';\nconst n = db.prepare('SELECT count(*) FROM snapshots').get();\n");
    put('server/queries.ts', "const q = 'SELECT name FROM snapshots';\n");
    put('store/view.ts', "import Database from 'better-sqlite3';\nconst q = db.prepare('SELECT name FROM snapshots');\n");
    put('util/time.ts', "const m = /^(\\d+)$/.exec(text);\n");
    expect(layerViolations(src)).toEqual([
      'cli/commands/stats.ts: imports store/schema.js (go through src/history)',
      'cli/commands/stats.ts:2: SQL outside src/store (\\.prepare\\()',
      'quota/source.ts: imports cli/history.js',
      'server/app.ts: imports cli/io.js',
      'server/queries.ts:1: SQL outside src/store (\\bSELECT\\s+[\\w*(])',
    ]);
  });
});
