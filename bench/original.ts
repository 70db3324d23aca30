/**
 * The original AI4OS `usage_stats` (github.com/ai4os/ai4-accounting), timed on a bench corpus
 * so that our figures can be set beside it. It runs offline with Debian's python3-pandas,
 * python3-rich and python3-typer under /usr/bin/python3, from a checkout named by
 * HOURMETER_BENCH_AI4OS_ACCOUNTING, which is only read: each run gets a temporary folder with
 * a copy of the script (it reads the `snapshots` folder beside its own file), a stub conf.py
 * listing the corpus's namespaces in place of the one that asks Nomad, and links to the files.
 *
 *   node dist-tools/bench/original.js <corpus folder>   one run, and its totals against ours
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ai4osRow } from '../src/accounting/ai4os.js';
import { measureCommand, run } from './harness.js';

export const ORIGINAL_ENV = 'HOURMETER_BENCH_AI4OS_ACCOUNTING';
/** Debian's interpreter, where apt puts the packages; another python3 on PATH may lack them. */
export const PYTHON3 = '/usr/bin/python3';

/** The resource rows, job and user counts of one table the original prints. */
export type OriginalTable = Record<string, number>;

export interface OriginalReport {
  /** Per namespace, as the original names it in its titles (upper case). */
  namespaces: Record<string, OriginalTable>;
  aggregated: OriginalTable | null;
}

export interface OriginalRun {
  seconds: number;
  /** User + system CPU seconds of the interpreter. */
  cpuSeconds: number;
  peakRssMb: number;
  code: number;
  /** The command line, as run in `cwd`. */
  command: string;
  namespaces: string[];
  /** Dead jobs and others the original reports it left out. */
  ignoredLines: number;
  report: OriginalReport | null;
}

export type OriginalResult = { skipped: string } | OriginalRun;

// Legacy snapshot names: the original reads the time from the name and stops on any other.
const LEGACY_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.json$/;

let pythonProblem: string | null | undefined;

/** Why /usr/bin/python3 cannot run the original, or null; checked once per process. */
function pythonMissing(): string | null {
  if (pythonProblem !== undefined) return pythonProblem;
  const fix = 'apt-get install python3-pandas python3-rich python3-typer';
  if (!existsSync(PYTHON3)) return (pythonProblem = `${PYTHON3} is missing: ${fix}`);
  const r = spawnSync(PYTHON3, ['-c', 'import pandas, rich, typer'], { encoding: 'utf8' });
  const error = r.error?.message ?? r.stderr.trim().split('\n').pop();
  return (pythonProblem = r.status === 0 ? null : `${PYTHON3} cannot import pandas, rich and typer (${error}): ${fix}`);
}

/** Why the original cannot be timed, or null. */
export function originalSkipReason(): string | null {
  const checkout = process.env[ORIGINAL_ENV]?.trim();
  if (!checkout) return `${ORIGINAL_ENV} is unset: set it to a checkout of ai4os/ai4-accounting to time the original usage_stats`;
  if (!existsSync(join(checkout, 'usage_stats.py'))) return `${ORIGINAL_ENV}=${checkout} has no usage_stats.py: point it at a checkout of ai4os/ai4-accounting`;
  return pythonMissing();
}

/**
 * The namespaces for the stub conf.py: the top-level keys of the first and last files, in
 * the order they appear (AI4OS files list every namespace, empty or not).
 */
async function namespacesOf(dir: string, files: string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (const name of new Set([files[0]!, files[files.length - 1]!])) {
    for (const ns of Object.keys(JSON.parse(await readFile(join(dir, name), 'utf8')) as object)) seen.add(ns);
  }
  return [...seen];
}

/** The Python literal for a list of strings (JSON's string syntax is Python's too). */
const pyList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/**
 * Times one run of the original over the whole corpus (no dates: from the first snapshot to
 * the end of the last one's day, as `stats --method ai4os` without dates). One call, one run,
 * so the caller can interleave it with its own.
 */
export async function timeOriginal(corpusDir: string): Promise<OriginalResult> {
  const skipped = originalSkipReason();
  if (skipped) return { skipped };
  const checkout = resolve(process.env[ORIGINAL_ENV]!.trim());
  const dir = resolve(corpusDir);
  const files = (await readdir(dir)).filter((n) => LEGACY_NAME.test(n)).sort();
  if (files.length === 0) return { skipped: `${dir} has no AI4OS legacy snapshot files (YYYY-MM-DDTHH:MM:SS.json) for the original to read` };
  const namespaces = await namespacesOf(dir, files);

  const work = await mkdtemp(join(tmpdir(), 'hourmeter-original-'));
  try {
    // A copy, not a link: the script finds its snapshots beside its resolved path.
    await copyFile(join(checkout, 'usage_stats.py'), join(work, 'usage_stats.py'));
    await writeFile(join(work, 'conf.py'), `# Written by the hourmeter bench in place of the one that asks Nomad.\nNAMESPACES = ${pyList(namespaces)}\n`);
    await mkdir(join(work, 'snapshots'));
    for (const name of files) await symlink(join(dir, name), join(work, 'snapshots', name));
    // Its error output, if any, goes to the bench's as it comes.
    const m = await measureCommand([PYTHON3, 'usage_stats.py'], {
      cwd: work,
      // No bytecode next to the stub; plain tables (rich drops colour without a terminal too).
      env: { PYTHONDONTWRITEBYTECODE: '1', NO_COLOR: '1', TERM: 'dumb' },
    });
    return {
      seconds: m.seconds,
      cpuSeconds: m.cpuSeconds,
      peakRssMb: m.peakRssMb,
      code: m.code,
      command: `${PYTHON3} usage_stats.py`,
      namespaces,
      ignoredLines: m.stdout.split('\n').filter((l) => / Ignoring: /.test(l)).length,
      report: m.code === 0 ? parseOriginal(m.stdout) : null,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads the original's tables: a title line, then `│ name │ value │` rows. */
export function parseOriginal(stdout: string): OriginalReport {
  const report: OriginalReport = { namespaces: {}, aggregated: null };
  let table: OriginalTable | null = null;
  for (const line of stdout.split('\n')) {
    const title = /^\s*(\S+) accounting for the period /.exec(line);
    if (title) {
      table = {};
      if (title[1] === 'Aggregated') report.aggregated = table;
      else report.namespaces[title[1]!] = table;
      continue;
    }
    const row = /^\s*│\s*(.+?)\s*│\s*(-?\d+)\s*│\s*$/.exec(line);
    if (row && table) table[row[1]!] = Number(row[2]);
  }
  return report;
}

/** A row of `stats --method ai4os -o json`. */
type OursRow = Ai4osRow;

// The original's row names, and ours in `stats --method ai4os -o json`.
const ROWS: [string, keyof OursRow][] = [
  ['cpu_num hours', 'cpu_num_hours'],
  ['cpu_MHz hours', 'cpu_MHz_hours'],
  ['gpu_num hours', 'gpu_num_hours'],
  ['memory_MB hours', 'memory_MB_hours'],
  ['disk_MB hours', 'disk_MB_hours'],
  ['Nº jobs', 'jobs'],
  ['Nº active users', 'users'],
];

/** Whether the original's tables and our `stats --method ai4os -o json` agree, row by row. */
export function compareWithOurs(original: OriginalReport, oursJson: string): string {
  const ours = JSON.parse(oursJson) as { rows: ({ namespace: string } & OursRow)[]; total: OursRow };
  const tables: [string, OriginalTable | null | undefined, OursRow | undefined][] = [
    ...ours.rows.map((r) => [r.namespace, original.namespaces[r.namespace.toUpperCase()], r] as [string, OriginalTable | undefined, OursRow]),
    ['total', original.aggregated, ours.total],
  ];
  const extra = Object.keys(original.namespaces).filter((ns) => !ours.rows.some((r) => r.namespace.toUpperCase() === ns));
  const differences: string[] = extra.map((ns) => `${ns}: only in the original`);
  let compared = 0;
  for (const [name, theirs, mine] of tables) {
    if (!theirs) {
      differences.push(`${name}: not in the original's output`);
      continue;
    }
    for (const [label, key] of ROWS) {
      compared++;
      if (theirs[label] !== mine![key]) differences.push(`${name} ${label}: original ${theirs[label] ?? 'absent'}, ours ${mine![key]}`);
    }
  }
  return differences.length === 0
    ? `identical (${compared} figures: ${ours.rows.length} namespaces and the total)`
    : `DIFFER in ${differences.length} of ${compared} figures: ${differences.slice(0, 5).join('; ')}${differences.length > 5 ? '; ...' : ''}`;
}

async function main(dir: string): Promise<void> {
  const r = await timeOriginal(dir);
  if ('skipped' in r) {
    console.log(`original usage_stats: skipped: ${r.skipped}`);
    return;
  }
  console.log(
    `original usage_stats on ${dir} (namespaces ${r.namespaces.join(', ')}): exit ${r.code}, wall ${r.seconds.toFixed(2)} s, ` +
      `CPU ${r.cpuSeconds.toFixed(2)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB, ${r.ignoredLines} jobs reported as ignored`,
  );
  if (!r.report) return;
  const ours = await run(['stats', '--method', 'ai4os', '-o', 'json', '--snapshots', dir]);
  console.log(`ours (stats --method ai4os): wall ${ours.seconds.toFixed(2)} s, CPU ${ours.cpuSeconds.toFixed(2)} s, peak RSS ${ours.peakRssMb.toFixed(0)} MB`);
  console.log(`totals against ours: ${compareWithOurs(r.report, ours.stdout)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node dist-tools/bench/original.js <folder of AI4OS snapshot files>');
    process.exitCode = 2;
  } else {
    main(dir).catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
  }
}
