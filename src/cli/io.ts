import { printable } from '../util/printable.js';

/** The process edges a command may touch, passed in so commands stay testable. */
export interface CliIO {
  stdout: (text: string) => void;
  /** One warning line, printed to stderr unless --quiet. */
  warn: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** A diagnostic line for --debug (where the time went), on stderr. */
  debug: (line: string) => void;
}

/** Warnings and errors name files, and a file name may hold control characters: escaped. */
export const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  warn: (line) => process.stderr.write(`hourmeter: warning: ${printable(line)}\n`),
  env: process.env,
  debug: (line) => process.stderr.write(`hourmeter: debug: ${printable(line)}\n`),
};
