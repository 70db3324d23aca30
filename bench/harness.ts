/**
 * What the benchmarks share: the corpus folder, the CLI run as a child process with its peak
 * RSS sampled, medians, folder sizes and the corpora generated once under .bench/.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, stat, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { writeHistory, type WriteHistoryOptions } from '../src/simulator/index.js';

// The repository root, seen from the built file (dist-tools/bench/harness.js).
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BENCH = join(ROOT, '.bench');
export const BIN = join(ROOT, 'bin/hourmeter.js');
/** Rounds of the timed commands; the targets call for at least 7. */
export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 7));
export const MIN_RUNS = 7;
/** Said beside every figure taken from fewer than MIN_RUNS runs. */
export const fewRuns = (n: number) => (n < MIN_RUNS ? ` (fewer than ${MIN_RUNS} runs: indicative)` : '');

export interface Measured {
  /** Wall time of the child process, from its fork to its exit. */
  seconds: number;
  /** User + system CPU time of the child and all its threads (and any processes it waited for). */
  cpuSeconds: number;
  peakRssMb: number;
  code: number;
  stdout: string;
  /** Lines the CLI printed under --debug (kept from the terminal). */
  debug: string[];
}

/*
 * The child runs under bash, which starts it in the background, hands its pid on fd 3 (so its
 * VmHWM can be sampled), waits for it, and then reports on fd 3 the wall clock around it
 * ($EPOCHREALTIME, microseconds) and `times`: bash's own and its waited-for children's user and
 * system CPU (getrusage(RUSAGE_CHILDREN), which covers every thread of the child). Bash's own
 * start-up stays outside both figures, so `node -e 0` measured the same way is a fair baseline.
 */
const TIMED = 't0=$EPOCHREALTIME; "$@" 3>&- & pid=$!; echo "pid $pid" >&3; wait "$pid"; rc=$?; t1=$EPOCHREALTIME; echo "wall $t0 $t1" >&3; times >&3; exit $rc';

const realtime = (s: string) => Number(s.replace(',', '.'));
/** `times` prints "0m1.618s 0m0.033s" (user, system). */
function timesCpu(line: string): number {
  const parts = [...line.matchAll(/(\d+)m([\d.,]+)s/g)];
  if (parts.length !== 2) throw new Error(`unexpected output of bash's times: ${JSON.stringify(line)}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * 60 + realtime(p[2]!), 0);
}

/**
 * Runs a command (argv[0] found on PATH) with wall time, user+sys CPU time and peak RSS (VmHWM,
 * sampled from /proc every 20 ms while it runs).
 */
export function measureCommand(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Measured> {
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-c', TIMED, 'bash', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    let report = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    let pid: number | null = null;
    let peakKb = 0;
    const sample = async () => {
      if (pid === null) return;
      try {
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
      } catch {
        // the child has exited
      }
    };
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => {
      report += b.toString();
      const p = /^pid (\d+)$/m.exec(report);
      if (pid === null && p) {
        pid = Number(p[1]);
        void sample();
      }
    });
    const timer = setInterval(() => void sample(), 20);
    child.on('error', fail);
    child.on('close', (code) => {
      clearInterval(timer);
      const lines = stderr.split('\n').filter((l) => l !== '');
      const debug = lines.filter((l) => l.startsWith('hourmeter: debug: '));
      for (const l of lines) if (!debug.includes(l)) process.stderr.write(`${l}\n`);
      const wall = /^wall (\S+) (\S+)$/m.exec(report);
      const times = report.split('\n').filter((l) => /^\d+m/.test(l));
      if (!wall || times.length !== 2) {
        fail(new Error(`no timing from bash for ${argv.join(' ')} (exit ${code}); it reported ${JSON.stringify(report)}`));
        return;
      }
      done({
        seconds: realtime(wall[2]!) - realtime(wall[1]!),
        cpuSeconds: timesCpu(times[1]!),
        peakRssMb: peakKb / 1024,
        code: code ?? -1,
        stdout,
        debug,
      });
    });
  });
}

/** Runs the CLI (see measureCommand). */
export function measure(args: string[]): Promise<Measured> {
  return measureCommand([process.execPath, BIN, ...args]);
}

/** measure(), failing with the command line when the CLI exits non-zero. */
export async function run(args: string[]): Promise<Measured> {
  const m = await measure(args);
  if (m.code !== 0) throw new Error(`hourmeter ${args.join(' ')} exited ${m.code}${m.stdout ? `; stdout:\n${m.stdout}` : ''}`);
  return m;
}

/** measureCommand(), failing when the command exits non-zero. */
export async function runCommand(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Measured> {
  const m = await measureCommand(argv, opts);
  if (m.code !== 0) throw new Error(`${argv.join(' ')} exited ${m.code}`);
  return m;
}

/** The bare start-up of Node, the yardstick of the warm targets. */
export const nodeBaseline = () => runCommand([process.execPath, '-e', '0']);

/** `n` runs of the same command (at least one). */
export async function runs(args: string[], n = RUNS): Promise<Measured[]> {
  const out: Measured[] = [];
  for (let i = 0; i < Math.max(1, n); i++) out.push(await run(args));
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export interface Summary {
  /** Wall seconds. */
  median: number;
  best: number;
  worst: number;
  /** User + system CPU seconds. */
  cpuMedian: number;
  peakRssMb: number;
  n: number;
}

export function summarize(ms: Measured[]): Summary {
  const secs = ms.map((m) => m.seconds);
  return {
    median: median(secs),
    best: Math.min(...secs),
    worst: Math.max(...secs),
    cpuMedian: median(ms.map((m) => m.cpuSeconds)),
    peakRssMb: Math.max(...ms.map((m) => m.peakRssMb)),
    n: ms.length,
  };
}

export async function folderBytes(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    files++;
    bytes += (await stat(join(dir, name))).size;
  }
  return { files, bytes };
}

/** Sum of the uncompressed sizes of a folder's .gz files (and the plain size of the others). */
export async function uncompressedBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const raw = await readFile(join(dir, name));
    bytes += name.endsWith('.gz') ? gunzipSync(raw).length : raw.length;
  }
  return bytes;
}

export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

export interface CorpusSizes {
  files: number;
  /** JSON, uncompressed. */
  bytes: number;
  /** As stored: compressed for .json.gz corpora. */
  storedBytes: number;
  /** Generation wall time, when this run or an earlier one generated it. */
  seconds: number | null;
}

export interface Corpus {
  dir: string;
  sizes: CorpusSizes;
  generated: boolean;
}

export type CorpusParams = Omit<WriteHistoryOptions, 'cluster' | 'onProgress' | 'truthPath'>;

/**
 * Generates a corpus once; a marker file remembers the parameters it was made with, and a
 * sizes file what generation measured (the uncompressed size of a gzipped corpus is not on
 * disk). `minFreeBytes` refuses to start a generation that would not fit.
 */
export async function corpus(name: string, params: CorpusParams, opts: { minFreeBytes?: number; progressEvery?: number } = {}): Promise<Corpus> {
  const dir = join(BENCH, name);
  const marker = join(BENCH, `${name}.params.json`);
  const sizesFile = join(BENCH, `${name}.sizes.json`);
  const wanted = JSON.stringify(params);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted && existsSync(dir)) {
    if (existsSync(sizesFile)) return { dir, sizes: JSON.parse(readFileSync(sizesFile, 'utf8')) as CorpusSizes, generated: false };
    // Generated by an older bench that kept no sizes: measure them once.
    const stored = await folderBytes(dir);
    const sizes: CorpusSizes = { files: stored.files, bytes: params.gzip ? await uncompressedBytes(dir) : stored.bytes, storedBytes: stored.bytes, seconds: null };
    writeFileSync(sizesFile, JSON.stringify(sizes));
    return { dir, sizes, generated: false };
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(sizesFile, { force: true });
  const free = await freeBytes(existsSync(BENCH) ? BENCH : ROOT);
  if (opts.minFreeBytes !== undefined && free < opts.minFreeBytes) {
    throw new Error(`not generating ${name}: ${(free / 1e9).toFixed(1)} GB free, it needs about ${(opts.minFreeBytes / 1e9).toFixed(1)} GB`);
  }
  process.stderr.write(`generating ${name} (${(free / 1e9).toFixed(0)} GB free) ...\n`);
  const t0 = Date.now();
  const every = opts.progressEvery ?? 0;
  const r = await writeHistory(dir, {
    ...params,
    onProgress: every > 0 ? (done, total) => {
      if (done % every === 0 || done === total) process.stderr.write(`  ${done}/${total} snapshots, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    } : undefined,
  });
  const seconds = (Date.now() - t0) / 1000;
  const sizes: CorpusSizes = { files: r.files, bytes: r.bytes, storedBytes: r.storedBytes, seconds };
  const stored = params.gzip ? `, ${(r.storedBytes / 1e6).toFixed(0)} MB gzipped` : '';
  process.stderr.write(`  ${r.files} files, ${(r.bytes / 1e6).toFixed(0)} MB of JSON${stored}, in ${seconds.toFixed(1)} s\n`);
  writeFileSync(sizesFile, JSON.stringify(sizes));
  writeFileSync(marker, wanted);
  return { dir, sizes, generated: true };
}

// Formatting

export const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
export const pad = (label: string) => label.padEnd(50);

/** "ok" or "MISSED" against a target, for the lines below. */
export function target(met: boolean, text: string): string {
  return `[target ${text}: ${met ? 'ok' : 'MISSED'}]`;
}

export const secondsText = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);

/** Wall time (median, best, worst) and CPU time (median). */
export function timeText(s: Summary): string {
  const f = secondsText;
  return s.n > 1
    ? `wall median ${f(s.median).padStart(8)} (best ${f(s.best)}, worst ${f(s.worst)}, ${s.n} runs), cpu ${f(s.cpuMedian).padStart(8)}`
    : `wall once   ${f(s.median).padStart(8)}, cpu ${f(s.cpuMedian).padStart(8)}`;
}

// The targets' verdicts, gathered as the parts run and printed together at the end.

export interface Goal {
  /** What is measured, e.g. "warm year stats / node -e 0". */
  label: string;
  /** The limit, e.g. 2 for "≤ 2x". */
  limit: number;
  /** Whether the figure must stay at or under the limit (else at or over it). */
  atMost: boolean;
  /** How a figure is shown, e.g. (x) => `${x.toFixed(2)}x`. */
  format: (x: number) => string;
}

interface Verdict {
  goal: Goal;
  /** Per corpus: the figure, or why there is none. */
  figures: Map<string, number | string>;
  runs: number;
}

const verdicts = new Map<Goal, Verdict>();

/** Records a target's figure on one corpus (a string: not measured, and why). */
export function record(goal: Goal, corpusName: string, figure: number | string, runsTaken: number): void {
  const v = verdicts.get(goal) ?? { goal, figures: new Map(), runs: runsTaken };
  v.figures.set(corpusName, figure);
  v.runs = Math.min(v.runs, runsTaken);
  verdicts.set(goal, v);
}

export const goalText = (g: Goal) => `${g.atMost ? '≤' : '≥'} ${g.format(g.limit)}`;
export const meets = (g: Goal, x: number) => (g.atMost ? x <= g.limit : x >= g.limit);

/** One table: each target, its figure on each corpus, the worse one and whether that holds. */
export function printVerdicts(): void {
  if (verdicts.size === 0) return;
  const corpora = [...new Set([...verdicts.values()].flatMap((v) => [...v.figures.keys()]))];
  const width = Math.max(...[...verdicts.keys()].map((g) => `${g.label} ${goalText(g)}`.length)) + 2;
  const cell = (s: string) => s.padStart(Math.max(12, ...corpora.map((c) => c.length)) + 2);
  console.log('\ntargets (each must hold on the worse corpus):');
  console.log(`  ${''.padEnd(width)}${corpora.map(cell).join('')}${cell('worse')}  verdict`);
  for (const v of verdicts.values()) {
    const g = v.goal;
    const shown = corpora.map((c) => {
      const f = v.figures.get(c);
      return f === undefined ? '-' : typeof f === 'number' ? g.format(f) : 'not timed';
    });
    const numbers = corpora.map((c) => v.figures.get(c));
    let worse = '-';
    let verdict: string;
    if (numbers.every((f): f is number => typeof f === 'number')) {
      const w = g.atMost ? Math.max(...numbers) : Math.min(...numbers);
      worse = g.format(w);
      verdict = (meets(g, w) ? 'ok' : 'MISSED') + fewRuns(v.runs);
    } else {
      const why = numbers.find((f): f is string => typeof f === 'string');
      verdict = why ? `not timed (${why})` : 'not measured on every corpus';
    }
    console.log(`  ${`${g.label} ${goalText(g)}`.padEnd(width)}${shown.map(cell).join('')}${cell(worse)}  ${verdict}`);
  }
}
