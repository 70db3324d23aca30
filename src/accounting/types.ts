import type { Amounts } from './resources.js';

/**
 * The accounting core's vocabulary. Everything here is plain data: no I/O, no clock.
 * Instants are integer microseconds since the Unix epoch (safe integers until year 2255).
 */

export type Micros = number;

/** Whether an observed allocation holds resources (docs/accounting.md#reconstruction). */
export type Phase = 'holding' | 'terminal' | 'none';

/** Resources in integer base units, declared in resources.ts. */
export type { Amounts };

export interface Attribution {
  namespace: string;
  jobId: string;
  jobName: string | null;
  user: string | null;
  group: string | null;
  component: string | null;
  node: string | null;
}

/** One allocation as one snapshot saw it. */
export interface Observation extends Attribution {
  /** Identity: `<source kind>:<allocation id>`. */
  key: string;
  status: string;
  phase: Phase;
  startUs: Micros | null;
  endUs: Micros | null;
  amounts: Amounts;
}

export interface QueuedObservation {
  namespace: string;
  jobId: string;
  user: string | null;
  group: string | null;
  queued: number;
}

/** Why a record or file was not used. Reasons are short fixed phrases, counted in reports. */
export interface Skip {
  reason: string;
  file: string;
  detail?: string;
}

/** One snapshot reduced to what accounting needs. */
export interface SnapshotObservations {
  file: string;
  timeUs: Micros;
  /** Namespaces whose capture succeeded: absence from this snapshot means "not running". */
  covered: ReadonlySet<string>;
  failedScopes: { namespace: string; reason: string }[];
  observations: Observation[];
  queued: QueuedObservation[];
  skips: Skip[];
  kind: 'native' | 'legacy';
  /** The cluster it was captured from ('' or absent: the unnamed one; docs/accounting.md#clusters). */
  cluster?: string;
}

/**
 * A snapshot given as its difference from the previous one: what is new or changed, and
 * which allocations are no longer listed. Everything else is listed as before. Readers
 * produce this form because most allocations look the same from one snapshot to the next.
 */
export interface SnapshotDelta extends Omit<SnapshotObservations, 'observations'> {
  /** Observations that are new, or differ from the allocation's previous one. */
  changed: Observation[];
  /** Keys of allocations listed in the previous snapshot and not in this one. */
  gone: string[];
}

export type EndKind = 'ended' | 'open' | 'vanished';

/** An allocation's reconstructed lifetime [startUs, endUs) with its sure bounds on the end. */
export interface Lifetime extends Attribution {
  key: string;
  amounts: Amounts;
  startUs: Micros;
  /** The estimate used for the reported numbers. */
  endUs: Micros;
  /** Sure bounds on the end: equal to endUs unless the allocation vanished. */
  lowEndUs: Micros;
  highEndUs: Micros;
  endKind: EndKind;
}

export type GapPolicy = 'last-seen' | 'midpoint' | 'next';

export interface Period {
  /** Inclusive first day and last day, YYYY-MM-DD. */
  from: string;
  to: string;
  timezone: string;
  startUs: Micros;
  /** Excluded end instant. */
  endUs: Micros;
}
