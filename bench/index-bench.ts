/**
 * The SQLite index on two corpora: a cold `index rebuild` (index folder deleted first), the
 * index's size against the snapshots', and warm `stats` answered from the index; for the
 * legacy years (one churning as little as the simulator's default, one as much as the real
 * AI4OS history) also the direct reads (`--no-index`) the index replaces. Every figure is the
 * CLI run as a child process: wall time including Node's start-up, and its peak RSS.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  corpus,
  mb,
  median,
  pad,
  run,
  runs,
  summarize,
  target,
  timeText,
  type Corpus,
  type CorpusParams,
  type Measured,
  type Summary,
} from './harness.js';

/** The targets the figures are printed against. */
export const TARGETS = { ingestMBps: 150, warmStatsSeconds: 0.1, peakRssMb: 300, indexShare: 0.05 } as const;
/** The original AI4OS usage_stats on a year of 6-hourly files (1.49 GB). */
const PYTHON = { seconds: 25, peakRssMb: 76 };

const INGEST_RUNS = Math.max(1, Number(process.env.BENCH_INGEST_RUNS ?? 1));

const rssText = (rssMb: number) => `peak RSS ${rssMb.toFixed(0).padStart(4)} MB ${target(rssMb <= TARGETS.peakRssMb, `≤ ${TARGETS.peakRssMb} MB`)}`;

interface IndexStatusJson {
  bytes: number;
  snapshots: { catalogued: number; corrupt: number; bytes: number };
  allocations: number;
}

interface Ingest {
  summary: Summary;
  /** The CLI's own line ("rebuilt from N snapshot files, X MB, in Y s, ..."), from the median run. */
  line: string;
  /** The ingest's own seconds as the CLI reports them (no start-up, listing or exit). */
  innerSeconds: number | null;
}

/** Deletes the index folder, then `index rebuild`; INGEST_RUNS times. */
async function coldIngest(dir: string): Promise<Ingest> {
  const ms: Measured[] = [];
  for (let i = 0; i < INGEST_RUNS; i++) {
    rmSync(join(dir, '.hourmeter'), { recursive: true, force: true });
    ms.push(await run(['index', 'rebuild', '--snapshots', dir]));
  }
  const summary = summarize(ms);
  const mid = [...ms].sort((a, b) => a.seconds - b.seconds)[Math.floor(ms.length / 2)]!;
  const line = mid.stdout.trim();
  const inner = /\bin ([\d.]+) s\b/.exec(line);
  return { summary, line, innerSeconds: inner ? Number(inner[1]) : null };
}

async function indexStatus(dir: string): Promise<IndexStatusJson> {
  const m = await run(['index', 'status', '--snapshots', dir, '--json']);
  return JSON.parse(m.stdout) as IndexStatusJson;
}

function statsLine(label: string, s: Summary): string {
  return `  ${pad(label)} ${timeText(s)}  ${rssText(s.peakRssMb)}`;
}

/**
 * Warm `stats` runs with --debug: the wall time of the process, and the time the report
 * took inside it (listing the folder, checking the index, reading, counting, rendering),
 * which is what the target is about. Node's own start-up and module loading come on top.
 */
async function warmStats(label: string, args: string[], opts: { groups?: boolean } = {}): Promise<{ runs: Measured[]; answerSeconds: number }> {
  const ms = await runs([...args, '--debug']);
  console.log(statsLine(label, summarize(ms)));
  const answered = ms.map((m) => {
    const line = m.debug.find((l) => l.includes('answered in'));
    const hit = line && /answered in ([\d.]+) ms, after ([\d.]+) ms of start-up/.exec(line);
    if (!hit) throw new Error(`no timing in the --debug output of hourmeter ${args.join(' ')}`);
    return { answer: Number(hit[1]) / 1000, startup: Number(hit[2]) / 1000 };
  });
  const answer = median(answered.map((a) => a.answer));
  const startup = median(answered.map((a) => a.startup));
  // The target is for a period's report; a report by user is measured for scale, its
  // cost growing with the groups (each with the estimate and both bounds).
  const verdict = opts.groups
    ? `(${(JSON.parse(ms[0]!.stdout) as { rows: unknown[] }).rows.length.toLocaleString('en-US')} groups; the ≤ ${TARGETS.warmStatsSeconds * 1000} ms target is for reports by period)`
    : target(answer <= TARGETS.warmStatsSeconds, `≤ ${TARGETS.warmStatsSeconds * 1000} ms`);
  console.log(`  ${pad('')} answered in ${(answer * 1000).toFixed(0)} ms inside the process (median), after ${(startup * 1000).toFixed(0)} ms of Node start-up ${verdict}`);
  return { runs: ms, answerSeconds: answer };
}

function ingestLines(ing: Ingest, c: Corpus, gzip: boolean): string[] {
  const s = ing.summary;
  const jsonRate = c.sizes.bytes / 1e6 / s.median;
  const lines = [
    `  ${pad(`index rebuild, cold (index deleted; page cache warm)`)} ${timeText(s)}  ${rssText(s.peakRssMb)}`,
    `  ${pad('')} ${(c.sizes.files / s.median).toFixed(0)} files/s, ${jsonRate.toFixed(0)} MB/s of JSON` +
      (gzip ? `, ${(c.sizes.storedBytes / 1e6 / s.median).toFixed(0)} MB/s on disk` : '') +
      ` ${target(jsonRate >= TARGETS.ingestMBps, `≥ ${TARGETS.ingestMBps} MB/s of JSON`)}`,
  ];
  if (ing.innerSeconds !== null && ing.innerSeconds > 0) {
    lines.push(`  ${pad('')} the CLI says: "${ing.line}" (${(c.sizes.bytes / 1e6 / ing.innerSeconds).toFixed(0)} MB/s of JSON by its own clock)`);
  } else {
    lines.push(`  ${pad('')} the CLI says: "${ing.line}"`);
  }
  return lines;
}

function indexSizeLine(st: IndexStatusJson, c: Corpus, gzip: boolean): string {
  const ofJson = st.bytes / c.sizes.bytes;
  const ofDisk = st.bytes / c.sizes.storedBytes;
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const shares = gzip ? `${pct(ofJson)} of the JSON, ${pct(ofDisk)} of the gzipped files` : `${pct(ofJson)} of the snapshots`;
  const checks = gzip
    ? `${target(ofJson <= TARGETS.indexShare, `≤ ${TARGETS.indexShare * 100}% of the JSON`)} ${target(ofDisk <= TARGETS.indexShare, `≤ ${TARGETS.indexShare * 100}% on disk`)}`
    : target(ofJson <= TARGETS.indexShare, `≤ ${TARGETS.indexShare * 100}%`);
  return (
    `  ${pad('index size (database + WAL)')} ${(st.bytes / 1e6).toFixed(1)} MB = ${shares} ${checks}\n` +
    `  ${pad('')} ${st.snapshots.catalogued} files catalogued (${mb(st.snapshots.bytes)} MB as stored), ${st.snapshots.corrupt} corrupt, ${st.allocations} allocations`
  );
}

/** Whether two `stats -o json` reports agree (they should: the index is a cache). */
function sameReport(a: string, b: string): string {
  if (a === b) return 'identical';
  const x = a.split('\n');
  const y = b.split('\n');
  const i = x.findIndex((line, k) => line !== y[k]);
  return `DIFFER (first at line ${i + 1}: ${JSON.stringify(x[i]?.trim())} vs ${JSON.stringify(y[i]?.trim())})`;
}

/** A year of 6-hourly AI4OS files (~800 allocations at once, full AI4OS record fields). */
export const LEGACY_YEAR: CorpusParams = { format: 'legacy', days: 365, intervalMinutes: 360, targetConcurrent: 800, seed: 42, fullFields: true };

/**
 * The same year churning as the real one does: lognormal runs (median 4 h, log spread 1.9,
 * capped at 90 days, mean about 24 h), 7% failing within a minute or two.
 */
export const LEGACY_YEAR_CHURN: CorpusParams = {
  ...LEGACY_YEAR,
  durationDistribution: 'lognormal',
  medianDurationMinutes: 240,
  durationSigma: 1.9,
  minDurationMinutes: 1,
  maxDurationMinutes: 90 * 24 * 60,
  earlyFailFraction: 0.07,
};

interface LegacyFigures {
  name: string;
  bytes: number;
  allocations: number;
  rebuildSeconds: number;
  rebuildRssMb: number;
  indexBytes: number;
  yearWarm: number;
  noIndex: number;
}

/** Both legacy years, the same measurements on each, then the two side by side. */
export async function legacyBench(): Promise<void> {
  const figures = [await legacyYearBench('legacy-year', LEGACY_YEAR)];
  console.log('');
  figures.push(await legacyYearBench('legacy-year-churn', LEGACY_YEAR_CHURN));
  console.log('');
  console.log('legacy years side by side:');
  for (const f of figures) {
    console.log(
      `  ${f.name.padEnd(18)} ${mb(f.bytes).padStart(5)} MB, ${f.allocations.toLocaleString('en-US').padStart(7)} allocations: ` +
        `cold rebuild ${f.rebuildSeconds.toFixed(1)} s (${f.rebuildRssMb.toFixed(0)} MB), index ${(f.indexBytes / 1e6).toFixed(1)} MB, ` +
        `warm year stats ${(f.yearWarm * 1000).toFixed(0)} ms inside the process, --no-index ${f.noIndex.toFixed(1)} s`,
    );
  }
}

async function legacyYearBench(name: string, params: CorpusParams): Promise<LegacyFigures> {
  const c = await corpus(name, params);
  const dir = c.dir;
  const gen = c.sizes.seconds !== null ? `, generated in ${c.sizes.seconds.toFixed(0)} s${c.generated ? '' : ' (earlier)'}` : '';
  console.log(`corpus ${name}: ${c.sizes.files} AI4OS files, ${mb(c.sizes.bytes)} MB (${(c.sizes.bytes / 2 ** 30).toFixed(2)} GiB)${gen}`);

  const ingest = await coldIngest(dir);
  for (const l of ingestLines(ingest, c, false)) console.log(l);
  const status = await indexStatus(dir);
  console.log(indexSizeLine(status, c, false));

  const month = ['--from', '2025-01-01', '--to', '2025-01-31'];
  const year = await warmStats('stats, whole year, index warm', ['stats', '--snapshots', dir, '-o', 'json']);
  await warmStats('stats, one month (2025-01), index warm', ['stats', '--snapshots', dir, ...month, '-o', 'json']);
  await warmStats('stats, whole year by namespace and user, index warm', ['stats', '--snapshots', dir, '--by', 'namespace,user', '-o', 'json'], { groups: true });

  const direct = await runs(['stats', '--snapshots', dir, '--no-index', '-o', 'json']);
  console.log(statsLine('stats, whole year, --no-index (reads all files)', summarize(direct)));
  console.log(`  ${pad('')} index and --no-index reports: ${sameReport(year.runs[0]!.stdout, direct[0]!.stdout)}`);
  console.log(statsLine('stats, whole year, --method ai4os (no index)', summarize(await runs(['stats', '--snapshots', dir, '--method', 'ai4os', '-o', 'json']))));
  // --no-index reads the whole history (a lifetime may start long before the month), so this
  // costs about as much as the whole year: one run.
  const m = await run(['stats', '--snapshots', dir, ...month, '--no-index', '-o', 'json']);
  console.log(statsLine('stats, one month, --no-index (reads whole year)', summarize([m])));
  console.log(
    `  reference (${name}): the original AI4OS usage_stats takes about ${PYTHON.seconds} s and ${PYTHON.peakRssMb} MB on such a year (1.49 GB); ` +
      `cold rebuild here ${ingest.summary.median.toFixed(1)} s and ${ingest.summary.peakRssMb.toFixed(0)} MB ` +
      `(${ingest.summary.median <= PYTHON.seconds ? 'faster' : 'SLOWER'}, ${ingest.summary.peakRssMb <= PYTHON.peakRssMb ? 'less memory' : 'more memory'})`,
  );
  return {
    name,
    bytes: c.sizes.bytes,
    allocations: status.allocations,
    rebuildSeconds: ingest.summary.median,
    rebuildRssMb: ingest.summary.peakRssMb,
    indexBytes: status.bytes,
    yearWarm: year.answerSeconds,
    noIndex: summarize(direct).median,
  };
}

/** 90 days of 10-minute native snapshots of a ~2,000-allocation cluster, gzipped. */
export async function nativeBench(): Promise<void> {
  // About 2.5 MB of JSON (0.38 MB gzipped) per file, 12,960 files: ~32 GB of JSON, ~5 GB on disk.
  const c = await corpus(
    'native-90d-gz',
    { format: 'native', days: 90, intervalMinutes: 10, targetConcurrent: 2000, seed: 7, fullFields: true, gzip: true, gzipLevel: 6 },
    { minFreeBytes: 8e9, progressEvery: 1000 },
  );
  const dir = c.dir;
  const gen = c.sizes.seconds !== null ? `, generated in ${c.sizes.seconds.toFixed(0)} s${c.generated ? '' : ' (earlier)'}` : '';
  console.log(
    `corpus native-90d-gz: ${c.sizes.files} native .json.gz files, ${mb(c.sizes.bytes)} MB of JSON (${(c.sizes.bytes / 2 ** 30).toFixed(2)} GiB), ` +
      `${mb(c.sizes.storedBytes)} MB on disk (gzip level 6, ${((100 * c.sizes.storedBytes) / c.sizes.bytes).toFixed(1)}%)${gen}`,
  );

  const ingest = await coldIngest(dir);
  for (const l of ingestLines(ingest, c, true)) console.log(l);
  console.log(indexSizeLine(await indexStatus(dir), c, true));

  await warmStats('stats, all 90 days, index warm', ['stats', '--snapshots', dir, '-o', 'json']);
  const month = ['--from', '2024-10-01', '--to', '2024-10-31'];
  await warmStats('stats, one month (2024-10), index warm', ['stats', '--snapshots', dir, ...month, '-o', 'json']);
}
