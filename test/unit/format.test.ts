import { describe, expect, it } from 'vitest';
import { fixed, integer } from '../../src/reports/table.js';

describe('number formatting for tables', () => {
  it('groups thousands and keeps two decimals', () => {
    expect(fixed(0)).toBe('0.00');
    expect(fixed(1234)).toBe('1,234.00');
    expect(fixed(22474582.7612)).toBe('22,474,582.76');
    expect(fixed(999.5, 0)).toBe('1,000');
    expect(integer(5781)).toBe('5,781');
    expect(integer(192)).toBe('192');
  });

  it('rounds half away from zero on the decimal a reader sees, as spreadsheets do', () => {
    // 1.005 and 2.675 are stored just below the tie: toFixed would print 1.00 and 2.67.
    expect(fixed(1.005)).toBe('1.01');
    expect(fixed(2.675)).toBe('2.68');
    expect(fixed(999.995)).toBe('1,000.00');
    expect(fixed(0.125)).toBe('0.13');
    expect(fixed(0.124999)).toBe('0.12');
  });

  it('handles tiny, huge and negative numbers', () => {
    expect(fixed(1e-7)).toBe('0.00');
    expect(fixed(1e21)).toBe('1,000,000,000,000,000,000,000.00');
    expect(fixed(-1234.5)).toBe('-1,234.50');
    expect(fixed(-0.001)).toBe('0.00');
  });
});
