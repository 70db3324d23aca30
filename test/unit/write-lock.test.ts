import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock, LockBusy } from '../../src/snapshots/lock.js';
import { replaceFile, writeNewFile } from '../../src/snapshots/write.js';
import { DataError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/cli.js';

describe('writeNewFile', () => {
  it('writes atomically, never overwrites, and leaves no temporary file', () => {
    const dir = tempDir();
    const path = join(dir, '2024-09-01T00:00:00Z.json');
    expect(writeNewFile(path, '{"a":1}')).toBe(true);
    expect(writeNewFile(path, '{"a":2}')).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}');
    expect(readdirSync(dir)).toEqual(['2024-09-01T00:00:00Z.json']);
  });
  it('gzips on request', () => {
    const path = join(tempDir(), 'x.json.gz');
    writeNewFile(path, '{"b":2}', { gzip: true });
    expect(gunzipSync(readFileSync(path)).toString()).toBe('{"b":2}');
  });
  it('replaceFile swaps content in one step', () => {
    const path = join(tempDir(), 'users.json');
    replaceFile(path, 'one');
    replaceFile(path, 'two');
    expect(readFileSync(path, 'utf8')).toBe('two');
  });
});

/** A real small file system where this machine allows mounting one (CI runs as root). */
const mounted: string[] = [];
afterEach(() => {
  while (mounted.length) {
    try {
      execFileSync('umount', [mounted.pop()!]);
    } catch {
      /* already unmounted */
    }
  }
});

function tinyFs(): string | null {
  const dir = join(tempDir(), 'fs');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounted.push(dir);
  return dir;
}

describe('write failures leave earlier files intact', () => {
  it('a full disk is a DataError naming the file, with no partial file left', () => {
    const dir = tinyFs();
    if (!dir) throw new Error('this test needs to mount a tmpfs (run as root, as CI does)');
    const first = join(dir, '2024-09-01T00:00:00Z.json');
    writeNewFile(first, '{"earlier":true}');
    const big = 'x'.repeat(200_000);
    expect(() => writeNewFile(join(dir, '2024-09-01T00:10:00Z.json'), big)).toThrow(DataError);
    expect(() => writeNewFile(join(dir, '2024-09-01T00:10:00Z.json'), big)).toThrow(/2024-09-01T00:10:00Z\.json: the disk is full \(ENOSPC\); earlier files are untouched/);
    expect(readdirSync(dir)).toEqual(['2024-09-01T00:00:00Z.json']);
    expect(readFileSync(first, 'utf8')).toBe('{"earlier":true}');
  });
  it('a read-only folder is a DataError too', () => {
    const dir = tinyFs();
    if (!dir) throw new Error('this test needs to mount a tmpfs (run as root, as CI does)');
    writeNewFile(join(dir, 'a.json'), '{}');
    execFileSync('mount', ['-o', 'remount,ro', dir]);
    expect(() => writeNewFile(join(dir, 'b.json'), '{}')).toThrow(/b\.json: the folder is not writable \(EROFS\)/);
    expect(readdirSync(dir)).toEqual(['a.json']);
  });
});

describe('the snapshot lock', () => {
  it('lets one holder in at a time; the second waits a bounded time, then gives up', async () => {
    const path = join(tempDir(), '.hourmeter', 'snapshot.lock');
    const release = await acquireLock(path, 1000);
    await expect(acquireLock(path, 300)).rejects.toThrow(LockBusy);
    await expect(acquireLock(path, 300)).rejects.toThrow(new RegExp(`another snapshot is running \\(pid ${process.pid} `));
    release();
    const again = await acquireLock(path, 300);
    again();
    expect(existsSync(path)).toBe(false);
  });
  it('a waiting run gets the lock as soon as it is released', async () => {
    const path = join(tempDir(), 'snapshot.lock');
    const release = await acquireLock(path, 1000);
    setTimeout(release, 200);
    const second = await acquireLock(path, 5000);
    second();
  });
  it('recovers a lock left by a process killed with -9', async () => {
    const path = join(tempDir(), 'snapshot.lock');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => child.once('spawn', r));
    writeFileSync(path, JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), since: '2024-09-01T00:00:00Z' }));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const release = await acquireLock(path, 200);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    release();
  });
});
