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
export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

export interface Measured {
  seconds: number;
  /** User + system CPU seconds of the child and the descendants it waited for. */
  cpuSeconds: number;
  peakRssMb: number;
  code: number;
  stdout: string;
  /** Lines the CLI printed under --debug (kept from the terminal). */
  debug: string[];
}

export interface ProcessMeasure {
  seconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  code: number;
  stdout: string;
  stderr: string;
}

// USER_HZ: the unit of /proc CPU times, 100 on every Linux the bench runs on.
const CLOCK_TICKS = 100;

/**
 * CPU seconds of this process's reaped children (cutime + cstime in /proc/self/stat). The
 * kernel adds a child's time, its own reaped descendants included, when it is waited for, so
 * the difference across one run is that child's, as long as no other child exits meanwhile.
 */
function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces): cutime and cstime are the 16th and 17th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/**
 * Runs a command to its end: wall time, CPU time and peak RSS (VmHWM, sampled from /proc
 * every 20 ms while it runs). Run one at a time, for the CPU time to be this command's.
 */
export function measureProcess(command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ProcessMeasure> {
  return new Promise((done, fail) => {
    const cpu0 = reapedChildrenCpuSeconds();
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let peakKb = 0;
    const sample = async () => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
        const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
        if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
      } catch {
        // the child has exited
      }
    };
    const timer = setInterval(() => void sample(), 20);
    child.on('error', (e) => {
      clearInterval(timer);
      fail(e);
    });
    // 'close' comes after the exit and the end of both pipes: the output is complete.
    child.on('close', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      done({ seconds, cpuSeconds: reapedChildrenCpuSeconds() - cpu0, peakRssMb: peakKb / 1024, code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs the CLI and samples the child's peak RSS (VmHWM) from /proc while it runs. */
export async function measure(args: string[]): Promise<Measured> {
  const m = await measureProcess(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' } });
  const lines = m.stderr.split('\n').filter((l) => l !== '');
  const debug = lines.filter((l) => l.startsWith('hourmeter: debug: '));
  for (const l of lines) if (!debug.includes(l)) process.stderr.write(`${l}\n`);
  return { seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssMb: m.peakRssMb, code: m.code, stdout: m.stdout, debug };
}

/** measure(), failing with the command line when the CLI exits non-zero. */
export async function run(args: string[]): Promise<Measured> {
  const m = await measure(args);
  if (m.code !== 0) throw new Error(`hourmeter ${args.join(' ')} exited ${m.code}${m.stdout ? `; stdout:\n${m.stdout}` : ''}`);
  return m;
}

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
  median: number;
  best: number;
  worst: number;
  peakRssMb: number;
  n: number;
}

export function summarize(ms: Measured[]): Summary {
  const secs = ms.map((m) => m.seconds);
  return { median: median(secs), best: Math.min(...secs), worst: Math.max(...secs), peakRssMb: Math.max(...ms.map((m) => m.peakRssMb)), n: ms.length };
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

export function timeText(s: Summary): string {
  const f = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} ms` : `${x.toFixed(2)} s`);
  return s.n > 1 ? `median ${f(s.median).padStart(8)} (best ${f(s.best)}, worst ${f(s.worst)}, ${s.n} runs)` : `once   ${f(s.median).padStart(8)}`;
}
