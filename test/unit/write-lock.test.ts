import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { acquireLock, LOCK_LEASE_MS, LOCK_REFRESH_MS, LockBusy } from '../../src/snapshots/lock.js';
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

  it('a lock from another host is respected while its owner renews it, and taken over once the lease lapses (a replaced pod)', async () => {
    const path = join(tempDir(), 'snapshot.lock');
    writeFileSync(path, JSON.stringify({ pid: 1, host: 'hourmeter-7d9f-old', since: '2026-12-05T10:00:00Z' }));
    await expect(acquireLock(path, 300)).rejects.toThrow(/another snapshot is running \(pid 1 on hourmeter-7d9f-old since 2026-12-05T10:00:00Z\); waited 0 s for .*\. The lock is taken over once its owner stops renewing it for 60 s/);
    // Not renewed for longer than the lease: the owner is gone.
    const old = new Date(Date.now() - LOCK_LEASE_MS - 5000);
    utimesSync(path, old, old);
    const release = await acquireLock(path, 300);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    release();
  });
  it('a lock naming this very process, which it does not hold, was left by a process before it (a container restarted as pid 1)', async () => {
    const path = join(tempDir(), 'snapshot.lock');
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), since: '2026-12-05T10:00:00Z' }));
    const release = await acquireLock(path, 300);
    // Held now: a second attempt by the same process waits like anyone else.
    await expect(acquireLock(path, 200)).rejects.toThrow(LockBusy);
    release();
  });
  it('the holder renews its lock while it holds it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const path = join(tempDir(), 'snapshot.lock');
      const release = await acquireLock(path, 300);
      const old = new Date(Date.now() - 10 * LOCK_LEASE_MS);
      utimesSync(path, old, old);
      vi.advanceTimersByTime(LOCK_REFRESH_MS);
      expect(Date.now() - statSync(path).mtimeMs).toBeLessThan(LOCK_LEASE_MS);
      release();
      expect(existsSync(path)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
