import { describe, expect, it } from 'vitest';
import { ceilMilli, ceilUnits, parseQuantity, QuantityError } from '../../src/sources/kubernetes/quantity.js';

/** Quantities are exact counts of nano-units (10^-9). */

const G = 1_000_000_000n; // nanos per unit
const MAX = (2n ** 63n - 1n) * G;

describe('parseQuantity', () => {
  const cases: [string, bigint][] = [
    // the reference's examples
    ['500m', 500_000_000n],
    ['1.5', 1_500_000_000n],
    ['2Gi', 2_147_483_648n * G],
    ['1e3', 1000n * G],
    ['128974848', 128_974_848n * G],
    ['129e6', 129_000_000n * G],
    ['123Mi', 128_974_848n * G], // 123 × 1,048,576
    // decimal SI
    ['100n', 100n],
    ['5u', 5_000n],
    ['250m', 250_000_000n],
    ['1k', 1_000n * G],
    ['1M', 1_000_000n * G],
    ['1G', 1_000_000_000n * G],
    ['2T', 2_000_000_000_000n * G],
    ['3P', 3n * 10n ** 15n * G],
    ['1E', 10n ** 18n * G], // a lone E is exa, not an exponent
    // binary SI
    ['1Ki', 1_024n * G],
    ['0.5Mi', 524_288n * G],
    ['1.5Gi', 1_610_612_736n * G],
    ['1Ti', 1_099_511_627_776n * G],
    ['1Pi', 2n ** 50n * G],
    ['2Ei', 2n ** 61n * G],
    // exponents
    ['16e9', 16_000_000_000n * G],
    ['1E3', 1000n * G],
    ['1e+3', 1000n * G],
    ['1e-3', 1_000_000n], // one milli
    ['1.5e3', 1500n * G],
    ['12E-1', 1_200_000_000n],
    // number shapes
    ['0', 0n],
    ['0m', 0n],
    ['0.0', 0n],
    ['007', 7n * G],
    ['.5', 500_000_000n],
    ['1.', 1n * G],
    ['1.G', 1_000_000_000n * G],
    ['+2', 2n * G],
    ['-2', -2n * G],
    ['-0.5m', -500_000n],
    // rounding up, in magnitude, to the nano
    ['0.1m', 100_000n],
    ['0.1n', 1n],
    ['1.0000000001', 1_000_000_001n], // 1 + 10^-10 rounds up to 1 + 10^-9
    ['1e-20', 1n],
    ['-1e-20', -1n],
    ['0e-20', 0n],
    ['0.30000000000000004', 300_000_001n],
    // capped at 2^63-1
    ['9223372036854775807', MAX],
    ['9223372036854775808', MAX],
    ['1e100', MAX],
    ['8Ei', MAX], // 2^63
  ];
  for (const [text, nanos] of cases) it(`${text} = ${nanos} nanos`, () => expect(parseQuantity(text)).toBe(nanos));

  const bad = ['', ' 1', '1 ', '1 Gi', 'Gi', 'abc', '1K', '1ki', '1Gb', '1e', '1e1.5', '1.2.3', '1Mi5', '--1', '.', '1m1', '0x10', 'NaN', 'Infinity'];
  for (const text of bad) it(`refuses ${JSON.stringify(text)}`, () => expect(() => parseQuantity(text)).toThrow(QuantityError));

  it('says which suffixes exist', () => {
    expect(() => parseQuantity('2GB')).toThrow(/unknown suffix "GB"; use one of n u m k M G T P E, Ki Mi Gi Ti Pi Ei/);
  });
});

describe('rounding as the scheduler does', () => {
  it('CPU to millicores, up', () => {
    expect(ceilMilli(parseQuantity('8350m'))).toBe(8350n);
    expect(ceilMilli(parseQuantity('0.1m'))).toBe(1n);
    expect(ceilMilli(parseQuantity('0.30000000000000004'))).toBe(301n);
    expect(ceilMilli(parseQuantity('2'))).toBe(2000n);
    expect(ceilMilli(0n)).toBe(0n);
  });
  it('memory to whole bytes, up: "400m" of memory is 0.4 bytes, so 1 byte', () => {
    expect(ceilUnits(parseQuantity('400m'))).toBe(1n);
    expect(ceilUnits(parseQuantity('1G'))).toBe(1_000_000_000n);
    expect(ceilUnits(parseQuantity('64Gi'))).toBe(68_719_476_736n);
    expect(ceilUnits(parseQuantity('1000m'))).toBe(1n);
  });
});
