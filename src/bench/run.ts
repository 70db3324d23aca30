/**
 * `npm run bench`: generates corpora under .bench/ (kept between runs, regenerated when the
 * parameters change), runs the real CLI on them as a child process, and prints corpus size,
 * wall time, throughput and peak memory. Figures only: nothing here asserts a time.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHistory } from '../simulator/index.js';
import { snapshotBench } from './snapshot-bench.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BENCH = join(ROOT, '.bench');
const BIN = join(ROOT, 'bin/hourmeter.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Measured {
  seconds: number;
  peakRssMb: number;
  code: number;
  stdout: string;
}

/** Runs the CLI and samples the child's peak RSS (VmHWM) from /proc while it runs. */
function measure(args: string[]): Promise<Measured> {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let peakKb = 0;
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
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
    child.on('error', fail);
    child.on('exit', (code) => {
      clearInterval(timer);
      done({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: peakKb / 1024, code: code ?? -1, stdout });
    });
  });
}

async function folderBytes(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    files++;
    bytes += (await stat(join(dir, name))).size;
  }
  return { files, bytes };
}

/** Generates a corpus once; a marker file remembers the parameters it was made with. */
async function corpus(name: string, params: Parameters<typeof writeHistory>[1]): Promise<string> {
  const dir = join(BENCH, name);
  const marker = join(BENCH, `${name}.params.json`);
  const wanted = JSON.stringify(params);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === wanted && existsSync(dir)) return dir;
  rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`generating ${name} ...\n`);
  const t0 = Date.now();
  const r = await writeHistory(dir, params);
  process.stderr.write(`  ${r.files} files, ${(r.bytes / 1e6).toFixed(0)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  writeFileSync(marker, wanted);
  return dir;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function bench(label: string, args: string[], corpusBytes: number): Promise<void> {
  const runs: Measured[] = [];
  for (let i = 0; i < RUNS; i++) {
    const m = await measure(args);
    if (m.code !== 0) throw new Error(`hourmeter ${args.join(' ')} exited ${m.code}`);
    runs.push(m);
  }
  const secs = runs.map((r) => r.seconds);
  const t = median(secs);
  const rss = Math.max(...runs.map((r) => r.peakRssMb));
  const mbps = corpusBytes / 1e6 / t;
  console.log(
    `${label.padEnd(44)} median ${t.toFixed(2).padStart(6)} s (best ${Math.min(...secs).toFixed(2)}, worst ${Math.max(...secs).toFixed(2)})  ` +
      `${mbps.toFixed(0).padStart(4)} MB/s  peak RSS ${rss.toFixed(0)} MB`,
  );
}

async function main(): Promise<void> {
  console.log(`hourmeter bench: node ${process.version}, ${RUNS} runs each (BENCH_RUNS to change)\n`);
  if (process.env.BENCH_ONLY === 'snapshot') return snapshotBench({ concurrent: 5000, latencyMs: 20 });

  // A year of 6-hourly AI4OS snapshots of a busy cluster (~800 allocations at once), with the
  // full AI4OS record fields (endpoints, descriptions, images).
  const year = await corpus('legacy-year', { format: 'legacy', days: 365, intervalMinutes: 360, targetConcurrent: 800, seed: 42, fullFields: true });
  const size = await folderBytes(year);
  console.log(`corpus legacy-year: ${size.files} AI4OS files, ${(size.bytes / 1e6).toFixed(0)} MB (${(size.bytes / 2 ** 30).toFixed(2)} GiB)`);
  await bench('stats, whole year (exact)', ['stats', '--snapshots', year, '-o', 'json'], size.bytes);
  await bench('stats, whole year (--method ai4os)', ['stats', '--snapshots', year, '--method', 'ai4os', '-o', 'json'], size.bytes);
  const month = await measure(['stats', '--snapshots', year, '--from', '2025-01-01', '--to', '2025-01-31', '-o', 'json']);
  console.log(`${'stats, one month (2025-01, no index yet)'.padEnd(44)} ${month.seconds.toFixed(2).padStart(6)} s  peak RSS ${month.peakRssMb.toFixed(0)} MB`);
  console.log('\nreference: the original AI4OS usage_stats takes about 25 s and 76 MB on such a year (1.49 GB)');

  // BENCH_ONLY=snapshot skips the corpus part above.
  await snapshotBench({ concurrent: 5000, latencyMs: 20 });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
