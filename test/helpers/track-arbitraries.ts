import fc from 'fast-check';
import type { EstimateOptions, Track } from '../../src/accounting/reconstruct.js';
import type { Attribution, Amounts } from '../../src/accounting/types.js';

/**
 * Random tracks for the property tests that hold the kernel and the daily splits to the
 * reference core: as the history layer hands them over, ended, still holding at the last
 * snapshot (open), vanished, or never seen holding. Each test brings its own attribution,
 * start and length arbitraries, tuned to what it probes.
 */

const HOUR = 3_600_000_000;
const DAY = 24 * HOUR;

type Attributed = Pick<Attribution, 'namespace' | 'jobId' | 'user' | 'group' | 'component'> & { amounts: Amounts };

export function trackArbitrary(attribution: fc.Arbitrary<Attributed>, start: fc.Arbitrary<number>, length: fc.Arbitrary<number>, periodStartUs: number): fc.Arbitrary<Track> {
  return fc
    .record({
      a: attribution,
      kubernetes: fc.boolean(),
      state: fc.constantFrom('none' as const, 'holding' as const, 'ended' as const, 'vanished' as const),
      startUs: fc.option(start, { freq: 8 }),
      toLastHolding: fc.option(length, { freq: 6 }),
      toEnd: fc.option(length, { freq: 6 }),
      toNext: fc.option(length, { freq: 6 }),
      listedTerminal: fc.boolean(),
      nextKind: fc.constantFrom(null, 'native' as const, 'legacy' as const),
    })
    .map(({ a, kubernetes, state, startUs, toLastHolding, toEnd, toNext, listedTerminal, nextKind }) => {
      const at = startUs ?? periodStartUs;
      const lastHoldingUs = toLastHolding === null ? null : at + toLastHolding;
      return {
        key: kubernetes ? 'kubernetes:x' : 'nomad:x', jobName: null, node: null, ...a, startUs, state,
        lastHoldingUs, endUs: toEnd === null ? null : at + toEnd, nextUs: toNext === null ? null : (lastHoldingUs ?? at) + toNext,
        listedTerminal, nextKind, listedHolding: false, last: null,
      } as Track;
    });
}

/** An amount in base units: zero, small, or large (a power-of-two multiple of `small`). */
const amountArbitrary = (small: number, large: number) =>
  fc.oneof(fc.constant(0), fc.integer({ min: 1, max: small }), fc.integer({ min: 1, max: large }), fc.integer({ min: 0, max: 8 }).map((k) => small * 2 ** k));

/** Amounts in base units, memory up to 2^41 bytes and disk 2^42: over days of µs, products pass 2^53. */
export const amountsArbitrary: fc.Arbitrary<Amounts> = fc.record({
  cpuMilli: amountArbitrary(4000, 512_000),
  cpuMhz: amountArbitrary(2000, 200_000),
  gpu: amountArbitrary(2, 16),
  memoryBytes: amountArbitrary(1 << 20, 2 ** 41),
  diskBytes: amountArbitrary(1 << 30, 2 ** 42),
});

/** Any way of estimating a vanished allocation's end. */
export const estimateArbitrary: fc.Arbitrary<EstimateOptions> = fc.record({
  gapPolicy: fc.constantFrom('midpoint' as const, 'last-seen' as const, 'next' as const),
  gcWindowUs: fc.oneof(fc.constant(null), fc.constantFrom(0, HOUR, 4 * HOUR), fc.integer({ min: 0, max: 10 * DAY })),
});
