import { describe, expect, it } from 'vitest';
import { storageFailure } from '../../src/cli/main.js';
import { hasUserInfo, MAX_RETRY_AFTER_MS, PageGuard, retryAfterMs } from '../../src/sources/http.js';

/** The pure parts of the capture's HTTP layer: Retry-After, page guards, credentials in URLs. */

describe('retryAfterMs', () => {
  const now = Date.parse('2025-03-12T10:00:00Z');
  it('reads seconds and HTTP dates, never waits less than zero, and caps the wait', () => {
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Wed, 12 Mar 2025 10:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Wed, 12 Mar 2025 09:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs('3600', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(MAX_RETRY_AFTER_MS).toBe(30_000);
  });
  it('ignores a missing or unreadable value', () => {
    expect(retryAfterMs(undefined, now)).toBeNull();
    expect(retryAfterMs('', now)).toBeNull();
    expect(retryAfterMs('soon', now)).toBeNull();
    expect(retryAfterMs('-5', now)).toBeNull();
  });
});

describe('PageGuard', () => {
  it('lets a listing with fresh tokens and fresh pages run to its last page', () => {
    const g = new PageGuard('/v1/jobs');
    g.check(['a', 'b'], 't1');
    g.check(['c', 'd'], 't2');
    expect(() => g.check(['e'], undefined)).not.toThrow();
  });
  it('stops a listing whose next-page token comes back', () => {
    const g = new PageGuard('/v1/jobs');
    g.check(['a'], 't1');
    g.check(['b'], 't2');
    expect(() => g.check(['c'], 't1')).toThrow('GET /v1/jobs: the server handed out a next-page token it had handed out before (page 3); the listing would never end, so it was stopped');
  });
  it('stops a listing whose page repeats the one before, even under a new token', () => {
    const g = new PageGuard('/api/v1/pods');
    g.check(['a', 'b'], 't1');
    expect(() => g.check(['a', 'b'], 't2')).toThrow('GET /api/v1/pods: the server sent the same page twice in a row (page 2)');
  });
});

describe('hasUserInfo', () => {
  it('finds a user name or password before the host, and only there', () => {
    expect(hasUserInfo('http://alice:pw@nomad:4646')).toBe(true);
    expect(hasUserInfo('https://alice@nomad')).toBe(true);
    expect(hasUserInfo('http://nomad:4646')).toBe(false);
    expect(hasUserInfo('https://nomad/path?x=a@b')).toBe(false);
  });
});

describe('storageFailure', () => {
  it('says plainly that a disk is full or read-only, naming the path', () => {
    const fsError = (code: string) => Object.assign(new Error(`${code}: oops`), { code, path: '/srv/snapshots/x.json' });
    expect(storageFailure(fsError('ENOSPC'))).toBe('cannot write /srv/snapshots/x.json: the disk is full (ENOSPC); free space there and run again');
    expect(storageFailure(fsError('EROFS'))).toBe('cannot write /srv/snapshots/x.json: the file system is read-only (EROFS); mount it read-write, or point hourmeter at a writable folder');
    expect(storageFailure(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))).toBe(
      'cannot write the index: the disk under it is full (SQLITE_FULL); free space there, or put the index elsewhere with --db',
    );
    expect(storageFailure(new Error('other'))).toBeNull();
  });
});
