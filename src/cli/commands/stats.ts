import { Command, Option } from 'commander';
import { GROUP_KEYS, type GroupKey } from '../../accounting/aggregate.js';
import { dayOf, resolvePeriod } from '../../accounting/period.js';
import type { Ai4osReport } from '../../reports/ai4os-report.js';
import { renderOutput } from '../../reports/output.js';
import { statsOutput, withUserNames } from '../../reports/stats-report.js';
import { statsFromView } from '../../reports/stats-query.js';
import { terminalWidth } from '../../reports/table.js';
import type { Listing, SnapshotFile } from '../../snapshots/files.js';
import { SkipLedger } from '../../snapshots/skips.js';
import { filtersGiven, warnUnmatchedFilters } from '../filters.js';
import { openCaptures } from '../../history/captures.js';
import { spanOf } from '../../history/open.js';
import { STORE, storeConnection } from '../store-options.js';
import { addIndexOptions, openHistory } from '../index-options.js';
import { UsageError } from '../../util/errors.js';
import { addEstimateOptions, checkDates, CSV_DELIMITER, dateNames, estimateOptions, GAP_POLICY, GC_WINDOW } from '../summary-options.js';
import type { CliIO } from '../io.js';
import { addConfigOption, CLUSTER_FILTER, addCoverageOptions, addNowOption, addOutputOptions, outputFormat, addPeriodOptions, addReadOptions, addSnapshotsOption, FROM, GROUP, MAX_GAP, NAMESPACE, nowFrom, REQUIRE_COVERAGE, reportCoverage, Settings, SNAPSHOTS, STRICT, TO, TZ, USER, USERDB, type SharedOption } from '../options.js';

const OUTPUT = outputFormat(['table', 'json', 'csv'] as const);
const DEFAULT_BY: readonly GroupKey[] = ['namespace'];

/** --by: the group keys, checked, each once. */
const BY: SharedOption<GroupKey[]> = {
  name: 'by',
  option: () => new Option('--by <keys>', `group rows by ${GROUP_KEYS.join('|')}, or a comma list such as namespace,user (default: ${DEFAULT_BY.join(',')})`),
  read: (s) => {
    const keys = s.list('by');
    if (keys.length === 0) return [...DEFAULT_BY];
    for (const k of keys) {
      if (!(GROUP_KEYS as readonly string[]).includes(k)) throw new UsageError(`${s.source('by')} ${JSON.stringify(k)}: group by one of ${GROUP_KEYS.join(', ')}, or a comma list`);
    }
    if (new Set(keys).size !== keys.length) throw new UsageError(`${s.source('by')}: each key may appear once`);
    return keys as GroupKey[];
  },
};

const METHODS = ['exact', 'ai4os'] as const;

const METHOD: SharedOption<(typeof METHODS)[number]> = {
  name: 'method',
  option: () => new Option('--method <method>', `exact, or ai4os to reproduce the original AI4OS usage_stats numbers (default: ${METHODS[0]})`),
  read: (s) => s.choice('method', METHODS, METHODS[0]),
};

export function statsCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('stats')
    .summary('resource-hours per namespace, user, group or job for a date range')
    .description(
      'Exact CPU-, GPU-, memory- and disk-hours for an inclusive date range, from every allocation\'s ' +
        'lifetime reconstructed across the snapshots and clipped to the period.',
    );
  addSnapshotsOption(cmd);
  addPeriodOptions(cmd);
  cmd
    .addOption(BY.option())
    .addOption(CLUSTER_FILTER.option())
    .addOption(NAMESPACE.option())
    .addOption(USER.option())
    .addOption(GROUP.option())
    .addOption(METHOD.option())
    .addOption(USERDB.option('user database folder, for the names of users when grouping by user'));
  addEstimateOptions(cmd);
  addCoverageOptions(cmd);
  addNowOption(cmd, 'take this instant as now: coverage of a period still running ends there');
  addOutputOptions(cmd, OUTPUT);
  cmd.addOption(CSV_DELIMITER.option());
  addReadOptions(cmd);
  addIndexOptions(cmd);
  addConfigOption(cmd);
  cmd.addHelpText(
    'after',
    '\nExamples:\n  hourmeter stats --from 2024-09-01 --to 2025-02-28\n  hourmeter stats --by namespace,user --tz Europe/Madrid -o csv\n  hourmeter stats --method ai4os --from 2024-09-03 --to 2024-09-10',
  );
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    await runStats(s, program.opts().debug ? io : { ...io, debug: () => {} });
  });
  return cmd;
}

async function runStats(s: Settings, io: CliIO): Promise<void> {
  const method = s.get(METHOD);
  const output = s.get(OUTPUT);
  const dir = s.get(SNAPSHOTS);
  const tz = s.get(TZ);
  const groupBy = s.get(BY);
  const estimate = estimateOptions(s);
  const maxGapUs = s.get(MAX_GAP);
  // Validate explicit dates before touching the disk, so a typo fails fast.
  const from = s.get(FROM);
  const to = s.get(TO);
  checkDates(s, tz);

  // The AI4OS method replays the original's walk over the files; it has no use for the index.
  const t0 = performance.now();
  const captures = method === 'ai4os' ? await openCaptures({ dir, store: storeConnection(s, io), warn: io.warn }) : null;
  if (captures && captures.files.length === 0) {
    await captures.close();
    throw new UsageError(`${s.given(STORE) ? 'the store' : `--snapshots ${dir}`} holds no snapshot files (*.json named by capture time); run \`hourmeter snapshot\` first or point --snapshots elsewhere`);
  }
  const listing = captures ? { files: captures.files, unnamed: captures.unnamed, folders: [] } : null;
  const opened = listing ? null : await openHistory(s, io, dir);
  const t1 = performance.now();
  try {
    const span = listing ? spanOf(listing) : opened!.span;
    const firstDay = dayOf(span.firstUs, tz);
    const lastDay = dayOf(span.lastUs, tz);
    // A date given alone is paired with a snapshot day: say so when they cross.
    const names = dateNames(s);
    if (from !== undefined && to === undefined && from > lastDay) throw new UsageError(`${names.from} ${from} is after the last snapshot day ${lastDay}: give --to as well, or an earlier --from`);
    if (to !== undefined && from === undefined && to < firstDay) throw new UsageError(`${names.to} ${to} is before the first snapshot day ${firstDay}: give --from as well, or a later --to`);
    const period = resolvePeriod(from ?? firstDay, to ?? lastDay, tz, names);

    if (listing) {
      const policy = { strict: s.get(STRICT), warn: io.warn };
      if (tz !== 'UTC') throw new UsageError(`--method ai4os is UTC only (as the original): drop ${s.sourceOf(TZ)}`);
      if (groupBy.length !== 1 || groupBy[0] !== 'namespace') throw new UsageError('--method ai4os reports per namespace only: drop --by');
      if (s.get(USER).length || s.get(GROUP).length) throw new UsageError('--method ai4os has no user or group filters: drop --user/--group');
      for (const option of [GAP_POLICY, GC_WINDOW, MAX_GAP, REQUIRE_COVERAGE]) {
        if (s.given(option)) throw new UsageError(`--method ai4os has no ${option.name}: it counts only what the snapshots list; drop ${s.sourceOf(option)}`);
      }
      const report = await runAi4os(listing, from, period.from, period.to, s.get(NAMESPACE), policy, (files) => captures!.fetch(files));
      const { renderAi4osCsv, renderAi4osTable } = await import('../../reports/ai4os-report.js');
      io.stdout(output === 'json' ? JSON.stringify(report, null, 1) + '\n' : output === 'csv' ? renderAi4osCsv(report, s.get(CSV_DELIMITER)) : renderAi4osTable(report));
      return;
    }

    const filters = { clusters: s.get(CLUSTER_FILTER), namespaces: s.get(NAMESPACE), users: s.get(USER), groups: s.get(GROUP) };
    warnUnmatchedFilters(opened!.view, filtersGiven(s, ['cluster', 'namespace', 'user', 'group']), io.warn);
    // Only JSON shows each row's low and high bounds; a table or CSV shows their totals.
    const { tracks, files, ...counted } = statsFromView(opened!.view, {
      period,
      groupBy,
      filters,
      estimate,
      unnamedFiles: opened!.unnamed.length,
      groupBounds: output === 'json',
      maxGapUs,
      nowUs: nowFrom(s) * 1000,
    });
    // Read (and its code loaded) only when rows are users: a report by namespace has no use for it.
    const report = groupBy.includes('user') ? withUserNames(counted, await (await import('../user-names.js')).userNames(s, io)) : counted;
    io.stdout(renderOutput(statsOutput(report), output, { delimiter: output === 'csv' ? s.get(CSV_DELIMITER) : undefined, width: terminalWidth() }));
    // A table shows the line under it; JSON and CSV readers get it on stderr.
    reportCoverage(s, io, report.coverage.warning, { printed: output === 'table' });
    const ms = (a: number, b: number) => `${(b - a).toFixed(1)} ms`;
    const t2 = performance.now();
    io.debug(
      `stats: answered in ${ms(t0, t2)}, after ${ms(0, t0)} of start-up: ` +
        `${opened!.listed ? 'list and update the index' : 'no folder moved since the last ingest, checked in'} ${ms(t0, t1)}, read ${tracks} tracks and ${files} file summaries, count and render ${ms(t1, t2)}`,
    );
  } finally {
    opened?.close();
    await captures?.close();
  }
}

const DAY_US = 86_400_000_000;

async function runAi4os(
  listing: Listing,
  from: string | undefined,
  fromDay: string,
  toDay: string,
  namespaces: string[],
  policy: { strict: boolean; warn: (l: string) => void },
  /** Makes the files readable first (the store writes its out). */
  fetch: (files: SnapshotFile[]) => Promise<void>,
): Promise<Ai4osReport> {
  const native = listing.files.find((f) => f.namedAs === 'native');
  if (native) throw new UsageError(`--method ai4os reads only AI4OS legacy files, and ${native.name} is a native snapshot; use --method exact`);
  // The original's range: --ini-date 00:00:00 to --end-date 23:59:59; without dates, from the
  // first snapshot's own time to 23:59:59 of the last snapshot's day.
  const startUs = from !== undefined ? resolvePeriod(fromDay, fromDay, 'UTC').startUs : listing.files[0]!.timeUs;
  const endUs = resolvePeriod(toDay, toDay, 'UTC').startUs + DAY_US - 1_000_000;
  const files = listing.files.filter((f) => f.timeUs >= startUs && f.timeUs <= endUs);
  await fetch(files);
  // The original's method is loaded only when asked for: a report from the index needs none of it.
  const [{ Ai4osAccumulator }, { Ai4osDecoder }, { readAll }] = await Promise.all([
    import('../../accounting/ai4os.js'),
    import('../../snapshots/ai4os-input.js'),
    import('../../snapshots/read-pool.js'),
  ]);
  const acc = new Ai4osAccumulator(startUs, namespaces);
  const ledger = new SkipLedger(policy);
  const decoder = new Ai4osDecoder();
  for await (const out of readAll('ai4os', files)) {
    if (!out.ok) {
      if (out.reason === 'native file') throw new UsageError(`--method ai4os reads only AI4OS legacy files, and ${out.file.name} is a native snapshot; use --method exact`);
      ledger.file(out.file.name, out.reason, out.message);
      continue;
    }
    const { snapshot, skips } = decoder.decode(out.value as typeof out.value & { kind: 'legacy' });
    ledger.records(out.file.name, skips);
    acc.add(out.file.timeUs, snapshot);
  }
  return { period: { from: fromDay, to: toDay }, ...acc.result() };
}
