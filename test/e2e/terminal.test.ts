import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { hubSnapshot } from '../helpers/monthly-folder.js';

/** What an operator's terminal looks like after hourmeter, on a real pseudo-terminal. */

// `script` (util-linux, in Debian's essential bsdutils) runs a command on a pseudo-terminal.
const hasScript = spawnSync('script', ['--version']).status === 0;
const hasTaskset = spawnSync('taskset', ['--version']).status === 0;

/** 150 snapshots of 300 allocations each, every one new: an ingest long enough to draw the bar. */
function longIngestFolder(): { cwd: string; dir: string } {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(dir);
  for (let i = 0; i < 150; i++) {
    const at = new Date(Date.UTC(2024, 0, 1, i)).toISOString().replace('.000Z', 'Z');
    const allocations = Array.from({ length: 300 }, (_, k) => ({
      id: `a${i}-${k}`, namespace: 'hub', job_id: `job-${k}`, job_name: `job-${k}`, user: `u${k % 7}`, group: 'g', component: 'jupyter',
      node: 'n1', status: 'running', created: null, start: at, end: null, modified: null,
      resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
    }));
    writeFileSync(join(dir, `${at}.json`), JSON.stringify(hubSnapshot(at, allocations)));
  }
  return { cwd, dir };
}

/**
 * Runs `command` on a pseudo-terminal, types Ctrl-C once `waitFor` has appeared in what it
 * wrote, and resolves with the exit code and everything written. Killed after 60 s whatever happens.
 */
function interruptOnTerminal(command: string, cwd: string, waitFor: string): Promise<{ code: number | null; typed: string; interrupted: boolean }> {
  return new Promise((resolve, reject) => {
    // -e: exit with the command's code (128 + n for a signal); -f: flush as written.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, TZ: 'UTC', TERM: 'xterm', LANG: 'C.UTF-8' } });
    let typed = '';
    let interrupted = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (b: Buffer) => {
      typed += b.toString('utf8');
      if (!interrupted && typed.includes(waitFor)) {
        interrupted = true;
        // The terminal turns ^C into SIGINT for the foreground process, as at a keyboard.
        child.stdin.write('\x03');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, typed, interrupted });
    });
  });
}

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const WRAP_OFF = '\x1b[?7l';
const WRAP_ON = '\x1b[?7h';

describe.skipIf(!hasScript)('Ctrl-C during a progress bar', () => {
  const cases: [string, string][] = [['reader threads', '']];
  // One CPU: the files are read in-process, and Ctrl-C must still be heard mid-ingest.
  if (hasTaskset) cases.push(['one CPU (in-process reads)', 'taskset -c 0 ']);
  for (const [name, prefix] of cases) {
    it(`restores the cursor and line wrap and exits 130, losing nothing (${name})`, async () => {
      const { cwd, dir } = longIngestFolder();
      const r = await interruptOnTerminal(`${prefix}${process.execPath} ${BIN} index update --snapshots ${dir}`, cwd, 'ingesting snapshots [');
      expect(r.interrupted).toBe(true);
      expect(r.typed).not.toMatch(/read \d+ snapshot files/);
      expect(r.code).toBe(130);
      // The terminal is left as found: the cursor shown and line wrap on after the bar hid and
      // turned them off, and nothing after them but moving to and clearing the bar's line.
      expect(r.typed.indexOf(HIDE_CURSOR)).toBeGreaterThanOrEqual(0);
      expect(r.typed.lastIndexOf(SHOW_CURSOR)).toBeGreaterThan(r.typed.lastIndexOf(HIDE_CURSOR));
      expect(r.typed.lastIndexOf(WRAP_ON)).toBeGreaterThan(r.typed.lastIndexOf(WRAP_OFF));
      expect(r.typed).toMatch(/\x1b\[\?25h\x1b\[\?7h(\x1b(7|8|\[\d*[GK]))*$/);
      // The ingest is one transaction: none of it was kept, and the next run reads every file.
      const again = run(['index', 'update', '--snapshots', dir], { cwd });
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/^read 150 snapshot files, /);
    });
  }
});
