import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { ROOT, run, tempDir } from '../helpers/cli.js';

const commands = (await buildProgram()).commands.map((c) => c.name());
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('every command is documented', () => {
  it('has commands', () => expect(commands).toEqual(expect.arrayContaining(['stats', 'simulate'])));
  for (const name of commands) {
    it(`${name} has help text with an example and a README section`, () => {
      const r = run([name, '--help'], { cwd: tempDir() });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: hourmeter ${name} `));
      expect(r.stdout).toContain('Examples:');
      expect(readme).toContain(`### hourmeter ${name}`);
    });
  }
  it('the top-level help lists every command with a summary', () => {
    const r = run(['--help'], { cwd: tempDir() });
    expect(r.code).toBe(0);
    for (const name of commands) expect(r.stdout).toMatch(new RegExp(`\\n  ${name} .*\\S`));
  });
  it('an unknown command or option is a usage error (exit 2)', () => {
    expect(run(['frobnicate'], { cwd: tempDir() }).code).toBe(2);
    const r = run(['stats', '--frobnicate'], { cwd: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
  });
});
