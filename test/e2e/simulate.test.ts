import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

const MIN = 60_000_000;
const BASE = ['simulate', '--format', 'legacy', '--days', '3', '--concurrent', '20', '--seed', '3'];

function files(dir: string): Map<string, string> {
  return new Map(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

describe('simulate run lengths', () => {
  it('the default run lengths are the explicit log-uniform ones, file for file', () => {
    const cwd = tempDir();
    const a = run([...BASE, '--out', 'a'], { cwd });
    const b = run([...BASE, '--out', 'b', '--run-lengths', 'log-uniform', '--run-max', '21d', '--early-fail', '0'], { cwd });
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(files(join(cwd, 'b'))).toEqual(files(join(cwd, 'a')));
    const c = run([...BASE, '--out', 'c', '--run-lengths', 'lognormal'], { cwd });
    expect(c.code).toBe(0);
    expect(files(join(cwd, 'c'))).not.toEqual(files(join(cwd, 'a')));
  });

  it('--early-fail 1: every job that runs fails within 1-2 minutes', () => {
    const cwd = tempDir();
    // Runs of a minute or two arrive very often to keep 5 allocations busy: one short day.
    const args = ['simulate', '--format', 'legacy', '--days', '1', '--concurrent', '5', '--run-max', '1h', '--seed', '3'];
    const r = run([...args, '--out', 's', '--run-lengths', 'lognormal', '--early-fail', '1', '--truth', 'truth.json'], { cwd });
    expect(r.code).toBe(0);
    const truth = JSON.parse(readFileSync(join(cwd, 'truth.json'), 'utf8')) as { lifetimes: { startUs: number; endUs: number }[] };
    expect(truth.lifetimes.length).toBeGreaterThan(100);
    expect(truth.lifetimes.every((l) => l.endUs - l.startUs <= 2 * MIN)).toBe(true);
  });

  it('names the flag when a value is wrong', () => {
    const cwd = tempDir();
    expect(run([...BASE, '--out', 'x', '--run-lengths', 'normal'], { cwd }).stderr).toMatch(/--run-lengths.*'normal'.*log-uniform, lognormal/);
    expect(run([...BASE, '--out', 'x', '--run-median', 'soon'], { cwd }).stderr).toMatch(/--run-median "soon" is not a duration/);
    expect(run([...BASE, '--out', 'x', '--early-fail', '2'], { cwd }).stderr).toMatch(/--early-fail "2" must be a number from 0 to 1/);
    expect(run([...BASE, '--out', 'x', '--run-max', '5m'], { cwd }).stderr).toMatch(/--run-max 5m must be at least 10m/);
  });
});
