import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { ROOT, run, tempDir } from '../helpers/cli.js';

const program = await buildProgram();
const commands = program.commands.map((c) => c.name());
/** Every command line that has help: the program, each command and each subcommand. */
const commandPaths: string[][] = [[]];
const walk = (c: Command, path: string[]): void => {
  for (const sub of c.commands) {
    commandPaths.push([...path, sub.name()]);
    walk(sub, [...path, sub.name()]);
  }
};
walk(program, []);
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
  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) expect(run([flag], { cwd: tempDir() })).toMatchObject({ code: 0, stdout: `${version}\n` });
  });
  it('an unknown command or option is a usage error (exit 2)', () => {
    expect(run(['frobnicate'], { cwd: tempDir() }).code).toBe(2);
    const r = run(['stats', '--frobnicate'], { cwd: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--frobnicate'/);
  });
});

/** The description paragraphs of a help text: between the usage line and the first heading. */
function descriptionOf(help: string): string[] {
  const lines = help.split('\n');
  const end = lines.findIndex((l, i) => i > 0 && /^(Arguments|Options|Commands):$/.test(l));
  return lines.slice(2, end === -1 ? undefined : end).filter((l, i, all) => l !== '' || i < all.length - 1);
}

describe('help paragraphs wrap to the width', () => {
  for (const path of commandPaths) {
    for (const columns of [60, 200]) {
      it(`hourmeter ${[...path, '--help'].join(' ')} at COLUMNS=${columns}: no line too long, no line broken early`, () => {
        const r = run([...path, '--help'], { cwd: tempDir(), env: { COLUMNS: String(columns) } });
        expect(r.code).toBe(0);
        const description = descriptionOf(r.stdout);
        expect(description.length).toBeGreaterThan(0);
        description.forEach((line, i) => {
          expect(line.length, `line too long: ${JSON.stringify(line)}`).toBeLessThanOrEqual(columns);
          // A line continued on the next (prose by prose, a list item by a line indented
          // deeper) ends only where the next word would not have fitted: a hard break
          // mid-sentence ends it earlier.
          const next = description[i + 1];
          if (line === '' || !next) return;
          const indent = (l: string) => /^ */.exec(l)![0].length;
          const continued = indent(line) === 0 ? next !== '' && indent(next) === 0 : indent(next) > indent(line);
          if (!continued) return;
          const nextWord = next.trimStart().split(' ')[0]!;
          expect(line.length + 1 + nextWord.length, `broken early: ${JSON.stringify(line)} / ${JSON.stringify(next)}`).toBeGreaterThan(columns);
        });
      });
    }
  }
});
