import { existsSync, readdirSync } from 'node:fs';
import { Command, Option } from 'commander';
import { writeHistory } from '../../simulator/index.js';
import { UsageError } from '../../util/errors.js';
import { MICROS_PER_MINUTE, parseDuration } from '../../util/time.js';
import { parseDay } from '../../accounting/period.js';
import type { CliIO } from '../io.js';

export function simulateCommand(_program: Command, io: CliIO): Command {
  const cmd = new Command('simulate')
    .summary('write a simulated cluster history (for demos, tests and benchmarks)')
    .description(
      'Writes the snapshots of a simulated Nomad-like cluster, deterministic from a seed: namespaces and ' +
        'users, jobs from minutes to weeks, GPU and CPU jobs, queued jobs, in-place restarts, rescheduled ' +
        'allocations, disconnected nodes and garbage collection; optionally the exact ground truth.',
    )
    .requiredOption('--out <dir>', 'folder to write the snapshot files into (created; must not hold snapshots already)')
    .addOption(new Option('--format <format>', 'native or legacy (AI4OS)').choices(['native', 'legacy']).default('native'))
    .option('--start <YYYY-MM-DD>', 'first snapshot day (UTC)', '2024-09-01')
    .option('--days <n>', 'days of history', '30')
    .option('--interval <duration>', 'time between snapshots, e.g. 15m, 6h', '6h')
    .option('--concurrent <n>', 'mean number of allocations holding resources at once', '60')
    .option('--seed <seed>', 'everything random follows from it', '1')
    .option('--missed <probability>', 'share of snapshots that are not written, 0..1', '0')
    .addOption(
      new Option('--run-lengths <distribution>', 'how planned run times are drawn: log-uniform from 10m to --run-max, or lognormal around --run-median')
        .choices(['log-uniform', 'lognormal'])
        .default('log-uniform'),
    )
    .option('--run-median <duration>', 'median run time of the lognormal run lengths', '4h')
    .option('--run-sigma <n>', 'spread of the natural log of the lognormal run lengths', '1.9')
    .option('--run-max <duration>', 'longest planned run', '21d')
    .option('--early-fail <share>', 'share of jobs that fail 1-2 minutes after they start, 0..1', '0')
    .option('--gc-window <duration>', 'how long finished allocations stay listed (default: 1h native, 4h legacy)')
    .option('--truth <file>', 'also write the ground truth (every allocation\'s true lifetime) as JSON')
    .option('--lean', 'leave out the long descriptive fields (smaller files)')
    .addHelpText('after', '\nExamples:\n  hourmeter simulate --out demo/snapshots --days 30 --interval 15m --seed 7\n  hourmeter simulate --out legacy --format legacy --days 365 --concurrent 800 --truth truth.json\n' +
        '  hourmeter simulate --out churn --format legacy --days 365 --concurrent 800 --run-lengths lognormal --run-max 90d --early-fail 0.07');
  cmd.action(async (o: Record<string, string | boolean | undefined>) => {
    const out = String(o.out);
    if (existsSync(out) && readdirSync(out).some((f) => f.endsWith('.json') || f.endsWith('.json.gz'))) {
      throw new UsageError(`--out ${out} already holds snapshot files; pick an empty folder so simulated and real history never mix`);
    }
    // Commander keys options in camelCase (--gc-window is o.gcWindow); messages name the flag.
    const value = (flag: string) => o[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    const num = (flag: string, min: number, max = Infinity): number => {
      const v = Number(value(flag));
      if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${flag} ${JSON.stringify(value(flag))} must be a number from ${min}${max === Infinity ? '' : ` to ${max}`}`);
      return v;
    };
    const duration = (flag: string): number | undefined => {
      if (value(flag) === undefined) return undefined;
      const us = parseDuration(String(value(flag)));
      if (us === null) throw new UsageError(`--${flag} ${JSON.stringify(value(flag))} is not a duration: use e.g. 15m or 6h`);
      return us / MICROS_PER_MINUTE;
    };
    parseDay(String(o.start), '--start');
    const intervalMinutes = duration('interval')!;
    if (!(intervalMinutes > 0)) throw new UsageError('--interval must be longer than 0');
    const lognormal = o.runLengths === 'lognormal';
    const runMedian = duration('run-median')!;
    const runMax = duration('run-max')!;
    // Log-uniform runs start at 10 minutes; lognormal ones may be as short as a minute.
    const runMin = lognormal ? 1 : 10;
    if (!(runMax >= runMin)) throw new UsageError(`--run-max ${String(o.runMax)} must be at least ${runMin}m; use e.g. 21d`);
    if (lognormal && !(runMedian > 0)) throw new UsageError('--run-median must be longer than 0');
    const showProgress = process.stderr.isTTY === true;
    const result = await writeHistory(out, {
      format: o.format as 'native' | 'legacy',
      start: `${String(o.start)}T00:00:00Z`,
      days: num('days', 0.01),
      intervalMinutes,
      targetConcurrent: num('concurrent', 1),
      seed: String(o.seed),
      missed: num('missed', 0, 1),
      gcMinutes: duration('gc-window'),
      durationDistribution: lognormal ? 'lognormal' : 'log-uniform',
      minDurationMinutes: runMin,
      maxDurationMinutes: runMax,
      medianDurationMinutes: runMedian,
      durationSigma: num('run-sigma', 0.01, 10),
      earlyFailFraction: num('early-fail', 0, 1),
      fullFields: !o.lean,
      truthPath: o.truth === undefined ? undefined : String(o.truth),
      onProgress: showProgress ? (done, total) => process.stderr.write(`\rsimulating: ${done}/${total} snapshots`) : undefined,
    });
    if (showProgress) process.stderr.write('\n');
    const mb = (result.bytes / 1e6).toFixed(1);
    io.stdout(`wrote ${result.files} ${o.format} snapshots (${mb} MB) to ${out}; ${result.truth.all.length} allocations, ${result.truth.observable.length} observable\n`);
  });
  return cmd;
}
