import { describe, expect, it } from 'vitest';
import { fixed, integer, plainTable } from '../../src/reports/table.js';

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

describe('plain tables', () => {
  // Wide and zero-width characters, empty cells, both alignments: what names and numbers hold.
  const names = ['alice', '张伟', 'José', 'e\u0301lodie', '🙂 smile', '', 'a-very-long-user-name@example.org', 'Ωmega'];
  const table = (rows: number) => {
    const t = plainTable({ head: ['User', 'Namespace', 'CPU-hours', 'Jobs'], colAligns: ['left', 'left', 'right', 'right'] });
    for (let i = 0; i < rows; i++) t.push([names[i % names.length]!, i % 3 === 0 ? 'ai4eosc' : 'imagine', fixed(i * 1234.567), integer(i)]);
    t.push(['Total', '', fixed(123456789.01), integer(rows)]);
    return t;
  };

  it('are drawn here exactly as cli-table3 draws them', () => {
    for (const rows of [0, 1, 9, 250]) {
      const t = table(rows);
      expect(t.draw('own')).toBe(t.draw('library'));
    }
    const long = table(250).toString();
    expect(long.split('\n')).toHaveLength(250 + 4);
    expect(long.split('\n')[2]).toBe('│ alice                             │ ai4eosc   │           0.00 │    0 │');
  });

  it('are drawn here when short, with a row-wide message too; cells spanning some columns are left to cli-table3', () => {
    const short = table(2);
    expect(short.toString()).toBe(short.draw('own'));
    expect(short.toString().split('\n')[3]).toBe('│ 张伟  │ imagine   │       1,234.57 │    1 │');
    const t = plainTable({ head: ['User', 'Jobs'] });
    for (let i = 0; i < 3; i++) t.push([`u${i}`, String(i)]);
    t.push([{ colSpan: 2, content: 'a message across both columns, wider than they are' }]);
    // The message widens the last column; cli-table3 would draw stray junctions around it.
    expect(t.toString()).toBe(
      [
        '┌──────┬─────────────────────────────────────────────┐',
        '│ User │ Jobs                                        │',
        '│ u0   │ 0                                           │',
        '│ u1   │ 1                                           │',
        '│ u2   │ 2                                           │',
        '│ a message across both columns, wider than they are │',
        '└──────┴─────────────────────────────────────────────┘',
      ].join('\n'),
    );
    const partial = plainTable({ head: ['User', 'Jobs', 'Note'] });
    partial.push(['u0', '0', 'x'], [{ colSpan: 2, content: 'two of three' }, 'y']);
    expect(partial.toString()).toBe(partial.draw('library'));
  });
});
