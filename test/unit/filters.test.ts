import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UNATTRIBUTED } from '../../src/accounting/aggregate.js';
import { MemoryNames, TrackColumns } from '../../src/accounting/columns.js';
import { distinctValues, type FilterKey } from '../../src/accounting/known.js';
import { reachUs, type Track } from '../../src/accounting/reconstruct.js';
import { unmatchedFilterWarnings, type FilterGiven } from '../../src/cli/filters.js';
import { writeHistory } from '../../src/simulator/index.js';
import { listSnapshots } from '../../src/snapshots/files.js';
import { loadHistory } from '../../src/snapshots/full-read.js';
import { ingest } from '../../src/store/ingest.js';
import { openIndex } from '../../src/store/schema.js';
import { filesView, indexView } from '../../src/store/view.js';
import { closest, editDistance, nearEnough } from '../../src/util/closest.js';
import { tempDir } from '../helpers/cli.js';

describe('editDistance', () => {
  it.each([
    // Worked by hand: each line lists the edits.
    ['', '', 0],
    ['', 'abc', 3], // insert a, b, c
    ['abc', '', 3], // delete a, b, c
    ['ai4life', 'ai4life', 0],
    ['ai4lfe', 'ai4life', 1], // insert i after l
    ['imagin', 'imagine', 1], // insert e at the end
    ['kitten', 'sitting', 3], // k→s, e→i, insert g
    ['flaw', 'lawn', 2], // delete f, insert n
    ['ab', 'ba', 2], // a transposition is two edits: a→b, b→a
    ['ai4os', 'ai4eosc', 2], // insert e, insert c
    ['AI4LIFE', 'ai4life', 6], // case counts: A, I, L, I, F, E differ (4 is 4)
    ['zoë', 'zoe', 1], // ë is one character
    ['😀a', 'a', 1], // so is an emoji (two UTF-16 units)
  ])('%j to %j is %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('closest', () => {
  const namespaces = ['ai4eosc', 'ai4life', 'imagine'];
  it('names the nearest candidate', () => {
    expect(closest('ai4lfe', namespaces)).toBe('ai4life'); // 1 from ai4life, 3 from ai4eosc
    expect(closest('imagen', namespaces)).toBe('imagine'); // 2: e→i, insert e
    expect(closest('ai4os', namespaces)).toBe('ai4eosc'); // 2; ai4life is 4 away
  });
  it('ignores case, then prefers the candidate nearer with case', () => {
    expect(closest('AI4LIFE', namespaces)).toBe('ai4life');
    // Both are 0 apart ignoring case; with case, Lab is 1 from lab and LAB 2.
    expect(closest('lab', ['LAB', 'Lab'])).toBe('Lab');
    expect(closest('lab', ['Lab', 'LAB'])).toBe('Lab');
  });
  it('breaks a full tie by code-unit order, whatever order candidates come in', () => {
    // bat and cat are both 1 from at.
    expect(closest('at', ['cat', 'bat'])).toBe('bat');
    expect(closest('at', ['bat', 'cat'])).toBe('bat');
  });
  it('offers nothing far away, or from nothing', () => {
    // A third of the typed length, at least 1: "nobody" may be 2 away.
    expect(nearEnough('nobody', 2)).toBe(true);
    expect(nearEnough('nobody', 3)).toBe(false);
    expect(nearEnough('x', 1)).toBe(true);
    expect(nearEnough('bob', 1)).toBe(true);
    expect(nearEnough('bob', 2)).toBe(false);
    expect(closest('nobody', ['596775f7730e40d64727ce9b7b3d20ec@egi.eu', 'ai4life'])).toBeNull(); // 7 from ai4life, more from the hash
    expect(closest('nobady', ['nobody'])).toBe('nobody');
    expect(closest('x', [])).toBeNull();
  });
});

describe('unmatchedFilterWarnings', () => {
  const known: Record<FilterKey, string[]> = { cluster: ['(unnamed)'], namespace: ['ai4eosc', 'ai4life', 'imagine'], user: ['alice', 'bob', UNATTRIBUTED], group: [UNATTRIBUTED] };
  const warnings = (filters: FilterGiven[]) => unmatchedFilterWarnings(filters, (k) => known[k], 'in the snapshots');

  it('names the closest known value, once per value, and nothing for values that match', () => {
    expect(warnings([{ key: 'namespace', source: '--namespace', values: ['ai4lfe', 'imagine', 'ai4lfe'] }])).toEqual([
      '--namespace ai4lfe matches nothing in the snapshots; the closest namespace is ai4life',
    ]);
    expect(warnings([{ key: 'user', source: 'hourmeter.yaml: user', values: ['alica'] }])).toEqual([
      'hourmeter.yaml: user alica matches nothing in the snapshots; the closest user is alice',
    ]);
    expect(warnings([{ key: 'user', source: '--user', values: ['alice', UNATTRIBUTED] }])).toEqual([]);
  });

  it('says when nothing is close, when the key is never set, and when nothing lacks it', () => {
    expect(warnings([{ key: 'user', source: '--user', values: ['nobody'] }])).toEqual([
      // (unattributed) is no user name: two users, not three.
      '--user nobody matches nothing in the snapshots, and none of the 2 users there is close to it; check the spelling',
    ]);
    expect(warnings([{ key: 'group', source: '--group', values: ['x'] }])).toEqual(['--group x matches nothing in the snapshots: no allocation there has a group']);
    expect(warnings([{ key: 'namespace', source: '--namespace', values: [UNATTRIBUTED] }])).toEqual([
      '--namespace (unattributed) matches nothing in the snapshots: every allocation there has a namespace',
    ]);
    expect(unmatchedFilterWarnings([{ key: 'namespace', source: '--namespace', values: ['a'] }], () => [], 'in the snapshots')).toEqual([
      '--namespace a matches nothing in the snapshots: no allocation there held resources',
    ]);
  });

  it('asks for the known values of the keys it checks only', () => {
    const asked: FilterKey[] = [];
    unmatchedFilterWarnings([{ key: 'group', source: '--group', values: ['x'] }], (k) => (asked.push(k), known[k]), 'in the snapshots');
    expect(asked).toEqual(['group']);
  });
});

describe('known values of a history', () => {
  const track = (key: string, namespace: string, user: string | null, startUs: number | null = 1_000): Track => ({
    key: `nomad:${key}`,
    namespace,
    jobId: key,
    jobName: null,
    user,
    group: null,
    component: null,
    node: null,
    amounts: { cpuMilli: 1000, cpuMhz: 2000, memoryBytes: 1, diskBytes: 1, gpu: 0 },
    startUs,
    state: 'ended',
    lastHoldingUs: 2_000,
    endUs: 3_000,
    nextUs: null,
    listedTerminal: false,
    nextKind: 'native',
    listedHolding: false,
    last: null,
  });

  it('leave out blanked rows and tracks that never held resources; a missing user is (unattributed)', () => {
    const names = new MemoryNames();
    const c = new TrackColumns(8);
    for (const t of [track('a', 'lab', 'zoë'), track('b', 'lab', null), track('c', 'moved', 'ann'), track('d', 'web', 'bob')]) c.push(t, t.lastHoldingUs, names);
    // Never started: not packed, so its namespace and user are not known.
    expect(c.push(track('e', 'queued', 'eve', null), null, names)).toBe(false);
    // Listed again and packed elsewhere: its old row no longer counts.
    c.blank(2);
    expect(distinctValues([c], names, 'namespace')).toEqual(['lab', 'web']);
    expect(distinctValues([c], names, 'user')).toEqual([UNATTRIBUTED, 'bob', 'zoë']);
    expect(distinctValues([c], names, 'group')).toEqual([UNATTRIBUTED]);
    expect(distinctValues([], names, 'namespace')).toEqual([]);
  });

  it('are the same from the index, built file by file, and from a full read: every value of a track that held resources', async () => {
    const src = tempDir();
    await writeHistory(src, { format: 'native', seed: 5, days: 3, intervalMinutes: 60, targetConcurrent: 30, start: '2024-09-01T00:00:00Z', missed: 0.05 });
    const history = await loadHistory(await listSnapshots(src), { strict: false, warn: () => {} });
    // Appended one file at a time into small segments: tracks listed again leave blanked rows behind.
    const dst = tempDir();
    const db = openIndex(join(tempDir(), 'index.sqlite'));
    for (const n of readdirSync(src).filter((f) => f.endsWith('.json')).sort()) {
      copyFileSync(join(src, n), join(dst, n));
      await ingest(db, (await listSnapshots(dst)).files, { warn: () => {}, segmentTracks: 16 });
    }
    try {
      const held = history.tracks.filter((t) => reachUs(t) !== null);
      const expected = (pick: (t: (typeof held)[number]) => string | null) => [...new Set(held.map((t) => pick(t) ?? UNATTRIBUTED))].sort();
      const want: Record<FilterKey, string[]> = {
        cluster: ['(unnamed)'],
        namespace: expected((t) => t.namespace),
        user: expected((t) => t.user),
        group: expected((t) => t.group),
      };
      // The simulated cluster has several of each, and allocations without a group.
      expect(want.namespace.length).toBeGreaterThan(1);
      expect(want.user.length).toBeGreaterThan(5);
      expect(want.group).toContain(UNATTRIBUTED);
      for (const key of ['namespace', 'user', 'group'] as const) {
        expect(filesView(history).knownValues(key)).toEqual(want[key]);
        expect(indexView(db).knownValues(key)).toEqual(want[key]);
        // Inside a read of its own, the lookup joins that transaction.
        expect(indexView(db).consistently(() => indexView(db).knownValues(key))).toEqual(want[key]);
      }
    } finally {
      db.close();
    }
  });
});
