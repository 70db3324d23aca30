import { Command, InvalidArgumentError, Option } from 'commander';
import { CheckFailed, UsageError } from '../util/errors.js';
import { checkTimeZone } from '../accounting/period.js';
import { parseDuration } from '../util/time.js';
import type { CliIO } from './io.js';
import { loadConfig, type ConfigValues } from './config.js';

/**
 * Options shared by every command that reads data, declared once so that `--snapshots`,
 * `--from/--to`, `--tz`, `-o` and `--strict` mean the same thing everywhere.
 * No commander defaults: a value left unset falls back to the config file, then to the
 * default given in `resolve()`, which keeps "flag > env > config > default" in one place.
 */

/**
 * A setting several commands share, declared once: its flag, help and environment variable,
 * and how a run reads it (flag or environment, then config file, then its default, checked).
 * The default is written once, here, and the help text says it from the same value.
 */
export interface SharedOption<T> {
  /** The long flag's name, which a config file uses as its key. */
  readonly name: string;
  readonly option: () => Option;
  readonly read: (s: Settings) => T;
}

const DEFAULT_SNAPSHOTS = 'snapshots';
const DEFAULT_TZ = 'UTC';

export const SNAPSHOTS: SharedOption<string> = {
  name: 'snapshots',
  option: () => new Option('--snapshots <dir>', `folder of snapshot files (default: ./${DEFAULT_SNAPSHOTS})`).env('HOURMETER_SNAPSHOTS'),
  read: (s) => s.string('snapshots', DEFAULT_SNAPSHOTS),
};

/** --from: the first day, included; undefined for the first snapshot day. */
export const FROM: SharedOption<string | undefined> = {
  name: 'from',
  option: () => new Option('--from <YYYY-MM-DD>', 'first day, included (default: the first snapshot day)'),
  read: (s) => s.string('from'),
};

/** --to: the last day, included; undefined for the last snapshot day. */
export const TO: SharedOption<string | undefined> = {
  name: 'to',
  option: () => new Option('--to <YYYY-MM-DD>', 'last day, included (default: the last snapshot day)'),
  read: (s) => s.string('to'),
};

/** --tz, checked: an IANA zone the system knows. */
export const TZ: SharedOption<string> = {
  name: 'tz',
  option: () => new Option('--tz <zone>', `IANA time zone of the days (default: ${DEFAULT_TZ})`).env('HOURMETER_TZ'),
  read: (s) => checkTimeZone(s.string('tz', DEFAULT_TZ), s.source('tz')),
};

export const STRICT: SharedOption<boolean> = {
  name: 'strict',
  option: () => new Option('--strict', 'fail (exit 3) on a corrupt file or a record missing fields, instead of skipping it with a warning'),
  read: (s) => s.flag('strict'),
};

export function addSnapshotsOption(cmd: Command): Command {
  return cmd.addOption(SNAPSHOTS.option());
}

export function addPeriodOptions(cmd: Command): Command {
  return cmd.addOption(FROM.option()).addOption(TO.option()).addOption(TZ.option());
}

export function addOutputOptions(cmd: Command, formats: readonly string[] = ['table', 'json', 'csv']): Command {
  const output = new Option('-o, --output <format>', `output format: ${formats.join(', ')} (default: ${formats[0]})`).choices(formats);
  // A second -o would silently win over the first, as commander takes the last value.
  output.argParser((value: string, previous: string | undefined) => {
    if (!formats.includes(value)) throw new InvalidArgumentError(`Allowed choices are ${formats.join(', ')}.`);
    if (previous !== undefined) throw new UsageError(`use just one of -o ${previous} and -o ${value}`);
    return value;
  });
  return cmd
    .addOption(output)
    .addOption(new Option('--json', 'alias of -o json'));
}

export function addReadOptions(cmd: Command): Command {
  return cmd.addOption(STRICT.option());
}

/** --max-gap: the gap between snapshots past which a report's period is uncovered. */
export function addMaxGapOption(cmd: Command): Command {
  return cmd.addOption(new Option('--max-gap <duration>', 'a gap between snapshots longer than this leaves the period uncovered, e.g. 30m, 18h (default: 3x the median interval)'));
}

/** --require-coverage alone, for `plot`, which reads what `summarize` found instead of snapshots. */
export function addRequireCoverageOption(cmd: Command): Command {
  return cmd.addOption(new Option('--require-coverage', 'exit 1 when part of the period has no snapshot (for cron), after printing or writing the report'));
}

/** --max-gap and --require-coverage, for reports that say what their snapshots cover. */
export function addCoverageOptions(cmd: Command): Command {
  return addRequireCoverageOption(addMaxGapOption(cmd));
}

/** --max-gap in microseconds, or undefined for the default. */
export function maxGapOf(s: Settings): number | undefined {
  const text = s.string('max-gap');
  if (text === undefined) return undefined;
  const us = parseDuration(text);
  if (us === null) throw new UsageError(`${s.source('max-gap')} ${JSON.stringify(text)} is not a duration: use e.g. 30m, 18h or 2d`);
  return us;
}

/**
 * Tells of an uncovered stretch (see coverageWarning), after the report was printed or
 * written: under --require-coverage as the error that fails the run (exit 1), else as a
 * warning on stderr, unless the report already showed it.
 */
export function reportCoverage(s: Settings, io: CliIO, line: string | null, opts: { printed?: boolean } = {}): void {
  if (line === null) return;
  if (s.flag('require-coverage')) throw new CheckFailed(`--require-coverage: ${line}`);
  if (!opts.printed) io.warn(line);
}

export function addConfigOption(cmd: Command): Command {
  return cmd.addOption(new Option('--config <file>', 'YAML settings whose keys mirror the long flags (default: ./hourmeter.yaml if present)'));
}

/** Every long flag of every command: the keys a config file may use. */
export function knownConfigKeys(program: Command): Set<string> {
  const keys = new Set<string>();
  const walk = (c: Command) => {
    for (const o of c.options) if (o.long && o.long !== '--config') keys.add(o.long.slice(2).replace(/^no-/, ''));
    c.commands.forEach(walk);
  };
  walk(program);
  return keys;
}

/** Resolved settings for one command run: flag or env, then config file, then default. */
export class Settings {
  constructor(
    private readonly cmd: Command,
    private readonly config: ConfigValues,
    readonly configFile: string | null,
  ) {}

  static of(cmd: Command, program: Command): Settings {
    const opts = cmd.opts();
    const { file, values } = loadConfig(opts.config as string | undefined, knownConfigKeys(program));
    return new Settings(cmd, values, file);
  }

  /** The raw value for a long flag name such as "gap-policy", and where it came from. */
  private lookup(flag: string): { value: unknown; from: string } {
    const attr = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = this.cmd.opts()[attr];
    // commander gives a lone `--no-x` flag a default of true: that is "unset" here.
    if (v !== undefined && this.cmd.getOptionValueSource(attr) !== 'default') return { value: v, from: this.cmd.getOptionValueSource(attr) === 'env' ? 'environment' : `--${flag}` };
    if (flag in this.config) return { value: this.config[flag], from: `${this.configFile}: ${flag}` };
    return { value: undefined, from: `--${flag}` };
  }

  /** A shared setting, typed (see SharedOption). */
  get<T>(option: SharedOption<T>): T {
    return option.read(this);
  }

  string(flag: string, fallback: string): string;
  string(flag: string): string | undefined;
  string(flag: string, fallback?: string): string | undefined {
    const { value, from } = this.lookup(flag);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' && typeof value !== 'number') throw new UsageError(`${from}: expected a single value, got ${JSON.stringify(value)}`);
    return String(value);
  }

  /** Whether a setting was given at all (flag, environment or config file). */
  has(flag: string): boolean {
    return this.lookup(flag).value !== undefined;
  }

  source(flag: string): string {
    return this.lookup(flag).from;
  }

  flag(flag: string): boolean {
    const { value, from } = this.lookup(flag);
    if (value === undefined) return false;
    if (typeof value !== 'boolean') throw new UsageError(`${from}: expected true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  /** Repeatable or comma-separated list values. */
  list(flag: string): string[] {
    const { value } = this.lookup(flag);
    if (value === undefined || value === null) return [];
    const items = Array.isArray(value) ? value : [value];
    return items.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
  }

  /** A whole number of at least 1. */
  positiveInt(flag: string, fallback: number): number {
    const v = this.string(flag);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${this.source(flag)} ${JSON.stringify(v)} must be a whole number of at least 1`);
    return n;
  }

  choice<T extends string>(flag: string, choices: readonly T[], fallback: T): T {
    const v = this.string(flag);
    if (v === undefined) return fallback;
    if (!(choices as readonly string[]).includes(v)) {
      throw new UsageError(`${this.source(flag)} ${JSON.stringify(v)} is not one of ${choices.join(', ')}`);
    }
    return v as T;
  }

  /** How strong a setting's source is: flag, then environment, then config file. */
  private rank(flag: string): number {
    const attr = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const src = this.cmd.getOptionValueSource(attr);
    if (this.cmd.opts()[attr] !== undefined && src !== 'default') return src === 'env' ? 2 : 3;
    return flag in this.config ? 1 : 0;
  }

  /**
   * `-o FORMAT`, with `--json` as an alias. When both are set, the stronger source wins (a
   * flag beats the config file); set at the same level and disagreeing, they fail explicitly.
   */
  output<T extends string>(formats: readonly T[]): T {
    const o = this.string('output');
    const json = this.flag('json');
    if (json && o !== undefined && o !== 'json') {
      const [ro, rj] = [this.rank('output'), this.rank('json')];
      if (ro === rj) throw new UsageError(`use just one of -o ${o} and --json`);
      if (rj > ro) return 'json' as T;
      return this.choice('output', formats, formats[0]!);
    }
    if (json) return 'json' as T;
    return this.choice('output', formats, formats[0]!);
  }
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--now`: a fixed clock for tests and simulations (reports that default to "this month"). */
export function addNowOption(cmd: Command, purpose: string): Command {
  return cmd.addOption(new Option('--now <instant>', `testing: ${purpose} instead of the clock (RFC 3339)`).env('HOURMETER_NOW'));
}

/** The current time in ms: `--now` if given, else the clock. Read once, at the edge. */
export function nowFrom(s: Settings): number {
  const text = s.string('now');
  if (text === undefined) return Date.now();
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) throw new UsageError(`${s.source('now')} ${JSON.stringify(text)} is not an RFC 3339 instant such as 2024-09-01T06:00:00Z`);
  return ms;
}
