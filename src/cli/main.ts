import { Command, CommanderError } from 'commander';
import { HourmeterError } from '../util/errors.js';
import { statsCommand } from './commands/stats.js';
import { summarizeCommand } from './commands/summarize.js';
import { mergeUsersCommand } from './commands/merge-users.js';
import { plotCommand } from './commands/plot.js';
import { indexCommand } from './commands/index-cmd.js';
import { k8sCommand } from './commands/k8s.js';
import { simulateCommand } from './commands/simulate.js';
import { snapshotCommand } from './commands/snapshot.js';
import { userdbCommand } from './commands/userdb.js';
import { reportCommand } from './commands/report.js';
import { serveCommand } from './commands/serve.js';
import { topCommand } from './commands/top.js';
import { checkCommand } from './commands/check.js';
import { quotaCommand } from './commands/quota.js';
import { processIO, type CliIO } from './io.js';
import { VERSION } from '../version.js';

/**
 * The program, and the only place that turns errors into exit codes (design.md):
 * 0 ok, 1 a check failed, 2 usage error, 3 data/runtime/I-O failure.
 */

export function buildProgram(io: CliIO = processIO): Command {
  const program = new Command('hourmeter')
    .description('Exact resource-hours accounting for Nomad and Kubernetes clusters, from periodic snapshots.')
    .version(VERSION)
    .option('--debug', 'print stack traces of unexpected errors, and where a report spent its time')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => io.stdout(s) });
  program.addCommand(snapshotCommand(program, io));
  program.addCommand(statsCommand(program, io));
  program.addCommand(summarizeCommand(program, io));
  program.addCommand(mergeUsersCommand(program, io));
  program.addCommand(plotCommand(program, io));
  program.addCommand(indexCommand(program, io));
  program.addCommand(userdbCommand(program, io));
  program.addCommand(reportCommand(program, io));
  program.addCommand(serveCommand(program, io));
  program.addCommand(topCommand(program, io));
  program.addCommand(checkCommand(program, io));
  program.addCommand(k8sCommand(program, io));
  program.addCommand(quotaCommand(program, io));
  program.addCommand(simulateCommand(program, io));
  const configure = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => io.stdout(s) });
    c.commands.forEach(configure);
  };
  program.commands.forEach(configure);
  return program;
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const program = buildProgram(io);
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
  if (e instanceof HourmeterError) {
    process.stderr.write(`hourmeter: ${e.message}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  process.stderr.write(`hourmeter: unexpected error: ${err?.message ?? String(e)}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug && err?.stack) process.stderr.write(err.stack + '\n');
  return 3;
}
