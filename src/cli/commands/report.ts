import { Command, Option } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkTimeZone } from '../../accounting/period.js';
import { formatMonth, monthOf, parseMonth, previousMonth, reportDate, type Month } from '../../accounting/months.js';
import { detailsCsv, monthlyCsv, monthlyReport } from '../../reports/monthly.js';
import { replaceFile } from '../../snapshots/write.js';
import { UsageError } from '../../util/errors.js';
import { addIndexOptions, openHistory } from '../history.js';
import type { CliIO } from '../io.js';
import { addConfigOption, addNowOption, addReadOptions, addSnapshotsOption, nowFrom, Settings } from '../options.js';

export function reportCommand(program: Command, io: CliIO): Command {
  const report = new Command('report').summary('periodic reports written as files (monthly)').description('Reports written as CSV files, for the consumers of the original tools.');
  const monthly = new Command('monthly')
    .summary("PrimeHub's monthly usage CSV: one row per component, group and user")
    .description(
      "Writes PrimeHub's monthly usage report for a month: one row per component, group and user,\n" +
        'with the columns component,group_name,user_name,gpu_hours,cpu_hours,memory_gb_hours,total_hours,report_date.\n' +
        'As in PrimeHub, memory_gb_hours holds GiB-hours and total_hours the wall-clock hours of the allocations;\n' +
        'missing attribution is an empty cell. Without --month it writes this month and last month, as PrimeHub does.\n' +
        'Files: <out>/monthly/YYYYMM.csv, and with --details YYYYMM-details.csv (one row per allocation).',
    )
    .addOption(new Option('--month <YYYY-MM>', 'the month (default: this month and last month)'))
    .addOption(new Option('--details', 'also write one row per allocation, clipped to the month'))
    .addOption(new Option('--out <dir>', 'folder for the files, or - for stdout (one month) (default: ./reports)'))
    .addOption(new Option('--tz <zone>', 'IANA time zone of the months (default: UTC)').env('HOURMETER_TZ'));
  addSnapshotsOption(monthly);
  addReadOptions(monthly);
  addIndexOptions(monthly);
  addNowOption(monthly, 'take this instant as now for the default months');
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
  const tz = checkTimeZone(s.string('tz', 'UTC'), s.source('tz'));
  const monthText = s.string('month');
  const out = s.string('out', 'reports');
  let months: Month[];
  if (monthText !== undefined) months = [parseMonth(monthText, s.source('month'))];
  else {
    const now = monthOf(nowFrom(s) * 1000, tz);
    months = [previousMonth(now), now];
  }
  if (out === '-' && months.length > 1) throw new UsageError(`--out - prints one month: give --month as well`);
  const details = s.flag('details');
  const dir = s.string('snapshots', 'snapshots');
  const opened = await openHistory(s, io, dir);
  try {
    for (const month of months) {
      const r = monthlyReport(opened.view, month, tz, { details });
      if (out === '-') {
        io.stdout(details ? detailsCsv(r.details!) : monthlyCsv(r.summary));
        continue;
      }
      const folder = join(out, 'monthly');
      mkdirSync(folder, { recursive: true });
      const written = [join(folder, `${reportDate(month)}.csv`)];
      replaceFile(written[0]!, monthlyCsv(r.summary));
      if (r.details) {
        written.push(join(folder, `${reportDate(month)}-details.csv`));
        replaceFile(written[1]!, detailsCsv(r.details));
      }
      io.stdout(`${formatMonth(month)}: ${r.summary.length} rows${r.details ? `, ${r.details.length} allocations` : ''} written to ${written.join(' and ')}\n`);
    }
  } finally {
    opened.close();
  }
}
