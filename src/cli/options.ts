import { clusterNameProblem } from '../accounting/clusters.js';
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
 * A setting, declared once: its flag, help and environment variable, and how a run reads it
 * (flag or environment, then config file, then its default, checked). The default is written
 * once, here, and the help text says it from the same value. Options several commands share
 * live in this module (or a neighbour); a single command's own options at the top of its file.
 */
export interface SharedOption<T> {
  /** The long flag's name, which a config file uses as its key. */
  readonly name: string;
  /** The commander option; some take a phrase that tailors the help text to the command. */
  readonly option: (help?: string) => Option;
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

/** --tz, checked: an IANA zone the system knows; `help` says what it cuts. */
export const TZ: SharedOption<string> = {
  name: 'tz',
  option: (help = 'IANA time zone of the days') => new Option('--tz <zone>', `${help} (default: ${DEFAULT_TZ})`).env('HOURMETER_TZ'),
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

/** --json: the alias of `-o json` (see outputFormat). */
export const JSON_ALIAS: SharedOption<boolean> = {
  name: 'json',
  option: () => new Option('--json', 'alias of -o json'),
  read: (s) => s.flag('json'),
};

/**
 * `-o FORMAT` of a command printing these formats (the first is the default), with `--json`
 * as an alias. When both are set, the stronger source wins (a flag beats the config file);
 * set at the same level and disagreeing, they fail explicitly.
 */
export function outputFormat<T extends string>(formats: readonly T[]): SharedOption<T> {
  return {
    name: 'output',
    option: () => {
      const output = new Option('-o, --output <format>', `output format: ${formats.join(', ')} (default: ${formats[0]})`).choices(formats);
      // A second -o would silently win over the first, as commander takes the last value.
      output.argParser((value: string, previous: string | undefined) => {
        if (!(formats as readonly string[]).includes(value)) throw new InvalidArgumentError(`Allowed choices are ${formats.join(', ')}.`);
        if (previous !== undefined) throw new UsageError(`use just one of -o ${previous} and -o ${value}`);
        return value;
      });
      return output;
    },
    read: (s) => {
      const o = s.string('output');
      const json = s.get(JSON_ALIAS);
      if (json && o !== undefined && o !== 'json') {
        const [ro, rj] = [s.strength('output'), s.strength('json')];
        if (ro === rj) throw new UsageError(`use just one of -o ${o} and --json`);
        if (rj > ro) return 'json' as T;
        return s.choice('output', formats, formats[0]!);
      }
      if (json) return 'json' as T;
      return s.choice('output', formats, formats[0]!);
    },
  };
}

/** `-o` of the given formats (see outputFormat) and its alias `--json`. */
export function addOutputOptions(cmd: Command, output: SharedOption<string>): Command {
  return cmd.addOption(output.option()).addOption(JSON_ALIAS.option());
}

export function addReadOptions(cmd: Command): Command {
  return cmd.addOption(STRICT.option());
}

/** --max-gap in microseconds, or undefined for the default (3x the median interval). */
export const MAX_GAP: SharedOption<number | undefined> = {
  name: 'max-gap',
  option: () => new Option('--max-gap <duration>', 'a gap between snapshots longer than this leaves the period uncovered, e.g. 30m, 18h (default: 3x the median interval)'),
  read: (s) => {
    const text = s.string('max-gap');
    if (text === undefined) return undefined;
    const us = parseDuration(text);
    if (us === null) throw new UsageError(`${s.source('max-gap')} ${JSON.stringify(text)} is not a duration: use e.g. 30m, 18h or 2d`);
    return us;
  },
};

export const REQUIRE_COVERAGE: SharedOption<boolean> = {
  name: 'require-coverage',
  option: () => new Option('--require-coverage', 'exit 1 when part of the period has no snapshot (for cron), after printing or writing the report'),
  read: (s) => s.flag('require-coverage'),
};

/** --max-gap: the gap between snapshots past which a report's period is uncovered. */
export function addMaxGapOption(cmd: Command): Command {
  return cmd.addOption(MAX_GAP.option());
}

/** --require-coverage alone, for `plot`, which reads what `summarize` found instead of snapshots. */
export function addRequireCoverageOption(cmd: Command): Command {
  return cmd.addOption(REQUIRE_COVERAGE.option());
}

/** --max-gap and --require-coverage, for reports that say what their snapshots cover. */
export function addCoverageOptions(cmd: Command): Command {
  return addRequireCoverageOption(addMaxGapOption(cmd));
}

/**
 * Tells of an uncovered stretch (see coverageWarning), after the report was printed or
 * written: under --require-coverage as the error that fails the run (exit 1), else as a
 * warning on stderr, unless the report already showed it.
 */
export function reportCoverage(s: Settings, io: CliIO, line: string | null, opts: { printed?: boolean } = {}): void {
  if (line === null) return;
  if (s.get(REQUIRE_COVERAGE)) throw new CheckFailed(`--require-coverage: ${line}`);
  if (!opts.printed) io.warn(line);
}

const DEFAULT_USERDB = 'userdb';

/** --userdb: the user database folder; `help` says what the command reads there. */
export const USERDB: SharedOption<string> = {
  name: 'userdb',
  option: (help = 'user database folder') => new Option('--userdb <dir>', `${help} (default: ./${DEFAULT_USERDB})`),
  read: (s) => s.string('userdb', DEFAULT_USERDB),
};

/** --namespace, repeatable or a comma list; empty for every namespace. */
export const NAMESPACE: SharedOption<string[]> = {
  name: 'namespace',
  option: (help = 'only this namespace (repeatable)') => new Option('--namespace <name>', help).argParser(collect),
  read: (s) => s.list('namespace'),
};

/** --cluster as a report's filter, repeatable or a comma list; empty for every cluster (docs/accounting.md#clusters). */
export const CLUSTER_FILTER: SharedOption<string[]> = {
  name: 'cluster',
  option: (help = 'only this cluster (repeatable; "(unnamed)" for captures without a cluster name)') => new Option('--cluster <name>', help).argParser(collect),
  read: (s) => s.list('cluster'),
};

/**
 * --cluster of the commands that capture: the name every capture carries (docs/accounting.md#clusters).
 * Unset: the source's own name for itself (see clusterNameFrom). An empty name is the unnamed
 * cluster, to carry on a folder of AI4OS legacy files without a seam.
 */
export const CAPTURE_CLUSTER: SharedOption<string | undefined> = {
  name: 'cluster',
  option: () =>
    new Option(
      '--cluster <name>',
      'name of the cluster captured; its snapshots go in a sub-folder of that name (default: Nomad region@host:port, or the kubeconfig context; "" for the unnamed cluster)',
    ),
  read: (s) => {
    const name = s.string('cluster');
    if (name === undefined || name === '') return name;
    const problem = clusterNameProblem(name);
    if (problem !== null) throw new UsageError(`${s.source('cluster')} ${JSON.stringify(name)}: ${problem}`);
    return name;
  },
};

/**
 * The cluster a capture names (`derived`: the source's own name, used when --cluster is not
 * given), and the sub-folder its snapshots go in: a cluster named with --cluster gets its own,
 * so that one folder holds several clusters apart; '' is the top of the folder.
 */
export function captureCluster(s: Settings, derived: string): { cluster: string; folder: string } {
  const given = s.get(CAPTURE_CLUSTER);
  return given === undefined ? { cluster: derived, folder: '' } : { cluster: given, folder: given };
}

/** A capture's source, naming its cluster unless it is the unnamed one. */
export function sourceInCluster<T extends object>(source: T, cluster: string): T & { cluster?: string } {
  return cluster === '' ? source : { ...source, cluster };
}

export const EXCLUDE_NAMESPACE: SharedOption<string[]> = {
  name: 'exclude-namespace',
  option: () => new Option('--exclude-namespace <name>', 'leave this namespace out (repeatable)').argParser(collect),
  read: (s) => s.list('exclude-namespace'),
};

export const USER: SharedOption<string[]> = {
  name: 'user',
  option: () => new Option('--user <id>', 'only this user (repeatable)').argParser(collect),
  read: (s) => s.list('user'),
};

export const GROUP: SharedOption<string[]> = {
  name: 'group',
  option: () => new Option('--group <name>', 'only this group (repeatable)').argParser(collect),
  read: (s) => s.list('group'),
};

/** --quiet; `help` says what it leaves out. */
export const QUIET: SharedOption<boolean> = {
  name: 'quiet',
  option: (help = 'do not list the files written') => new Option('--quiet', help),
  read: (s) => s.flag('quiet'),
};

/**
 * --retries: attempts per request to a cluster's API server; undefined for the HTTP client's
 * default (sources/http.ts, loaded only by the commands that connect, hence not imported here).
 */
export const RETRIES: SharedOption<number | undefined> = {
  name: 'retries',
  option: () => new Option('--retries <n>', 'attempts per request on connection errors, 429 and 5xx (default: 4)'),
  read: (s) => s.positiveInt('retries'),
};

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

  /** A declared setting, typed (see SharedOption). */
  get<T>(option: SharedOption<T>): T {
    return option.read(this);
  }

  /** Whether a declared setting was given at all (flag, environment or config file). */
  given(option: SharedOption<unknown>): boolean {
    return this.has(option.name);
  }

  /** Where a declared setting came from, as messages name it: `--flag`, environment, or a config file's key. */
  sourceOf(option: SharedOption<unknown>): string {
    return this.source(option.name);
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
  positiveInt(flag: string, fallback: number): number;
  positiveInt(flag: string): number | undefined;
  positiveInt(flag: string, fallback?: number): number | undefined {
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
  strength(flag: string): number {
    const attr = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const src = this.cmd.getOptionValueSource(attr);
    if (this.cmd.opts()[attr] !== undefined && src !== 'default') return src === 'env' ? 2 : 3;
    return flag in this.config ? 1 : 0;
  }
}

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `--now`: a fixed clock for tests and simulations (reports that default to "this month"),
 * in ms; undefined for the clock. `help` is the whole help text (see addNowOption).
 */
export const NOW: SharedOption<number | undefined> = {
  name: 'now',
  option: (help = 'testing: take this instant as now instead of the clock (RFC 3339)') => new Option('--now <instant>', help).env('HOURMETER_NOW'),
  read: (s) => {
    const text = s.string('now');
    if (text === undefined) return undefined;
    const ms = Date.parse(text);
    if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}T/.test(text)) throw new UsageError(`${s.source('now')} ${JSON.stringify(text)} is not an RFC 3339 instant such as 2024-09-01T06:00:00Z`);
    return ms;
  },
};

export function addNowOption(cmd: Command, purpose: string): Command {
  return cmd.addOption(NOW.option(`testing: ${purpose} instead of the clock (RFC 3339)`));
}

/** The current time in ms: `--now` if given, else the clock. Read once, at the edge. */
export function nowFrom(s: Settings): number {
  return s.get(NOW) ?? Date.now();
}

const SOURCES = ['nomad', 'kubernetes'] as const;

/** --source of the commands that talk to a cluster (snapshot, watch). */
export const SOURCE: SharedOption<(typeof SOURCES)[number]> = {
  name: 'source',
  option: () => new Option('--source <kind>', `cluster kind: ${SOURCES.join(' or ')} (default: ${SOURCES[0]})`),
  read: (s) => s.choice('source', SOURCES, SOURCES[0]),
};
