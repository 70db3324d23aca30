import { Command, Option } from 'commander';

import { join } from 'node:path';
import { formatMonth, monthOf, parseMonth, previousMonth, reportDate, type Month } from '../../accounting/months.js';
import { coverageFileText, hasSnapshotIn, neighboursOf, periodCoverage } from '../../reports/coverage-file.js';
import { detailsCsv, monthlyCsv, monthlyReport, type MonthlyReport } from '../../reports/monthly.js';
import { replaceFile } from '../../snapshots/write.js';
import { CheckFailed, UsageError } from '../../util/errors.js';
import { formatInstant } from '../../util/time.js';
import { addIndexOptions, openHistory } from '../index-options.js';
import { CSV_DELIMITER } from '../summary-options.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addCoverageOptions, CLUSTER_FILTER, addNowOption, addReadOptions, addSnapshotsOption, MAX_GAP, nowFrom, REQUIRE_COVERAGE, reportCoverage, Settings, SNAPSHOTS, TZ, type SharedOption } from '../options.js';
import { makeFolder } from '../../util/folders.js';

const DEFAULT_OUT = 'reports';

/** --month, checked; undefined for this month and last month. */
const MONTH: SharedOption<Month | undefined> = {
  name: 'month',
  option: () => new Option('--month <YYYY-MM>', 'the month (default: this month and last month)'),
  read: (s) => {
    const text = s.string('month');
    return text === undefined ? undefined : parseMonth(text, s.source('month'));
  },
};

const DETAILS: SharedOption<boolean> = {
  name: 'details',
  option: () => new Option('--details', 'also write one row per allocation, clipped to the month'),
  read: (s) => s.flag('details'),
};

/** --out: the folder, or "-" for stdout. */
const OUT: SharedOption<string> = {
  name: 'out',
  option: () => new Option('--out <dir>', `folder for the files, or - for stdout (one month) (default: ./${DEFAULT_OUT})`),
  read: (s) => s.string('out', DEFAULT_OUT),
};

export function reportCommand(program: Command, io: CliIO): Command {
  const report = new Command('report').summary('periodic reports written as files (monthly)').description('Reports written as CSV files, for the consumers of the original tools.');
  const monthly = new Command('monthly')
    .summary("PrimeHub's monthly usage CSV: one row per component, group and user")
    .description(
      "Writes PrimeHub's monthly usage report for a month: one row per component, group and user, " +
        'with the columns component, group_name, user_name, gpu_hours, cpu_hours, memory_gb_hours, total_hours and report_date. ' +
        'As in PrimeHub, memory_gb_hours holds GiB-hours and total_hours the wall-clock hours of the allocations; ' +
        'missing attribution is an empty cell. Without --month it writes this month and last month, as PrimeHub does. ' +
        'Files: <out>/monthly/YYYYMM.csv, and with --details YYYYMM-details.csv (one row per allocation); ' +
        'YYYYMM-coverage.json says which stretches of the month the snapshots cover. A default month with ' +
        'no snapshot and no usage is not written.',
    )
    .addOption(MONTH.option())
    .addOption(DETAILS.option())
    .addOption(CLUSTER_FILTER.option())
    .addOption(OUT.option())
    .addOption(TZ.option('IANA time zone of the months'));
  addSnapshotsOption(monthly);
  monthly.addOption(CSV_DELIMITER.option());
  addCoverageOptions(monthly);
  addReadOptions(monthly);
  addIndexOptions(monthly);
  addNowOption(monthly, 'take this instant as now for the default months and the coverage of this month');
  addConfigOption(monthly);
  monthly.addHelpText(
    'after',
    '\nExamples:\n  hourmeter report monthly                        # this month and last month into ./reports/monthly/\n' +
      '  hourmeter report monthly --month 2024-09 --details\n  hourmeter report monthly --month 2024-09 --out - > 202409.csv',
  );
  monthly.action(async () => runMonthly(Settings.of(monthly, program), io));
  report.addCommand(monthly);
  report.addHelpText('after', '\nExamples:\n  hourmeter report monthly --month 2024-09');
  return report;
}

async function runMonthly(s: Settings, io: CliIO): Promise<void> {
  const tz = s.get(TZ);
  const out = s.get(OUT);
  const maxGapUs = s.get(MAX_GAP);
  const nowMs = nowFrom(s);
  // Whole seconds: the instant is written into the coverage files.
  const nowUs = Math.floor(nowMs / 1000) * 1_000_000;
  let months: Month[];
  const asked = s.get(MONTH);
  if (asked !== undefined) months = [asked];
  else {
    const now = monthOf(nowMs * 1000, tz);
    months = [previousMonth(now), now];
  }
  if (out === '-' && months.length > 1) throw new UsageError(`--out - prints one month: give --month as well`);
  const details = s.get(DETAILS);
  const delimiter = s.get(CSV_DELIMITER);
  const dir = s.get(SNAPSHOTS);
  const opened = await openHistory(s, io, dir, { perAllocation: details });
  const skipped: MonthlyReport[] = [];
  const uncovered: string[] = [];
  try {
    for (const month of months) {
      const clusters = s.get(CLUSTER_FILTER);
      const r = monthlyReport(opened.view, month, tz, { details, clusters });
      const coverage = periodCoverage(r.files, r.period, nowUs, maxGapUs, clusters);
      // A default month the snapshots never reached is unknown, not empty: an empty file
      // would read as a month without usage. A month asked for by name is written.
      if (asked === undefined && r.summary.length === 0 && coverage.coverage.warning !== null && !hasSnapshotIn(r.files.capturedUs, r.period)) {
        skipped.push(r);
        continue;
      }
      if (coverage.coverage.warning !== null) uncovered.push(`${r.month}: ${coverage.coverage.warning}`);
      if (out === '-') {
        io.stdout(details ? detailsCsv(r.details!, delimiter) : monthlyCsv(r.summary, delimiter));
        continue;
      }
      const folder = join(out, 'monthly');
      makeFolder(folder);
      const written = [join(folder, `${reportDate(month)}.csv`)];
      replaceFile(written[0]!, monthlyCsv(r.summary, delimiter));
      if (r.details) {
        written.push(join(folder, `${reportDate(month)}-details.csv`));
        replaceFile(written[1]!, detailsCsv(r.details, delimiter));
      }
      // One per month, beside its CSV: months accumulate in the folder.
      replaceFile(join(folder, `${reportDate(month)}-coverage.json`), coverageFileText(coverage));
      io.stdout(`${formatMonth(month)}: ${r.summary.length} rows${r.details ? `, ${r.details.length} allocations` : ''} written to ${written.join(' and ')}\n`);
    }
  } finally {
    opened.close();
  }
  if (skipped.length > 0) {
    const first = skipped[0]!;
    const last = skipped[skipped.length - 1]!;
    const { beforeUs } = neighboursOf(first.files.capturedUs, first.period);
    const { afterUs } = neighboursOf(last.files.capturedUs, last.period);
    const nearest =
      beforeUs !== null && afterUs !== null
        ? `the nearest are ${formatInstant(beforeUs)} and ${formatInstant(afterUs)}`
        : beforeUs !== null
          ? `the latest is ${formatInstant(beforeUs)}`
          : afterUs !== null
            ? `the first is ${formatInstant(afterUs)}`
            : 'the folder holds none';
    const example = beforeUs ?? afterUs;
    const hint = `Give --month YYYY-MM for a month with data${example === null ? '' : `, e.g. --month ${formatMonth(monthOf(example, tz))}`}`;
    // Nothing written at all is a failed run, for cron; else the other month was written.
    if (skipped.length === months.length) {
      throw new CheckFailed(`${skipped.map((r) => r.month).join(' and ')}: no snapshot in ${skipped.length > 1 ? 'these months' : 'this month'} (${nearest}); nothing written. ${hint}`);
    }
    io.warn(`${first.month}: no snapshot in this month (${nearest}); not written. ${hint}`);
  }
  // Under --require-coverage the months' lines make one error; else each is a warning.
  if (s.get(REQUIRE_COVERAGE)) reportCoverage(s, io, uncovered.length > 0 ? uncovered.join('; ') : null);
  else for (const line of uncovered) reportCoverage(s, io, line);
}
