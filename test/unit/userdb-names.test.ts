import { describe, expect, it } from 'vitest';
import { groupsIn, mergeSightings, userDbOf } from '../../src/userdb/store.js';

/** User ids that a plain object already answers to are users like any other. */

describe('the user database keyed by ids such as __proto__ and constructor', () => {
  it('snapshot sightings add them, and keep what was known of them', () => {
    const known = { name: 'Known', email: null, first_seen: '2024-09-01T00:00:00Z', last_seen: '2024-09-01T00:00:00Z', groups: ['g1'] };
    const db = mergeSightings(userDbOf([['constructor', known]]), [
      { id: '__proto__', name: 'Proto', email: 'p@example.org', group: 'g2' },
      { id: 'constructor', name: null, email: null, group: 'g3' },
      { id: 'toString', name: null, email: null, group: null },
    ], '2024-10-01T00:00:00Z');
    expect(Object.entries(db)).toEqual([
      ['constructor', { name: 'Known', email: null, first_seen: '2024-09-01T00:00:00Z', last_seen: '2024-10-01T00:00:00Z', groups: ['g1', 'g3'] }],
      ['__proto__', { name: 'Proto', email: 'p@example.org', first_seen: '2024-10-01T00:00:00Z', last_seen: '2024-10-01T00:00:00Z', groups: ['g2'] }],
      ['toString', { name: null, email: null, first_seen: '2024-10-01T00:00:00Z', last_seen: '2024-10-01T00:00:00Z', groups: [] }],
    ]);
  });

  it('groupsIn answers only for users the database holds', () => {
    const db = userDbOf([['__proto__', { name: null, email: null, first_seen: null, last_seen: null, groups: ['g'] }]]);
    expect(groupsIn(db, '__proto__')).toEqual(['g']);
    expect(groupsIn(db, 'constructor')).toBeNull();
    // A copy with a prototype again, as a worker receives it.
    expect(groupsIn(structuredClone(db), 'hasOwnProperty')).toBeNull();
  });
});
