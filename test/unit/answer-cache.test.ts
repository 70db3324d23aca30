import { describe, expect, it } from 'vitest';
import { AnswerCache } from '../../src/server/answer-cache.js';

const answer = (chars: number) => ({ status: 200, type: 'application/json', body: 'x'.repeat(chars) });

describe('AnswerCache', () => {
  it('drops the oldest answers past its count or its bytes, and never keeps one larger than the bound', () => {
    // Bodies count two bytes a character: 10 characters are 20 bytes.
    const cache = new AnswerCache(3, 100);
    cache.set('a', answer(10));
    cache.set('b', answer(10));
    cache.set('c', answer(10));
    expect(cache.size).toEqual({ entries: 3, bytes: 60 });
    cache.set('d', answer(10));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 3, bytes: 60 });
    // 70 more bytes: b goes for the count, then c for the bytes (40 + 70 is over 100).
    cache.set('e', answer(35));
    expect([cache.get('b'), cache.get('c')]).toEqual([undefined, undefined]);
    expect(cache.get('d')?.body.length).toBe(10);
    expect(cache.size).toEqual({ entries: 2, bytes: 90 });
    cache.set('huge', answer(51));
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 2, bytes: 90 });
    // The same key again replaces its answer and its bytes.
    cache.set('d', answer(5));
    expect(cache.size).toEqual({ entries: 2, bytes: 80 });
    cache.clear();
    expect(cache.size).toEqual({ entries: 0, bytes: 0 });
  });
});
