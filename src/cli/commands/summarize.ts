import { Command, Option } from 'commander';

import { dirname, join } from 'node:path';
import { replaceFile } from '../../snapshots/write.js';
import { UsageError } from '../../util/errors.js';
import { filtersGiven, unmatchedFilterWarnings } from '../filters.js';
import { addIndexOptions, INDEX, indexPath, openHistory } from '../index-options.js';
import { openCaptures } from '../../history/captures.js';
import { STORE, storeConnection } from '../store-options.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addCoverageOptions, CLUSTER_FILTER, addNowOption, addPeriodOptions, addReadOptions, addSnapshotsOption, MAX_GAP, NAMESPACE, nowFrom, QUIET, reportCoverage, Settings, SNAPSHOTS, TZ, type SharedOption } from '../options.js';
import { addEstimateOptions, checkDates, estimateOptions, periodOf, SUMMARIES, SUMMARY_DELIMITER, SUMMARY_FORMATS } from '../summary-options.js';
import { makeFolder } from '../../util/folders.js';

const DEFAULT_FORMAT: (typeof SUMMARY_FORMATS)[number] = 'hourmeter';

const FORMAT: SharedOption<(typeof SUMMARY_FORMATS)[number]> = {
  name: 'format',
  option: () => new Option('--format <format>', `${SUMMARY_FORMATS.join(' or ')}: ai4os writes the original AI4OS columns and units (UTC only) (default: ${DEFAULT_FORMAT})`),
  read: (s) => s.choice('format', SUMMARY_FORMATS, DEFAULT_FORMAT),
};

export function summarizeCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('summarize')
    .summary('write daily, per-user and per-namespace CSV summaries (AI4OS file names)')
    .description(
      'Writes, for each namespace, <ns>-timeseries.csv (one row per day), <ns>-users-agg.csv (one row ' +
        'per user) and <ns>-full-agg.csv (the namespace) into the summaries folder. Resource-hours are ' +
        "exact, from the same lifetimes as `stats`, cut at each midnight of --tz; running and queued " +
        "jobs are averaged over each day's snapshots, and the snapshot count shows the days without one. " +
        'coverage.json says which stretches of the period the snapshots cover.',
    );
  addSnapshotsOption(cmd);
  addPeriodOptions(cmd);
  cmd.addOption(SUMMARIES.option('folder the CSV files are written to'));
  cmd
    .addOption(CLUSTER_FILTER.option())
    .addOption(NAMESPACE.option())
    .addOption(FORMAT.option());
  cmd.addOption(SUMMARY_DELIMITER.option());
  addEstimateOptions(cmd);
  addCoverageOptions(cmd);
  addReadOptions(cmd);
  addIndexOptions(cmd);
  addNowOption(cmd, 'judge the coverage of a period still running up to this instant');
  addConfigOption(cmd);
  cmd.addOption(QUIET.option());
  cmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter summarize\n  hourmeter summarize --from 2024-09-01 --to 2025-02-28 --tz Europe/Madrid\n  hourmeter summarize --format ai4os --delimiter , --summaries /srv/dashboards/summaries',
  );
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    await runSummarize(s, program.opts().debug ? io : { ...io, debug: () => {} });
  });
  return cmd;
}

async function runSummarize(s: Settings, io: CliIO): Promise<void> {
  const dir = s.get(SNAPSHOTS);
  const out = s.get(SUMMARIES);
  const tz = s.get(TZ);
  const format = s.get(FORMAT);
  if (format === 'ai4os' && tz !== 'UTC') throw new UsageError(`--format ai4os writes UTC days, as the original: drop ${s.sourceOf(TZ)}`);
  const delimiter = s.get(SUMMARY_DELIMITER);
  const estimate = estimateOptions(s);
  const namespaces = s.get(NAMESPACE);
  const maxGapUs = s.get(MAX_GAP);
  // Whole seconds: the instant is written into coverage.json.
  const nowUs = Math.floor(nowFrom(s) / 1000) * 1_000_000;
  checkDates(s, tz);

  // Loaded here, not at start-up: other commands do not need them.
  const [{ dayGrid, splitTracks }, { countsPerDay }, { summaryFiles }, { filesInWindow, snapshotCounts }, { COVERAGE_FILE, coverageFileText, periodCoverage }] = await Promise.all([
    import('../../accounting/daily.js'),
    import('../../accounting/job-counts.js'),
    import('../../reports/summaries.js'),
    import('../../snapshots/counts.js'),
    import('../../reports/coverage-file.js'),
  ]);
  const t0 = performance.now();
  const opened = await openHistory(s, io, dir);
  try {
    const period = periodOf(s, opened.listing, tz);
    const grid = dayGrid(period);
    const useIndex = s.get(INDEX);
    const window = filesInWindow(opened.listing.files, period);
    const t1 = performance.now();
    // Job counts come from the files themselves; the store writes out the window's.
    const stored = await openCaptures({ dir, store: storeConnection(s, io) });
    let counted;
    try {
      const names = new Set(window.map((f) => f.name));
      const files = stored.files.filter((f) => names.has(f.name));
      await stored.fetch(files);
      const cachePath = useIndex && !s.given(STORE) ? join(dirname(indexPath(s, dir)), 'summary-counts.json') : null;
      counted = await snapshotCounts(files, { folder: stored.dir, cachePath });
    } finally {
      await stored.close();
    }
    if (counted.cacheProblem) io.debug(`summarize: the job counts cache was not saved (${counted.cacheProblem})`);
    const clusters = s.get(CLUSTER_FILTER);
    const counts = countsPerDay(grid, counted.counts, clusters);
    if (namespaces.length > 0) for (const ns of counts.keys()) if (!namespaces.includes(ns)) counts.delete(ns);
    const t2 = performance.now();
    const { usage, captures } = opened.view.consistently(() => {
      const { tracks, names, files } = opened.view.read(period);
      return { usage: splitTracks(tracks, names, grid, namespaces, estimate, clusters).result(counts.keys()), captures: files };
    });
    const coverage = periodCoverage(captures, period, nowUs, maxGapUs, clusters);
    const files = summaryFiles({ usage, counts, period, format, delimiter });
    // Names no allocation ever carried are warned about once, with the closest known name.
    const given = filtersGiven(s, ['namespace']);
    const known = new Set(given.length > 0 ? opened.view.knownValues('namespace') : []);
    const unmatched = unmatchedFilterWarnings(given, () => [...known], 'in the snapshots');
    // Beside the summaries it describes; none when no summary is written.
    if (files.length > 0) files.push({ name: COVERAGE_FILE, content: coverageFileText(coverage) });
    const t3 = performance.now();

    try {
      makeFolder(out);
    } catch (e) {
      throw new UsageError(`${s.sourceOf(SUMMARIES)} ${out}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); point --summaries at a writable folder`);
    }
    for (const f of files) {
      replaceFile(join(out, f.name), f.content);
      if (!s.get(QUIET)) io.stdout(`wrote ${join(out, f.name)}\n`);
    }
    unmatched.forEach((line) => io.warn(line));
    if (usage.length === 0) io.warn(`no namespace had usage or snapshots in ${period.from} to ${period.to}: nothing written`);
    for (const ns of usage) {
      const c = counts.get(ns.namespace);
      if (!c && ns.total.allocations === 0) {
        // A name the snapshots never held was warned about above; this one appears at other times.
        if (given.length === 0 || known.has(ns.namespace)) io.warn(`${ns.namespace}: no allocation held resources and no snapshot covered it in ${period.from} to ${period.to}, though it appears at other times in the snapshots`);
        continue;
      }
      // A day that has not begun yet is not missing its snapshots.
      const missing = grid.days.filter((_, d) => grid.boundsUs[d]! < nowUs && (!c || c[d]!.snapshots === 0));
      if (missing.length === 0) continue;
      const list = missing.length <= 3 ? missing.join(', ') : `${missing.slice(0, 3).join(', ')} and ${missing.length - 3} more`;
      io.warn(
        `${ns.namespace}: no snapshot on ${missing.length} day${missing.length > 1 ? 's' : ''} (${list}): running and queued jobs are left empty there; resource-hours still come from the lifetimes`,
      );
    }
    const ms = (a: number, b: number) => `${(b - a).toFixed(1)} ms`;
    io.debug(
      `summarize: list and update the index ${ms(t0, t1)}, job counts of ${window.length} files (${counted.read} read, the rest cached) ${ms(t1, t2)}, ` +
        `split ${grid.days.length} days and render ${ms(t2, t3)}, write ${files.length} files ${ms(t3, performance.now())}`,
    );
    reportCoverage(s, io, coverage.coverage.warning);
  } finally {
    opened.close();
  }
}
