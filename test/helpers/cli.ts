import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, expect } from 'vitest';

/** Runs the built CLI as a process, in a temporary folder, with a pinned environment. */

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/hourmeter.js');
export const FIXTURES = join(ROOT, 'test/fixtures');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(args: string[], opts: { cwd: string; env?: Record<string, string> }): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: opts.cwd, TZ: 'UTC', COLUMNS: '200', NO_COLOR: '1', LANG: 'C.UTF-8', ...(opts.env ?? {}) },
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like run(), without blocking: needed when the test process itself serves the CLI's requests. */
export function runAsync(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? '', HOME: opts.cwd, TZ: 'UTC', COLUMNS: '200', NO_COLOR: '1', LANG: 'C.UTF-8', ...(opts.env ?? {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * Runs `task` on the items in order, at most `width` at once; `lane` (0 .. width-1) is never
 * given to two tasks at the same time. After a failure no new task starts; rejects with it.
 */
export async function inLanes<T>(items: readonly T[], width: number, task: (item: T, lane: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (n: number): Promise<void> => {
    while (!failed && next < items.length) {
      try {
        await task(items[next++]!, n);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, (_, n) => lane(n)));
}

const made: string[] = [];
afterEach(() => {
  while (made.length) rmSync(made.pop()!, { recursive: true, force: true });
});

/** A fresh temporary folder, removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hourmeter-test-'));
  made.push(dir);
  return dir;
}

/**
 * The coverage line of a report on the AI4OS fixture from 2024-09-03 to 2024-09-10: the
 * fixture has no snapshot on 2024-09-06.
 */
export const FIXTURE_GAP = 'no snapshot between 2024-09-05T18:00:30Z and 2024-09-07T00:00:48Z (30.01 h): 1.25 of 8 days are unknown, not zero';

/** A temp folder with the AI4OS fixture history copied to ./snapshots. */
export function withAi4osFixture(): string {
  const dir = tempDir();
  cpSync(join(FIXTURES, 'ai4os/snapshots'), join(dir, 'snapshots'), { recursive: true });
  return dir;
}

/**
 * Compares output with a golden file named after the command line. Set UPDATE_GOLDEN=1 to
 * (re)write goldens; review the diff before committing.
 */
export function expectGolden(name: string, actual: string): void {
  const file = join(ROOT, 'test/golden', `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI && !existsSync(file)) throw new Error(`missing golden file ${file}`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
  }
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

const servers: ChildProcess[] = [];
afterEach(() => {
  for (const c of servers.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/**
 * Starts `hourmeter serve --port 0 ...args` in `cwd` and resolves with its address once it
 * prints it; the process is killed after the test.
 */
export function startServe(cwd: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, TZ: 'UTC' } });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (http:\/\/\S+)\n/.exec(out);
      if (m) resolve({ url: m[1]!, child });
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 30_000);
  });
}
