import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DataError } from '../util/errors.js';
import { isStorageFailure, makeFolder } from '../util/folders.js';

/**
 * A lock file so that two overlapping cron runs cannot interleave. It holds the owner's pid
 * and host; a lock whose process is gone (killed with -9, a crashed machine's reboot) is
 * stale and taken over. A second run waits a bounded time, then gives up with a message.
 */

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export class LockBusy extends DataError {}

/** Whether a process with this pid runs on this host (one of another user counts). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null;
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o644);
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies LockOwner));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    if (isStorageFailure(e)) throw e;
    throw new DataError(`cannot create the lock ${path}: ${(e as Error).message}`);
  }
}

/**
 * Takes the lock, waiting up to `waitMs`; returns the release function. `holder` says what
 * the owner of a busy lock is doing, for the message.
 */
export async function acquireLock(path: string, waitMs: number, holder = 'another snapshot is running'): Promise<() => void> {
  makeFolder(dirname(path));
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryCreate(path)) {
      return () => {
        try {
          unlinkSync(path);
        } catch {
          /* already released */
        }
      };
    }
    const owner = readOwner(path);
    // A lock from this host whose process is gone is stale. A lock that cannot be read is
    // being written right now, or is garbage from a crash: give it a moment, then take it.
    if (owner && owner.host === hostname() && !alive(owner.pid)) {
      try {
        unlinkSync(path);
      } catch {
        /* someone else took it over first */
      }
      continue;
    }
    if (Date.now() >= deadline) {
      if (!owner) {
        try {
          unlinkSync(path);
        } catch {
          /* gone */
        }
        continue;
      }
      throw new LockBusy(`${holder} (pid ${owner.pid} on ${owner.host} since ${owner.since}); waited ${Math.round(waitMs / 1000)} s for ${path}. If no such process exists, delete the lock file`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
