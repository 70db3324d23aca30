import { afterEach, describe, expect, it } from 'vitest';
import { Stamps } from '../../src/accounting/kernel/stamps.js';

describe('Stamps', () => {
  const restartAt = Stamps.restartAt;
  afterEach(() => {
    Stamps.restartAt = restartAt;
  });

  /** Distinct users among `ids`, and distinct jobs among (namespace, job) pairs, counted by one table. */
  const count = (s: Stamps, ids: number[], jobs: [number, number][]) => {
    s.begin();
    for (const id of ids) s.see(id);
    const users = s.count;
    s.begin();
    for (const [ns, job] of jobs) s.seeJob(ns, job);
    return { users, jobs: s.count };
  };

  it('a table handed back counts the next report from scratch, across a restart of its counter', () => {
    // Restart after every few counts: the stamps of earlier counts must never count as seen.
    Stamps.restartAt = 3;
    const first = Stamps.lend(10);
    expect(count(first, [1, 2, 2, 3, -1], [[0, 5], [0, 5], [1, 5], [0, 6]])).toEqual({ users: 3, jobs: 3 });
    first.giveBack();
    const again = Stamps.lend(10);
    expect(again).toBe(first);
    // The same ids again, and on top: 1 and 2 were stamped by the earlier report, not this one.
    for (let round = 0; round < 5; round++) {
      expect(count(again, [2, 1], [[1, 5], [0, 5]])).toEqual({ users: 2, jobs: 2 });
      again.begin();
      again.see(1);
      again.onTop();
      again.see(1);
      again.see(4);
      expect(again.count).toBe(1);
    }
    again.giveBack();
    // A larger table than any handed back is new.
    expect(Stamps.lend(100_000)).not.toBe(first);
  });
});
