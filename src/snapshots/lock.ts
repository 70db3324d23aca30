import { closeSync, openSync, readFileSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DataError } from '../util/errors.js';
import { isStorageFailure, makeFolder } from '../util/folders.js';

/**
 * A lock file so that two overlapping cron runs, or two watchers, cannot interleave. It holds
 * the owner's pid and host, and is a lease: the owner touches it every LOCK_REFRESH_MS while
 * it holds it. A lock is stale, and taken over, when its process is gone on this host
 * (killed with -9), or when it has not been touched for LOCK_LEASE_MS, whatever its host:
 * a pod replaced after its node was lost has another host name, and a container restarted
 * in its pod runs as the same pid 1 as the one killed. A second run waits a bounded time,
 * then gives up with a message.
 */

/** How often a held lock is touched. */
export const LOCK_REFRESH_MS = 10_000;
/** A lock untouched for this long has lost its owner. */
export const LOCK_LEASE_MS = 60_000;

/** Locks this process holds: a lock naming our pid that is not among them was left by a process before us. */
const held = new Set<string>();

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

/** Whether the lock file has not been touched for a lease. */
function lapsed(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > LOCK_LEASE_MS;
  } catch {
    return false;
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
      held.add(path);
      // unref: a lock held must not keep a finished process alive.
      const refresh = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(path, now, now);
        } catch {
          /* released, or the folder went away: the lease lapses */
        }
      }, LOCK_REFRESH_MS).unref();
      return () => {
        clearInterval(refresh);
        held.delete(path);
        try {
          unlinkSync(path);
        } catch {
          /* already released */
        }
      };
    }
    const owner = readOwner(path);
    // A lock from this host whose process is gone, or that names this process without being
    // held by it, is stale; so is one whose lease lapsed. A lock that cannot be read is being
    // written right now, or is garbage from a crash: give it a moment, then take it.
    const here = owner !== null && owner.host === hostname();
    const ownerGone = here && (!alive(owner.pid) || (owner.pid === process.pid && !held.has(path)));
    if (ownerGone || lapsed(path)) {
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
      throw new LockBusy(`${holder} (pid ${owner.pid} on ${owner.host} since ${owner.since}); waited ${Math.round(waitMs / 1000)} s for ${path}. The lock is taken over once its owner stops renewing it for ${Math.round(LOCK_LEASE_MS / 1000)} s; if no such process exists, delete the lock file`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
