/**
 * `npm run bench`: generates corpora under .bench/ (kept between runs, regenerated when the
 * parameters change), runs the real CLI on them as a child process, and prints corpus size,
 * wall time, user+sys CPU time, throughput and peak memory next to the targets, then a table
 * of issue 20's targets on both legacy years. Timed commands run in interleaved rounds (each
 * round runs each command once, `node -e 0` included), so drift on a shared machine hits all
 * alike. Figures only: nothing here fails on a missed target.
 *
 *   BENCH_RUNS=7          rounds of the targeted commands (median, best, worst); fewer than 7
 *                         is marked "indicative"; other figures take min(BENCH_RUNS, 3) runs
 *   BENCH_INGEST_RUNS=1   cold index rebuilds per corpus
 *   BENCH_SCALE_RUNS=3    rounds of the scaling table (a cold run of 5 years takes a minute or more)
 *   BENCH_ONLY=legacy     only some parts, comma-separated: legacy, scaling, native, snapshot,
 *                         serve, watch, postgres (default all); scaling generates 2- and 5-year corpora
 *                         (~3 and ~7.7 GB, minutes) on first use and keeps them under .bench/; postgres
 *                         starts a throwaway PostgreSQL 15 (Debian's postgresql, fsync off)
 *   BENCH_SERVE_SECONDS=30 length of the load on `hourmeter serve`
 *   HOURMETER_BENCH_AI4OS_ACCOUNTING=<dir>  a checkout of ai4os/ai4-accounting: the original
 *                         usage_stats is then timed in the same rounds as cold `stats` (needs
 *                         Debian's python3-pandas python3-rich python3-typer); unset, it is skipped
 */
import { fewRuns, goalText, printVerdicts, RUNS } from './harness.js';
import { GOALS, legacyBench, nativeBench, scalingBench } from './index-bench.js';
import { postgresBench } from './postgres-bench.js';
import { serveBench } from './serve-bench.js';
import { snapshotBench } from './snapshot-bench.js';
import { watchBench } from './watch-bench.js';

const PARTS = {
  // A year of 6-hourly AI4OS snapshots of a busy cluster, twice (the simulator's default run
  // lengths, then the real history's churn): cold index, warm stats, --no-index.
  legacy: legacyBench,
  // Cold and warm stats on 1, 2 and 5 years of the real churn.
  scaling: scalingBench,
  // 90 days of 10-minute gzipped native snapshots of a ~2,000-allocation cluster.
  native: nativeBench,
  // Capture against a fake Nomad with latency: paged lists versus per-job requests.
  snapshot: () => snapshotBench({ concurrent: 5000, latencyMs: 20 }),
  // `hourmeter serve` at a fixed 100 requests/s on loopback, a new question each: p99.
  serve: serveBench,
  // `hourmeter watch` on a day of ~2,000 allocations: events/s, journal bytes, error against the truth;
  // then `watch --source kubernetes` against 5-minute snapshots on a day of a culled JupyterHub.
  watch: watchBench,
  // The PostgreSQL store on the real-churn year: store import, and warm year stats beside SQLite's.
  postgres: postgresBench,
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
  console.log(`hourmeter bench: node ${process.version}, ${RUNS} rounds${fewRuns(RUNS)} (BENCH_RUNS to change); parts: ${parts.join(', ')} (BENCH_ONLY to choose)`);
  console.log(
    `targets, on the worse of the two legacy years: cold year stats ${goalText(GOALS.coldVsOriginal)} faster than the original and peak RSS ${goalText(GOALS.coldRss)}; ` +
      `warm year stats ${goalText(GOALS.warm)}, --by namespace,user ${goalText(GOALS.warmBy)}, stats after one new file ${goalText(GOALS.incremental)} a bare node -e 0. ` +
      `Times are whole processes: wall (median of the rounds) and user+sys CPU\n`,
  );
  for (const [i, p] of parts.entries()) {
    if (i > 0 && p !== 'snapshot') console.log('');
    await PARTS[p]();
  }
  printVerdicts();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
