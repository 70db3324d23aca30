/**
 * `stats` and the SQLite index on real-sized histories. On the two legacy years (one churning
 * as little as the simulator's default, one as much as the real AI4OS history): issue 20's
 * targets (cold stats against the original, warm and incremental stats against a bare
 * `node -e 0`) in interleaved rounds, then a cold `index rebuild`, the index's size, and the
 * direct reads (`--no-index`) the index replaces. Scaling: 1, 2 and 5 years. Native: 90 days
 * of gzipped 10-minute files. Every figure is the CLI run as a child process: wall time
 * including Node's start-up, user+sys CPU time, and peak RSS.
 */
import { closeSync, cpSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { compareWithOurs, timeOriginal as runOriginal, type OriginalReport } from './original.js';
import {
  BENCH,
  corpus,
  fewRuns,
  goalText,
  mb,
  median,
  meets,
  nodeBaseline,
  pad,
  record,
  run,
  RUNS,
  runs,
  secondsText,
  summarize,
  target,
  timeText,
  type Corpus,
  type CorpusParams,
  type Goal,
  type Measured,
  type Summary,
} from './harness.js';

/** Other targets printed beside the figures (issue 20's are GOALS below). */
export const TARGETS = { ingestMBps: 150, peakRssMb: 300, indexShare: 0.05 } as const;
/** An earlier measurement of the original AI4OS usage_stats on a year of 6-hourly files (1.49 GB). */
const PYTHON = { seconds: 25, peakRssMb: 76 };

const INGEST_RUNS = Math.max(1, Number(process.env.BENCH_INGEST_RUNS ?? 1));
/** Runs of the figures that carry no issue 20 target (--no-index, --method ai4os, a month warm). */
const EXTRA_RUNS = Math.min(RUNS, 3);
/** Rounds of the scaling table (a cold run of 5 years takes tens of seconds). */
const SCALE_RUNS = Math.max(1, Number(process.env.BENCH_SCALE_RUNS ?? 3));

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

/** A timed command's line; `rssTarget: false` where the RSS target does not apply. */
function statsLine(label: string, s: Summary, opts: { rssTarget?: boolean } = {}): string {
  const rss = opts.rssTarget === false ? `peak RSS ${s.peakRssMb.toFixed(0).padStart(4)} MB` : rssText(s.peakRssMb);
  return `  ${pad(label)} ${timeText(s)}  ${rss}`;
}

/**
 * Warm `stats` runs with --debug: the wall time of the process, and the time the report
 * took inside it (listing the folder, checking the index, reading, counting, rendering).
 * Node's own start-up and module loading come on top.
 */
async function warmStats(label: string, args: string[]): Promise<{ runs: Measured[]; answerSeconds: number }> {
  const ms = await runs([...args, '--debug'], EXTRA_RUNS);
  console.log(statsLine(label, summarize(ms)));
  const answered = ms.map((m) => {
    const line = m.debug.find((l) => l.includes('answered in'));
    const hit = line && /answered in ([\d.]+) ms, after ([\d.]+) ms of start-up/.exec(line);
    if (!hit) throw new Error(`no timing in the --debug output of hourmeter ${args.join(' ')}`);
    return { answer: Number(hit[1]) / 1000, startup: Number(hit[2]) / 1000 };
  });
  const answer = median(answered.map((a) => a.answer));
  const startup = median(answered.map((a) => a.startup));
  console.log(`  ${pad('')} answered in ${(answer * 1000).toFixed(0)} ms inside the process (median), after ${(startup * 1000).toFixed(0)} ms of Node start-up`);
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
export function sameReport(a: string, b: string): string {
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

/** Issue 20's targets, each held on the worse of the two legacy years. */
export const ratio = (x: number) => `${x.toFixed(2)}x`;
export const GOALS = {
  coldVsOriginal: { label: 'cold year stats, times faster than the original', limit: 5, atMost: false, format: ratio },
  coldRss: { label: 'cold year stats, peak RSS', limit: 300, atMost: true, format: (x: number) => `${x.toFixed(0)} MB` },
  warm: { label: 'warm year stats / node -e 0', limit: 2, atMost: true, format: ratio },
  warmBy: { label: 'warm year stats --by namespace,user / node -e 0', limit: 3, atMost: true, format: ratio },
  incremental: { label: 'stats after one new file / node -e 0', limit: 3, atMost: true, format: ratio },
} satisfies Record<string, Goal>;

/**
 * The original AI4OS usage_stats, timed once per call on a corpus folder, in the same rounds as
 * the rest (bench/original.ts; skipped, with the reason, when not set up). Its tables are kept
 * for the comparison with `--method ai4os`.
 */
async function timeOriginal(dir: string, rounds: Rounds): Promise<Measured | { skipped: string }> {
  const o = await runOriginal(dir);
  if ('skipped' in o) return o;
  if (o.code !== 0) throw new Error(`the original usage_stats exited ${o.code} on ${dir}`);
  rounds.originalReport ??= o.report;
  return { seconds: o.seconds, cpuSeconds: o.cpuSeconds, peakRssMb: o.peakRssMb, code: o.code, stdout: '', debug: [] };
}

/**
 * A hard-linked copy of a corpus holding every file but the last, its index built and saved
 * aside, so that each incremental run starts from the same warm year and ingests one new file.
 */
interface Incremental {
  dir: string;
  savedIndex: string;
  last: { from: string; to: string };
}

async function incrementalCopy(c: Corpus, name: string): Promise<Incremental> {
  const dir = join(BENCH, `${name}-incremental`);
  const savedIndex = join(BENCH, `${name}-incremental.index`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(savedIndex, { recursive: true, force: true });
  mkdirSync(dir);
  const files = readdirSync(c.dir).filter((f) => !f.startsWith('.')).sort();
  const lastName = files.pop()!;
  for (const f of files) linkSync(join(c.dir, f), join(dir, f));
  await run(['index', 'rebuild', '--snapshots', dir]);
  cpSync(join(dir, '.hourmeter'), savedIndex, { recursive: true });
  return { dir, savedIndex, last: { from: join(c.dir, lastName), to: join(dir, lastName) } };
}

/**
 * Writes a folder's files to disk. A freshly copied index is all dirty page cache: the
 * checkpoint's fsync of the timed run would then flush the whole file, not just the pages
 * one ingest changed, as it does on an index that has been sitting on disk.
 */
function syncFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    const fd = openSync(join(dir, name), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Restores the saved index, links the last file in, and times the `stats` that ingests it. */
async function incrementalRun(inc: Incremental): Promise<Measured> {
  rmSync(join(inc.dir, '.hourmeter'), { recursive: true, force: true });
  cpSync(inc.savedIndex, join(inc.dir, '.hourmeter'), { recursive: true });
  syncFiles(join(inc.dir, '.hourmeter'));
  rmSync(inc.last.to, { force: true });
  linkSync(inc.last.from, inc.last.to);
  return run(['stats', '--snapshots', inc.dir, '-o', 'json']);
}

interface Rounds {
  baseline: Measured[];
  cold: Measured[];
  warm: Measured[];
  warmBy: Measured[];
  incremental: Measured[];
  original: Measured[];
  originalSkipped: string | null;
  /** The original's tables from its first run, for the comparison with --method ai4os. */
  originalReport: OriginalReport | null;
}

/**
 * Both legacy years: the targeted commands first, in RUNS interleaved rounds (each round runs
 * every command once on each corpus, `node -e 0` included, so drift hits all alike), then the
 * other figures (rebuild throughput, index size, --no-index, --method ai4os).
 */
export async function legacyBench(): Promise<void> {
  const years = [
    { name: 'legacy-year', params: LEGACY_YEAR, about: 'low churn' },
    { name: 'legacy-year-churn', params: LEGACY_YEAR_CHURN, about: 'real churn' },
  ];
  const corpora: Legacy[] = [];
  try {
    await legacyRounds(years, corpora);
  } finally {
    for (const { inc } of corpora) {
      rmSync(inc.dir, { recursive: true, force: true });
      rmSync(inc.savedIndex, { recursive: true, force: true });
    }
  }
  for (const { name, c, rounds } of corpora) {
    console.log(`\n${name}: other figures (${EXTRA_RUNS} runs each${fewRuns(EXTRA_RUNS)} unless said)`);
    await otherFigures(c, rounds.originalReport);
  }
}

type Legacy = { name: string; about: string; c: Corpus; inc: Incremental; rounds: Rounds };

async function legacyRounds(years: { name: string; params: CorpusParams; about: string }[], corpora: Legacy[]): Promise<void> {
  for (const y of years) {
    const c = await corpus(y.name, y.params);
    const gen = c.sizes.seconds !== null ? `, generated in ${c.sizes.seconds.toFixed(0)} s${c.generated ? '' : ' (earlier)'}` : '';
    console.log(`corpus ${y.name} (${y.about}): ${c.sizes.files} AI4OS files, ${mb(c.sizes.bytes)} MB (${(c.sizes.bytes / 2 ** 30).toFixed(2)} GiB)${gen}`);
    process.stderr.write(`preparing the incremental copy of ${y.name} ...\n`);
    const inc = await incrementalCopy(c, y.name);
    const rounds: Rounds = { baseline: [], cold: [], warm: [], warmBy: [], incremental: [], original: [], originalSkipped: null, originalReport: null };
    corpora.push({ ...y, c, inc, rounds });
  }

  console.log(`\n${RUNS} interleaved rounds${fewRuns(RUNS)}; each runs, per corpus: node -e 0, cold stats (index deleted), warm stats, warm stats --by namespace,user, stats after one new file, the original`);
  for (let r = 0; r < RUNS; r++) {
    process.stderr.write(`round ${r + 1}/${RUNS} ...\n`);
    for (const { c, inc, rounds } of corpora) {
      const year = ['stats', '--snapshots', c.dir, '-o', 'json'];
      rounds.baseline.push(await nodeBaseline());
      rmSync(join(c.dir, '.hourmeter'), { recursive: true, force: true });
      rounds.cold.push(await run(year));
      rounds.warm.push(await run(year));
      rounds.warmBy.push(await run(['stats', '--snapshots', c.dir, '--by', 'namespace,user', '-o', 'json']));
      rounds.incremental.push(await incrementalRun(inc));
      const o = await timeOriginal(c.dir, rounds);
      if ('skipped' in o) rounds.originalSkipped = o.skipped;
      else rounds.original.push(o);
    }
  }

  for (const { name, c, rounds } of corpora) {
    console.log(`\n${name}: the targets`);
    const base = summarize(rounds.baseline);
    console.log(statsLine('node -e 0 (the yardstick)', base, { rssTarget: false }));
    const cold = summarize(rounds.cold);
    console.log(statsLine('stats, whole year, cold (no index file)', cold, { rssTarget: false }));
    console.log(
      `  ${pad('')} ${(c.sizes.bytes / 1e6 / cold.median).toFixed(0)} MB/s of JSON; peak RSS ${cold.peakRssMb.toFixed(0)} MB ` +
        `${target(meets(GOALS.coldRss, cold.peakRssMb), goalText(GOALS.coldRss))}`,
    );
    // The original's time and the ratio: filled in once bench/original.ts is wired in above.
    if (rounds.originalSkipped !== null || rounds.original.length === 0) {
      console.log(`  ${pad('')} original usage_stats: not timed (${rounds.originalSkipped ?? 'no runs'}); an earlier measurement: about ${PYTHON.seconds} s, ${PYTHON.peakRssMb} MB on 1.49 GB`);
      record(GOALS.coldVsOriginal, name, rounds.originalSkipped ?? 'no runs', cold.n);
    } else {
      const orig = summarize(rounds.original);
      const times = orig.median / cold.median;
      console.log(statsLine('original usage_stats, same corpus', orig, { rssTarget: false }));
      console.log(
        `  ${pad('')} ${ratio(times)} faster in wall time, ${ratio(orig.cpuMedian / cold.cpuMedian)} in CPU time ` +
          `${target(meets(GOALS.coldVsOriginal, times), goalText(GOALS.coldVsOriginal))}`,
      );
      record(GOALS.coldVsOriginal, name, times, Math.min(cold.n, orig.n));
    }
    record(GOALS.coldRss, name, cold.peakRssMb, cold.n);
    console.log(`  ${pad('')} cold and warm reports: ${sameReport(rounds.cold[0]!.stdout, rounds.warm[0]!.stdout)}`);
    const againstNode = (label: string, goal: Goal, ms: Measured[]) => {
      const s = summarize(ms);
      const x = s.median / base.median;
      console.log(statsLine(label, s, { rssTarget: false }));
      console.log(`  ${pad('')} ${ratio(x)} node -e 0 in wall time, ${ratio(s.cpuMedian / base.cpuMedian)} in CPU time ${target(meets(goal, x), goalText(goal))}`);
      record(goal, name, x, Math.min(s.n, base.n));
    };
    againstNode('stats, whole year, index warm', GOALS.warm, rounds.warm);
    againstNode('stats --by namespace,user, whole year, index warm', GOALS.warmBy, rounds.warmBy);
    againstNode('stats ingesting one new file on a warm year', GOALS.incremental, rounds.incremental);
    console.log(`  ${pad('')} its report and the full year's: ${sameReport(rounds.incremental[0]!.stdout, rounds.warm[0]!.stdout)}`);
  }
}

/** Rebuild throughput, index size, a month warm, --no-index and --method ai4os. */
async function otherFigures(c: Corpus, original: OriginalReport | null): Promise<void> {
  const dir = c.dir;
  const ingest = await coldIngest(dir);
  for (const l of ingestLines(ingest, c, false)) console.log(l);
  console.log(indexSizeLine(await indexStatus(dir), c, false));
  const month = ['--from', '2025-01-01', '--to', '2025-01-31'];
  await warmStats('stats, one month (2025-01), index warm', ['stats', '--snapshots', dir, ...month, '-o', 'json']);
  const year = await run(['stats', '--snapshots', dir, '-o', 'json']);
  const direct = await runs(['stats', '--snapshots', dir, '--no-index', '-o', 'json'], EXTRA_RUNS);
  console.log(statsLine('stats, whole year, --no-index (reads all files)', summarize(direct)));
  console.log(`  ${pad('')} index and --no-index reports: ${sameReport(year.stdout, direct[0]!.stdout)}`);
  const ai4os = await runs(['stats', '--snapshots', dir, '--method', 'ai4os', '-o', 'json'], EXTRA_RUNS);
  console.log(statsLine('stats, whole year, --method ai4os (no index)', summarize(ai4os)));
  if (original) console.log(`  ${pad('')} its totals and the original usage_stats': ${compareWithOurs(original, ai4os[0]!.stdout)}`);
  // --no-index reads the whole history (a lifetime may start long before the month), so this
  // costs about as much as the whole year: one run.
  const m = await run(['stats', '--snapshots', dir, ...month, '--no-index', '-o', 'json']);
  console.log(statsLine('stats, one month, --no-index (reads whole year)', summarize([m])));
}

/**
 * Cold and warm `stats` on 1, 2 and 5 years of the real churn, interleaved in SCALE_RUNS rounds
 * (a cold run of 5 years takes tens of seconds). The 2- and 5-year corpora (about 3 and 7.7 GB)
 * are generated on first use and kept.
 */
export async function scalingBench(): Promise<void> {
  const spans = [
    { name: 'legacy-year-churn', years: 1, params: LEGACY_YEAR_CHURN, minFreeBytes: 2e9 },
    { name: 'legacy-2y-churn', years: 2, params: { ...LEGACY_YEAR_CHURN, days: 730 }, minFreeBytes: 4e9 },
    { name: 'legacy-5y-churn', years: 5, params: { ...LEGACY_YEAR_CHURN, days: 1826 }, minFreeBytes: 9e9 },
  ];
  const rows = [];
  for (const s of spans) rows.push({ ...s, c: await corpus(s.name, s.params, { minFreeBytes: s.minFreeBytes, progressEvery: 1000 }), cold: [] as Measured[], warm: [] as Measured[] });
  const baseline: Measured[] = [];
  for (let r = 0; r < SCALE_RUNS; r++) {
    process.stderr.write(`scaling round ${r + 1}/${SCALE_RUNS} ...\n`);
    baseline.push(await nodeBaseline());
    for (const row of rows) {
      const args = ['stats', '--snapshots', row.c.dir, '-o', 'json'];
      rmSync(join(row.c.dir, '.hourmeter'), { recursive: true, force: true });
      row.cold.push(await run(args));
      row.warm.push(await run(args));
    }
  }
  const base = summarize(baseline);
  console.log(
    `scaling on the real churn: cold stats (index deleted) and warm stats, ${SCALE_RUNS} interleaved rounds (BENCH_SCALE_RUNS)${fewRuns(SCALE_RUNS)}; ` +
      `medians; MB/s is MB of JSON covered per wall second; node -e 0: ${secondsText(base.median)} wall, ${secondsText(base.cpuMedian)} cpu`,
  );
  const head = ['years', 'files', 'MB', 'cold wall', 'cold cpu', 'MB/s', 'peak RSS', 'warm wall', 'warm cpu', 'MB/s', 'x node'];
  const widths = [5, 6, 7, 10, 10, 7, 9, 10, 10, 8, 7];
  const row = (cells: string[]) => `  ${cells.map((x, i) => x.padStart(widths[i]!)).join(' ')}`;
  console.log(row(head));
  for (const r of rows) {
    const cold = summarize(r.cold);
    const warm = summarize(r.warm);
    const mbs = r.c.sizes.bytes / 1e6;
    console.log(
      row([
        String(r.years), String(r.c.sizes.files), mb(r.c.sizes.bytes),
        secondsText(cold.median), secondsText(cold.cpuMedian), (mbs / cold.median).toFixed(0), `${cold.peakRssMb.toFixed(0)} MB`,
        secondsText(warm.median), secondsText(warm.cpuMedian), (mbs / warm.median).toFixed(0), ratio(warm.median / base.median),
      ]),
    );
  }
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
