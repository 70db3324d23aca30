/** The process edges a command may touch, passed in so commands stay testable. */
export interface CliIO {
  stdout: (text: string) => void;
  /** One warning line, printed to stderr unless --quiet. */
  warn: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

export const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  warn: (line) => process.stderr.write(`hourmeter: warning: ${line}\n`),
  env: process.env,
};
