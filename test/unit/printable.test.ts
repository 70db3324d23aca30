import { describe, expect, it } from 'vitest';
import { printable } from '../../src/util/printable.js';

describe('printable', () => {
  it('escapes control characters and invisible direction marks, and leaves other text alone', () => {
    expect(printable('a\nb\r\tc\x1b[31m\x07\x7f\x85')).toBe('a\\nb\\r\\tc\\x1b[31m\\x07\\x7f\\x85');
    expect(printable('x\u202ey\u2028')).toBe('x\\u202ey\\u2028');
    expect(printable('2024-09-05T12:00:11Z.json ñ Zoë 東京 \\')).toBe('2024-09-05T12:00:11Z.json ñ Zoë 東京 \\');
  });
});
