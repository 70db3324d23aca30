import type { Amounts, Lifetime, Micros, Period } from './types.js';

/**
 * Resource-hours per group (design.md rules 5, 7, 8): Σ resource × |lifetime ∩ period|,
 * summed exactly as integers (base units × microseconds, in BigInt) and divided once.
 */

export const GROUP_KEYS = ['namespace', 'user', 'group', 'job'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

export const UNATTRIBUTED = '(unattributed)';

export interface Filters {
  namespaces?: readonly string[];
  users?: readonly string[];
  groups?: readonly string[];
}

export interface Hours {
  cpu_hours: number;
  cpu_mhz_hours: number;
  gpu_hours: number;
  memory_gib_hours: number;
  disk_gib_hours: number;
  jobs: number;
  users: number;
  allocations: number;
}

export type Row = Partial<Record<GroupKey, string>> & Hours;

export interface Aggregate {
  rows: Row[];
  total: Hours;
}

export interface StatsResult extends Aggregate {
  low: Aggregate;
  high: Aggregate;
  /** Allocations whose counting stopped at the last snapshot, inside the period. */
  open: number;
  /** Allocations whose end is only known to lie in a band that overlaps the period. */
  vanished: number;
}

const MICROS_PER_HOUR = 3_600_000_000n;
const GIB = 1_073_741_824n;
/** Divisors from base units × µs to the reported unit-hours. */
const DIVISORS = {
  cpu_hours: 1000n * MICROS_PER_HOUR,
  cpu_mhz_hours: MICROS_PER_HOUR,
  gpu_hours: MICROS_PER_HOUR,
  memory_gib_hours: GIB * MICROS_PER_HOUR,
  disk_gib_hours: GIB * MICROS_PER_HOUR,
};

/**
 * Exact integer sums for one group. Resource x time is summed as Σ amount × Σ time over the
 * allocations that have the same amounts (a handful of flavours): microseconds add up as
 * plain numbers, spilled into a BigInt before they could lose precision, and only the
 * products at the end are BigInt. A hundred thousand allocations cost no BigInt work.
 */
interface Flavour {
  amounts: Amounts;
  us: number;
  spilled: bigint;
}

const SAFE = Number.MAX_SAFE_INTEGER;

class Sums {
  private readonly flavours = new Map<string, Flavour>();
  readonly jobs = new Set<string>();
  readonly users = new Set<string>();
  allocations = 0;

  add(a: Amounts, flavour: string, us: number, jobKey: string, user: string | null): void {
    let f = this.flavours.get(flavour);
    if (!f) this.flavours.set(flavour, (f = { amounts: a, us: 0, spilled: 0n }));
    if (f.us > SAFE - us) {
      f.spilled += BigInt(f.us);
      f.us = 0;
    }
    f.us += us;
    this.allocations++;
    this.jobs.add(jobKey);
    if (user !== null) this.users.add(user);
  }

  /**
   * The hours of this group and, if given, another's taken together: times add up per
   * flavour, distinct ids are counted over both without copying either set.
   */
  hours(o?: Sums): Hours {
    let cpu = 0n;
    let mhz = 0n;
    let gpu = 0n;
    let mem = 0n;
    let disk = 0n;
    for (const src of o ? [this, o] : [this]) {
      for (const f of src.flavours.values()) {
        const t = f.spilled + BigInt(f.us);
        const a = f.amounts;
        if (a.cpuMilli) cpu += BigInt(a.cpuMilli) * t;
        if (a.cpuMhz) mhz += BigInt(a.cpuMhz) * t;
        if (a.gpu) gpu += BigInt(a.gpu) * t;
        if (a.memoryBytes) mem += BigInt(a.memoryBytes) * t;
        if (a.diskBytes) disk += BigInt(a.diskBytes) * t;
      }
    }
    return {
      cpu_hours: divide(cpu, DIVISORS.cpu_hours),
      cpu_mhz_hours: divide(mhz, DIVISORS.cpu_mhz_hours),
      gpu_hours: divide(gpu, DIVISORS.gpu_hours),
      memory_gib_hours: divide(mem, DIVISORS.memory_gib_hours),
      disk_gib_hours: divide(disk, DIVISORS.disk_gib_hours),
      jobs: unionSize(this.jobs, o?.jobs),
      users: unionSize(this.users, o?.users),
      allocations: this.allocations + (o?.allocations ?? 0),
    };
  }
}

function unionSize(a: ReadonlySet<string>, b: ReadonlySet<string> | undefined): number {
  if (!b) return a.size;
  let n = a.size;
  for (const x of b) if (!a.has(x)) n++;
  return n;
}

const flavourOf = (a: Amounts): string => `${a.cpuMilli},${a.cpuMhz},${a.gpu},${a.memoryBytes},${a.diskBytes}`;

/** n / d as the nearest double, without first rounding n to a double. */
export function divide(n: bigint, d: bigint): number {
  const q = n / d;
  const r = n % d;
  return Number(q) + Number(r) / Number(d);
}

export function overlapUs(start: Micros, end: Micros, period: Pick<Period, 'startUs' | 'endUs'>): Micros {
  return Math.max(0, Math.min(end, period.endUs) - Math.max(start, period.startUs));
}

export function groupValue(l: Lifetime, key: GroupKey): string {
  switch (key) {
    case 'namespace':
      return l.namespace;
    case 'user':
      return l.user ?? UNATTRIBUTED;
    case 'group':
      return l.group ?? UNATTRIBUTED;
    case 'job':
      return l.jobId;
  }
}

export function matchesFilters(l: Lifetime, f: Filters): boolean {
  if (f.namespaces?.length && !f.namespaces.includes(l.namespace)) return false;
  if (f.users?.length && !f.users.includes(l.user ?? UNATTRIBUTED)) return false;
  if (f.groups?.length && !f.groups.includes(l.group ?? UNATTRIBUTED)) return false;
  return true;
}

class Grouping {
  readonly groups = new Map<string, { keys: string[]; sums: Sums }>();
  readonly total = new Sums();

  constructor(private readonly by: readonly GroupKey[]) {}

  add(id: string, keys: string[], a: Amounts, flavour: string, us: number, jobKey: string, user: string | null): void {
    let g = this.groups.get(id);
    if (!g) this.groups.set(id, (g = { keys, sums: new Sums() }));
    g.sums.add(a, flavour, us, jobKey, user);
    this.total.add(a, flavour, us, jobKey, user);
  }

  /** The rows and total of this grouping and, if given, another's taken together. */
  result(o?: Grouping): Aggregate {
    const ids = new Map(this.groups);
    if (o) for (const [id, g] of o.groups) if (!ids.has(id)) ids.set(id, g);
    const entries = [...ids].sort((a, b) => compareKeys(a[1].keys, b[1].keys));
    const hours = (id: string): Hours => {
      const mine = this.groups.get(id)?.sums;
      const theirs = o?.groups.get(id)?.sums;
      return mine ? mine.hours(theirs) : theirs!.hours();
    };
    return {
      rows: entries.map(([id, { keys }]) => {
        const row: Partial<Record<GroupKey, string>> = {};
        this.by.forEach((k, i) => (row[k] = keys[i]!));
        return { ...row, ...hours(id) } as Row;
      }),
      total: this.total.hours(o?.total),
    };
  }
}

/** Rows sort by key; the unattributed row goes last within its level. */
function compareKeys(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === UNATTRIBUTED) return 1;
    if (y === UNATTRIBUTED) return -1;
    return x < y ? -1 : 1;
  }
  return 0;
}

export function aggregate(lifetimes: Iterable<Lifetime>, period: Period, by: readonly GroupKey[], filters: Filters = {}): StatsResult {
  // Only vanished allocations have bounds that differ from their estimate, and they are
  // few: the others are summed once, into `settled`, and added to each of the three.
  const settled = new Grouping(by);
  const est = new Grouping(by);
  const low = new Grouping(by);
  const high = new Grouping(by);
  let open = 0;
  let vanished = 0;
  for (const l of lifetimes) {
    if (!matchesFilters(l, filters)) continue;
    const us = overlapUs(l.startUs, l.endUs, period);
    const isVanished = l.endKind === 'vanished';
    const lowUs = isVanished ? overlapUs(l.startUs, l.lowEndUs, period) : us;
    const highUs = isVanished ? overlapUs(l.startUs, l.highEndUs, period) : us;
    if (highUs <= 0 && us <= 0) continue;
    const keys = by.length === 1 ? [groupValue(l, by[0]!)] : by.map((k) => groupValue(l, k));
    const id = keys.length === 1 ? keys[0]! : keys.join('\u0000');
    const jobKey = `${l.namespace}\u0000${l.jobId}`;
    const flavour = flavourOf(l.amounts);
    if (!isVanished) {
      if (us > 0) settled.add(id, keys, l.amounts, flavour, us, jobKey, l.user);
      if (l.endKind === 'open' && l.endUs < period.endUs && us > 0) open++;
      continue;
    }
    if (us > 0) est.add(id, keys, l.amounts, flavour, us, jobKey, l.user);
    if (lowUs > 0) low.add(id, keys, l.amounts, flavour, lowUs, jobKey, l.user);
    if (highUs > 0) high.add(id, keys, l.amounts, flavour, highUs, jobKey, l.user);
    if (highUs > 0 && l.lowEndUs < period.endUs) vanished++;
  }
  return { ...settled.result(est), low: settled.result(low), high: settled.result(high), open, vanished };
}
