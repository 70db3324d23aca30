/** Simulator options, their defaults and validation. */

export type SnapshotFormat = 'native' | 'legacy';

export type DurationDistribution = 'log-uniform' | 'lognormal';

export interface MissedSpec {
  /** Probability that any one scheduled snapshot is not written. */
  probability?: number;
  /** Scheduled snapshots with from <= time < to (RFC 3339 instants) are not written. */
  ranges?: { from: string; to: string }[];
}

export interface SimulatorOptions {
  /** Everything random follows from this seed. Default 1. */
  seed?: number | string;
  /** First scheduled snapshot (RFC 3339). Default 2024-09-01T00:00:00Z. */
  start?: string;
  /** Snapshots are scheduled over this many days. Default 7. */
  days?: number;
  /** Minutes between scheduled snapshots. Default 360. */
  intervalMinutes?: number;
  /** Each snapshot runs 0..jitterSeconds late, as a cron job does. Default 120. */
  jitterSeconds?: number;
  /** Mean number of allocations holding resources at once. Default 60. */
  targetConcurrent?: number;
  /** Default ["ai4eosc", "imagine", "ai4life"]. */
  namespaces?: string[];
  /** Share of jobs per namespace. Default 0.6/0.3/0.1 for the defaults, else 1/(i+1). */
  namespaceWeights?: number[];
  /** Users per namespace. Default scales with targetConcurrent and the namespace weight. */
  usersPerNamespace?: number;
  /** Share of GPU jobs. Default 0.2. */
  gpuFraction?: number;
  /**
   * How planned run times are drawn: log-uniform between the bounds (default), or lognormal
   * (medianDurationMinutes, durationSigma) clamped to the bounds, as real runs are.
   */
  durationDistribution?: DurationDistribution;
  /** Planned job run time bounds. Defaults 10 min and 21 days. */
  minDurationMinutes?: number;
  maxDurationMinutes?: number;
  /** Median planned run time of the lognormal distribution. Default 240 (4 h). */
  medianDurationMinutes?: number;
  /** Standard deviation of the natural log of the lognormal run time. Default 1.9. */
  durationSigma?: number;
  /** Share of jobs whose run fails 1-2 minutes after it starts. Default 0. */
  earlyFailFraction?: number;
  /** Probability that a job waits in the queue before placement. Defaults 0.05 CPU, 0.3 GPU. */
  queueProbabilityCpu?: number;
  queueProbabilityGpu?: number;
  /** Share of allocations whose main task restarts in place. Default 0.05. */
  restartFraction?: number;
  /** Share of jobs whose first allocation fails and is replaced. Default 0.03. */
  rescheduleFraction?: number;
  /** Share of jobs that end failed rather than complete. Default 0.07. */
  failFraction?: number;
  /** Share of jobs whose image never starts (failed before holding anything). Default 0.01. */
  pullFailFraction?: number;
  /** Node disconnections per week over the whole cluster. Default 1. */
  disconnectsPerWeek?: number;
  /** Probability that a disconnected node comes back before its allocations are lost. Default 0.6. */
  reconnectProbability?: number;
  /** Disconnection time after which allocations become lost: fixed or a [min, max] range. Default 2880 (48 h). */
  lostAfterMinutes?: number | [number, number];
  /** Snapshots that are scheduled but not written. A number is a probability. Default none. */
  missed?: number | MissedSpec;
  /** Terminal allocations stay listed this long. Default 60 native, 240 legacy. */
  gcMinutes?: number;
  /** Write the long descriptive AI4OS fields (legacy) and `raw` (native). Default true. */
  fullFields?: boolean;
}

export interface ResolvedOptions {
  seed: string;
  startUs: number;
  days: number;
  intervalMinutes: number;
  jitterSeconds: number;
  targetConcurrent: number;
  namespaces: string[];
  namespaceWeights: number[];
  usersPerNamespace: number | null;
  gpuFraction: number;
  durationDistribution: DurationDistribution;
  minDurationMinutes: number;
  maxDurationMinutes: number;
  medianDurationMinutes: number;
  durationSigma: number;
  earlyFailFraction: number;
  queueProbabilityCpu: number;
  queueProbabilityGpu: number;
  restartFraction: number;
  rescheduleFraction: number;
  failFraction: number;
  pullFailFraction: number;
  disconnectsPerWeek: number;
  reconnectProbability: number;
  lostAfterMinutes: [number, number];
  missedProbability: number;
  missedRanges: { fromUs: number; toUs: number }[];
  gcMinutes: number | null;
  fullFields: boolean;
}

export const DEFAULT_NAMESPACES = ['ai4eosc', 'imagine', 'ai4life'];
const DEFAULT_WEIGHTS = [0.6, 0.3, 0.1];

export const DEFAULT_GC_MINUTES: Record<SnapshotFormat, number> = { native: 60, legacy: 240 };

function parseInstantUs(text: string, what: string): number {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(ms)) {
    throw new RangeError(`${what}: expected an RFC 3339 instant such as 2024-09-01T00:00:00Z, got "${text}"`);
  }
  return ms * 1000;
}

function fraction(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${what} must be between 0 and 1, got ${v}`);
  return v;
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${what} must be a positive number, got ${v}`);
  return v;
}

export function resolveOptions(o: SimulatorOptions = {}): ResolvedOptions {
  const namespaces = o.namespaces ?? DEFAULT_NAMESPACES;
  if (namespaces.length === 0) throw new RangeError('namespaces must not be empty');
  if (new Set(namespaces).size !== namespaces.length) throw new RangeError('namespaces must be distinct');
  const weights =
    o.namespaceWeights ??
    (o.namespaces === undefined ? DEFAULT_WEIGHTS : namespaces.map((_, i) => 1 / (i + 1)));
  if (weights.length !== namespaces.length || weights.some((w) => !(w >= 0)) || !weights.some((w) => w > 0)) {
    throw new RangeError('namespaceWeights must give one non-negative weight per namespace');
  }
  const lost = o.lostAfterMinutes ?? 2880;
  const lostRange: [number, number] = Array.isArray(lost) ? [lost[0], lost[1]] : [lost, lost];
  if (!(lostRange[0] > 0 && lostRange[1] >= lostRange[0])) {
    throw new RangeError('lostAfterMinutes must be positive (or a [min, max] range)');
  }
  const missed: MissedSpec = typeof o.missed === 'number' ? { probability: o.missed } : (o.missed ?? {});
  const minD = positive(o.minDurationMinutes, 10, 'minDurationMinutes');
  const maxD = positive(o.maxDurationMinutes, 21 * 24 * 60, 'maxDurationMinutes');
  if (maxD < minD) throw new RangeError('maxDurationMinutes must not be below minDurationMinutes');
  const distribution = o.durationDistribution ?? 'log-uniform';
  if (distribution !== 'log-uniform' && distribution !== 'lognormal') {
    throw new RangeError(`durationDistribution must be "log-uniform" or "lognormal", got "${String(distribution)}"`);
  }
  const gc = o.gcMinutes;
  if (gc !== undefined && !(gc >= 0)) throw new RangeError(`gcMinutes must be >= 0, got ${gc}`);
  const jitter = o.jitterSeconds ?? 120;
  if (!(jitter >= 0)) throw new RangeError(`jitterSeconds must be >= 0, got ${jitter}`);
  const disconnects = o.disconnectsPerWeek ?? 1;
  if (!(disconnects >= 0)) throw new RangeError(`disconnectsPerWeek must be >= 0, got ${disconnects}`);
  return {
    seed: String(o.seed ?? 1),
    startUs: parseInstantUs(o.start ?? '2024-09-01T00:00:00Z', 'start'),
    days: positive(o.days, 7, 'days'),
    intervalMinutes: positive(o.intervalMinutes, 360, 'intervalMinutes'),
    jitterSeconds: Math.floor(jitter),
    targetConcurrent: positive(o.targetConcurrent, 60, 'targetConcurrent'),
    namespaces: [...namespaces],
    namespaceWeights: [...weights],
    usersPerNamespace: o.usersPerNamespace === undefined ? null : Math.max(1, Math.floor(o.usersPerNamespace)),
    gpuFraction: fraction(o.gpuFraction, 0.2, 'gpuFraction'),
    durationDistribution: distribution,
    minDurationMinutes: minD,
    maxDurationMinutes: maxD,
    medianDurationMinutes: positive(o.medianDurationMinutes, 240, 'medianDurationMinutes'),
    durationSigma: positive(o.durationSigma, 1.9, 'durationSigma'),
    earlyFailFraction: fraction(o.earlyFailFraction, 0, 'earlyFailFraction'),
    queueProbabilityCpu: fraction(o.queueProbabilityCpu, 0.05, 'queueProbabilityCpu'),
    queueProbabilityGpu: fraction(o.queueProbabilityGpu, 0.3, 'queueProbabilityGpu'),
    restartFraction: fraction(o.restartFraction, 0.05, 'restartFraction'),
    rescheduleFraction: fraction(o.rescheduleFraction, 0.03, 'rescheduleFraction'),
    failFraction: fraction(o.failFraction, 0.07, 'failFraction'),
    pullFailFraction: fraction(o.pullFailFraction, 0.01, 'pullFailFraction'),
    disconnectsPerWeek: disconnects,
    reconnectProbability: fraction(o.reconnectProbability, 0.6, 'reconnectProbability'),
    lostAfterMinutes: lostRange,
    missedProbability: fraction(missed.probability, 0, 'missed probability'),
    missedRanges: (missed.ranges ?? []).map((r) => ({
      fromUs: parseInstantUs(r.from, 'missed range start'),
      toUs: parseInstantUs(r.to, 'missed range end'),
    })),
    gcMinutes: gc ?? null,
    fullFields: o.fullFields ?? true,
  };
}
