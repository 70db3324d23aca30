import { describe, expect, it } from 'vitest';
import { estimateColumns, FlavourIds, FlavourTable, LifetimeColumns, MemoryNames, TrackColumns } from '../../src/accounting/columns.js';
import { lifetimesOf, type Track } from '../../src/accounting/reconstruct.js';
import type { GapPolicy } from '../../src/accounting/types.js';

const HOUR = 3_600_000_000;

const base: Track = {
  key: 'nomad:a', namespace: 'ns', jobId: 'j', jobName: null, user: 'u', group: 'g', component: null, node: null,
  amounts: { cpuMilli: 1500, cpuMhz: 2400, memoryBytes: 2 ** 31, diskBytes: 10 ** 9, gpu: 1 },
  startUs: 10 * HOUR, state: 'ended', lastHoldingUs: 12 * HOUR, endUs: 13 * HOUR, nextUs: null,
  listedTerminal: false, nextKind: null, listedHolding: false, last: null,
};

/** One track of every kind the estimate tells apart. */
const tracks: Track[] = [
  base,
  { ...base, key: 'nomad:b', state: 'holding', endUs: null, user: null },
  { ...base, key: 'nomad:c', state: 'vanished', endUs: null, nextUs: 20 * HOUR, nextKind: 'native', group: null },
  { ...base, key: 'nomad:d', state: 'vanished', endUs: null, nextUs: 20 * HOUR, nextKind: 'legacy', listedTerminal: true },
  { ...base, key: 'kubernetes:e', state: 'vanished', endUs: null, lastHoldingUs: null, nextUs: 15 * HOUR, nextKind: 'native' },
  // Held nothing: never started, or a state without its time. Left out of the columns.
  { ...base, key: 'nomad:f', state: 'none', endUs: null },
  { ...base, key: 'nomad:g', startUs: null },
  { ...base, key: 'nomad:h', state: 'ended', endUs: null },
];

/** The test tracks packed as the index stores them. */
function packed(names: MemoryNames): Buffer {
  const c = new TrackColumns(16);
  for (const t of tracks) c.push(t, t.lastHoldingUs, names);
  return c.encode();
}

describe('track columns', () => {
  it('pack the tracks that held resources, and read back byte for byte', () => {
    const names = new MemoryNames();
    const c = new TrackColumns(16);
    expect(tracks.map((t) => c.push(t, t.lastHoldingUs, names))).toEqual([true, true, true, true, true, false, false, false]);
    expect(c.minStartUs).toBe(10 * HOUR);
    expect(c.maxReachUs).toBe(20 * HOUR);
    const back = TrackColumns.decode(c.encode());
    expect(back.length).toBe(5);
    expect([back.minStartUs, back.maxReachUs]).toEqual([10 * HOUR, 20 * HOUR]);
    expect([...back.user]).toEqual([names.lookup('u'), -1, names.lookup('u'), names.lookup('u'), names.lookup('u')]);
    expect(names.flavours().amounts(back.flavour[0]!)).toEqual({ cpuMilli: 1500, cpuMhz: 2400, gpu: 1, memoryBytes: 2 ** 31, diskBytes: 10 ** 9 });
    expect(Number.isNaN(back.end[1]!)).toBe(true);
    expect(() => TrackColumns.decode(c.encode().subarray(0, 40))).toThrow(/unknown layout; rebuild it/);
  });

  for (const gapPolicy of ['midpoint', 'last-seen', 'next'] as GapPolicy[]) {
    for (const gcWindowUs of [null, 0, 2 * HOUR]) {
      it(`estimate like lifetimesOf (${gapPolicy}, GC window ${gcWindowUs === null ? 'default' : gcWindowUs / HOUR + ' h'})`, () => {
        const names = new MemoryNames();
        const c = new TrackColumns(16);
        for (const t of tracks) c.push(t, t.lastHoldingUs, names);
        const l = estimateColumns(TrackColumns.decode(c.encode()), { gapPolicy, gcWindowUs }, new LifetimeColumns(0));
        const expected = [...lifetimesOf(tracks, { gapPolicy, gcWindowUs })];
        expect(l.length).toBe(expected.length);
        expect(expected.map((e, i) => [e.startUs, e.endUs, e.lowEndUs, e.highEndUs, e.endKind, e.namespace, e.user])).toEqual(
          expected.map((_, i) => [l.start[i], l.end[i], l.low[i], l.high[i], (['ended', 'open', 'vanished'] as const)[l.kind[i]!], names.name(l.namespace[i]!), l.user[i] === -1 ? null : names.name(l.user[i]!)]),
        );
      });
    }
  }

  it('the default estimate is stored with the tracks, read as it is, and never written over', () => {
    const names = new MemoryNames();
    const c = TrackColumns.decode(packed(names));
    const stored = [...c.defaultEnd.subarray(0, c.length)];
    const view = estimateColumns(c, { gapPolicy: 'midpoint', gcWindowUs: null }, new LifetimeColumns(0));
    expect(view.end).toBe(c.defaultEnd); // the segment's own column, not a copy
    // Another estimate handed the view to reuse gets columns of its own.
    const next = estimateColumns(c, { gapPolicy: 'next', gcWindowUs: null }, view);
    expect(next.end).not.toBe(c.defaultEnd);
    expect([...c.defaultEnd.subarray(0, c.length)]).toEqual(stored);
    expect([...next.end.subarray(0, next.length)]).toEqual([...lifetimesOf(tracks, { gapPolicy: 'next', gcWindowUs: null })].map((l) => l.endUs));
  });

  it('a blanked row holds nothing', () => {
    const names = new MemoryNames();
    const c = new TrackColumns(4);
    for (const t of tracks.slice(0, 3)) c.push(t, t.lastHoldingUs, names);
    c.blank(1);
    const l = estimateColumns(c, { gapPolicy: 'midpoint', gcWindowUs: null }, new LifetimeColumns(0));
    expect(l.length).toBe(2);
    expect([...l.user.subarray(0, 2)]).toEqual([names.lookup('u'), names.lookup('u')]);
    expect([l.kind[0], l.kind[1]]).toEqual([0, 2]);
  });

  it('a segment continued with copyRows encodes as the same tracks pushed one by one', () => {
    const names = new MemoryNames();
    const first = new TrackColumns(16);
    for (const t of tracks.slice(0, 3)) first.push(t, t.lastHoldingUs, names);
    const continued = new TrackColumns(16);
    continued.copyRows(TrackColumns.decode(first.encode()));
    for (const t of tracks.slice(3)) continued.push(t, t.lastHoldingUs, names);
    const direct = new TrackColumns(16);
    for (const t of tracks) direct.push(t, t.lastHoldingUs, names);
    expect(continued.length).toBe(5);
    expect(continued.encode().equals(direct.encode())).toBe(true);
  });
});

describe('FlavourIds', () => {
  const a = { cpuMilli: 1500, cpuMhz: 2400, memoryBytes: 2 ** 31, diskBytes: 10 ** 9, gpu: 1 };

  it('gives the same amounts the same id, 0 and -0 alike, NaN as NaN, and new amounts the next id', () => {
    const table = new FlavourTable();
    const ids = new FlavourIds();
    expect(ids.idOf(table, a)).toBe(0);
    expect(ids.idOf(table, { ...a, gpu: 2 })).toBe(1);
    expect(ids.idOf(table, { ...a })).toBe(0);
    expect(ids.idOf(table, { ...a, gpu: 0 })).toBe(2);
    expect(ids.idOf(table, { ...a, gpu: -0 })).toBe(2);
    expect(ids.idOf(table, { ...a, diskBytes: NaN })).toBe(3);
    expect(ids.idOf(table, { ...a, diskBytes: NaN })).toBe(3);
    expect(table.count).toBe(4);
  });

  it('read back from a stored table, finds every flavour in it and numbers new ones after', () => {
    const table = new FlavourTable();
    const ids = new FlavourIds();
    for (let gpu = 0; gpu < 100; gpu++) ids.idOf(table, { ...a, gpu });
    const stored = FlavourTable.decode(table.encode());
    const back = FlavourIds.of(stored);
    expect(back.idOf(stored, { ...a, gpu: 42 })).toBe(42);
    expect(back.idOf(stored, { ...a, gpu: 0 })).toBe(0);
    expect(back.idOf(stored, { ...a, gpu: 100 })).toBe(100);
    expect(stored.count).toBe(101);
  });
});
