import { describe, expect, it } from 'vitest';
import { checkLatest, spoolReason } from '../../src/reports/check.js';

const HOUR = 3_600_000_000;
const T = Date.parse('2024-09-01T12:00:00Z') * 1000;
const facts = { file: '2024-09-01T12:00:00Z.json', capturedUs: T, unreadable: null, failedScopes: [], namespaces: 2, holding: 3 };
const limits = { nowUs: T + HOUR, maxAgeUs: 12 * HOUR, maxAgeText: '12h' };

describe('check and the spool', () => {
  it('passes with an empty or absent spool', () => {
    expect(spoolReason(undefined, T)).toBeNull();
    expect(spoolReason({ dir: 'spool', files: 0, oldestUs: null }, T)).toBeNull();
    expect(checkLatest({ ...facts, spool: { dir: 'spool', files: 0, oldestUs: null } }, limits)).toEqual({
      ok: true,
      line: 'ok: latest snapshot 2024-09-01T12:00:00Z is 1h 0m old (max 12h), 2 namespaces, 3 allocations holding resources',
    });
  });

  it('fails while captures wait in the spool, saying how many, since when, and what forwards them', () => {
    const spool = { dir: '/var/lib/hourmeter/spool', files: 3, oldestUs: T - 2 * HOUR - 30 * 60e6 };
    expect(checkLatest({ ...facts, spool }, limits)).toEqual({
      ok: false,
      reason:
        '3 snapshots wait in the spool /var/lib/hourmeter/spool since 2024-09-01T09:30:00Z (3h 30m): the store could not be reached; ' +
        '`hourmeter store push` forwards them once it can',
    });
    expect(spoolReason({ ...spool, files: 1 }, T)).toBe('1 snapshot waits in the spool /var/lib/hourmeter/spool since 2024-09-01T09:30:00Z (2h 30m): the store could not be reached; `hourmeter store push` forwards them once it can');
  });

  it('counts the journal lines a watcher spooled, and their files', () => {
    const spool = { dir: 'spool', files: 0, journalFiles: 2, journalLines: 1234, oldestUs: T - 45 * 60e6 };
    expect(spoolReason(spool, T)).toBe('1234 journal lines (2 files) wait in the spool spool since 2024-09-01T11:15:00Z (45m): the store could not be reached; `hourmeter store push` forwards them once it can');
    expect(spoolReason({ ...spool, files: 1, journalFiles: 1, journalLines: 1 }, T)).toBe(
      '1 snapshot and 1 journal line (1 file) wait in the spool spool since 2024-09-01T11:15:00Z (45m): the store could not be reached; `hourmeter store push` forwards them once it can',
    );
    expect(spoolReason({ ...spool, journalFiles: 1, journalLines: 1 }, T)).toBe(
      '1 journal line (1 file) waits in the spool spool since 2024-09-01T11:15:00Z (45m): the store could not be reached; `hourmeter store push` forwards them once it can',
    );
    expect(checkLatest({ ...facts, spool }, limits).ok).toBe(false);
  });
});
