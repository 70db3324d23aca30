import { Command, CommanderError, type OutputConfiguration } from 'commander';
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG } from './config.js';
import { exitCodeOf } from '../util/errors.js';
import { printable } from '../util/printable.js';
import { processIO, type CliIO } from './io.js';
import { VERSION } from '../version.js';

/**
 * The program, and the only place that turns errors into exit codes (README "Exit codes"):
 * 0 ok, 1 a check failed, 2 usage error, 3 data/runtime/I-O failure.
 */

/** Makes a command: its options, help and action. */
type CommandMaker = (program: Command, io: CliIO) => Command;

/**
 * Every command, in the order help lists them. Each module is imported only when needed: a
 * command line that names one loads that one (start-up then compiles a fraction of the
 * program); help, or a name that is not a command, loads them all.
 */
const COMMANDS: Record<string, () => Promise<CommandMaker>> = {
  snapshot: async () => (await import('./commands/snapshot.js')).snapshotCommand,
  watch: async () => (await import('./commands/watch.js')).watchCommand,
  stats: async () => (await import('./commands/stats.js')).statsCommand,
  summarize: async () => (await import('./commands/summarize.js')).summarizeCommand,
  'merge-users': async () => (await import('./commands/merge-users.js')).mergeUsersCommand,
  plot: async () => (await import('./commands/plot.js')).plotCommand,
  index: async () => (await import('./commands/index-cmd.js')).indexCommand,
  userdb: async () => (await import('./commands/userdb.js')).userdbCommand,
  report: async () => (await import('./commands/report.js')).reportCommand,
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  top: async () => (await import('./commands/top.js')).topCommand,
  check: async () => (await import('./commands/check.js')).checkCommand,
  k8s: async () => (await import('./commands/k8s.js')).k8sCommand,
  quota: async () => (await import('./commands/quota.js')).quotaCommand,
  jupyterhub: async () => (await import('./commands/jupyterhub.js')).jupyterhubCommand,
  simulate: async () => (await import('./commands/simulate.js')).simulateCommand,
  store: async () => (await import('./commands/store.js')).storeCommand,
};

/**
 * The command a command line names: its first word that is not an option, if a command.
 * None when a config file may be read: its keys are checked against every command's flags.
 */
function commandNamed(argv: readonly string[]): string | undefined {
  if (argv.some((a) => a.startsWith('--config')) || existsSync(DEFAULT_CONFIG)) return undefined;
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  return word !== undefined && Object.hasOwn(COMMANDS, word) ? word : undefined;
}

/** The program with every command, or only the one `argv` names. */
export async function buildProgram(io: CliIO = processIO, argv?: readonly string[]): Promise<Command> {
  const program = new Command('hourmeter')
    .description('Exact resource-hours accounting for Nomad and Kubernetes clusters, from periodic snapshots.')
    .version(VERSION)
    .option('--debug', 'print stack traces of unexpected errors, and where a report spent its time')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput(output(io))
    .configureHelp({ boxWrap: wrapHelp });
  const named = argv && commandNamed(argv);
  // `hourmeter --version` alone prints the version and needs no command at all.
  const versionOnly = argv?.length === 3 && (argv[2] === '--version' || argv[2] === '-V');
  const names = named ? [named] : versionOnly ? [] : Object.keys(COMMANDS);
  const makers = await Promise.all(names.map((n) => COMMANDS[n]!()));
  for (const make of makers) program.addCommand(make(program, io));
  const configure = (c: Command): void => {
    c.exitOverride().configureOutput(output(io)).configureHelp({ boxWrap: wrapHelp });
    c.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

/** Where help and errors go, and how wide help is. */
function output(io: CliIO): OutputConfiguration {
  // Help fills the terminal; piped (to less, or a file), it takes COLUMNS, else 80.
  const width = (stream: NodeJS.WriteStream) => () => {
    if (stream.isTTY && stream.columns > 0) return stream.columns;
    const columns = Number(io.env.COLUMNS);
    return Number.isInteger(columns) && columns > 0 ? columns : 80;
  };
  return {
    writeErr: (s) => process.stderr.write(s),
    writeOut: (s) => io.stdout(s),
    getOutHelpWidth: width(process.stdout),
    getErrHelpWidth: width(process.stderr),
  };
}

/** Below this width help is printed as written: wrapped, it would be a column of single words. */
const MIN_WRAP_WIDTH = 40;
/** A list item's text hangs under its start unless that leaves fewer columns than this. */
const MIN_HANGING_TEXT = 20;

/**
 * Wraps help text at `width` columns. Descriptions are written as one line per paragraph or
 * list item, so the terminal's width decides the breaks. A continued list item (a line that
 * starts with spaces) hangs under its text: after the term and the gap that follows it.
 */
export function wrapHelp(text: string, width: number): string {
  if (width < MIN_WRAP_WIDTH) return text;
  return text
    .split('\n')
    .map((line) => {
      const words = line.match(/\s*\S+/g);
      if (!words) return line;
      const indent = /^ */.exec(line)![0].length;
      const term = indent > 0 ? /^ +\S+(?: \S+)*? {2,}(?=\S)/.exec(line) : null;
      const hang = term && width - term[0].length >= MIN_HANGING_TEXT ? term[0].length : indent + (indent > 0 ? 4 : 0);
      const lines = [words.shift()!];
      for (const word of words) {
        if (lines[lines.length - 1]!.length + word.length <= width) lines[lines.length - 1] += word;
        else lines.push(' '.repeat(hang) + word.trimStart());
      }
      return lines.join('\n');
    })
    .join('\n');
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const program = await buildProgram(io, argv);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    return exitCodeFor(e, argv.includes('--debug'));
  }
}

/** Prints the one-line reason and picks the exit code. */
export function exitCodeFor(e: unknown, debug: boolean): number {
  if (e instanceof CommanderError) {
    // Help and version are successful exits; commander has already printed its message.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return 2;
  }
  const code = exitCodeOf(e);
  if (code !== null) {
    process.stderr.write(`hourmeter: ${printable((e as Error).message)}\n`);
    return code;
  }
  const plain = storageFailure(e);
  if (plain) {
    process.stderr.write(`hourmeter: ${plain}\n`);
    return 3;
  }
  const err = e as Error;
  process.stderr.write(`hourmeter: unexpected error: ${printable(err?.message ?? String(e))}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && err?.stack) process.stderr.write(err.stack + '\n');
  return 3;
}

/**
 * A full or read-only disk said plainly, with the path when the error has one (SQLite's
 * errors do not: they name the index).
 */
export function storageFailure(e: unknown): string | null {
  const err = e as { code?: unknown; path?: unknown };
  const where = typeof err?.path === 'string' ? err.path : null;
  switch (err?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return `cannot write ${where ?? 'a file'}: the disk is full (${err.code}); free space there and run again`;
    case 'EROFS':
      return `cannot write ${where ?? 'a file'}: the file system is read-only (EROFS); mount it read-write, or point hourmeter at a writable folder`;
    case 'SQLITE_FULL':
      return 'cannot write the index: the disk under it is full (SQLITE_FULL); free space there, or put the index elsewhere with --db';
    case 'SQLITE_READONLY':
      return 'cannot write the index: its file or file system is read-only (SQLITE_READONLY); make it writable, or put the index elsewhere with --db';
    default:
      return null;
  }
}
