/**
 * `npm run bench`: generates corpora under .bench/ (kept between runs, regenerated when the
 * parameters change), runs the real CLI on them as a child process, and prints corpus size,
 * wall time, throughput and peak memory next to the targets. Figures only: nothing here fails
 * on a missed target.
 *
 *   BENCH_RUNS=3          runs per timed command (median, best, worst)
 *   BENCH_INGEST_RUNS=1   cold index rebuilds per corpus
 *   BENCH_ONLY=legacy     only some parts, comma-separated: legacy, native, snapshot, serve (default all)
 *   BENCH_SERVE_SECONDS=30 length of the load on `hourmeter serve`
 */
import { RUNS } from './harness.js';
import { legacyBench, nativeBench, TARGETS } from './index-bench.js';
import { serveBench } from './serve-bench.js';
import { snapshotBench } from './snapshot-bench.js';

const PARTS = {
  // A year of 6-hourly AI4OS snapshots of a busy cluster, twice (the simulator's default run
  // lengths, then the real history's churn): cold index, warm stats, --no-index.
  legacy: legacyBench,
  // 90 days of 10-minute gzipped native snapshots of a ~2,000-allocation cluster.
  native: nativeBench,
  // Capture against a fake Nomad with latency: paged lists versus per-job requests.
  snapshot: () => snapshotBench({ concurrent: 5000, latencyMs: 20 }),
  // `hourmeter serve` under 50 connections on loopback: requests per second and p99.
  serve: serveBench,
} as const;
type Part = keyof typeof PARTS;

function selected(): Part[] {
  const all = Object.keys(PARTS) as Part[];
  const only = process.env.BENCH_ONLY?.trim();
  if (!only) return all;
  const wanted = only.split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = wanted.filter((p) => !(all as string[]).includes(p));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown part ${unknown.join(', ')}; choose from ${all.join(', ')} (comma-separated)`);
  return all.filter((p) => wanted.includes(p));
}

async function main(): Promise<void> {
  const parts = selected();
  console.log(`hourmeter bench: node ${process.version}, ${RUNS} runs each (BENCH_RUNS to change); parts: ${parts.join(', ')} (BENCH_ONLY to choose)`);
  console.log(
    `targets: cold ingest ≥ ${TARGETS.ingestMBps} MB/s of JSON, warm stats ≤ ${TARGETS.warmStatsSeconds * 1000} ms, ` +
      `peak RSS ≤ ${TARGETS.peakRssMb} MB, index ≤ ${TARGETS.indexShare * 100}% of the snapshots; times are whole CLI processes\n`,
  );
  for (const [i, p] of parts.entries()) {
    if (i > 0 && p !== 'snapshot') console.log('');
    await PARTS[p]();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
