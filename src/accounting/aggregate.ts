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

/** One lifetime's contribution over some microseconds: resource x time, as exact integers. */
interface Contribution {
  cpu: bigint;
  mhz: bigint;
  gpu: bigint;
  mem: bigint;
  disk: bigint;
}

function contribution(a: Amounts, us: number): Contribution {
  const t = BigInt(us);
  return {
    cpu: a.cpuMilli ? BigInt(a.cpuMilli) * t : 0n,
    mhz: a.cpuMhz ? BigInt(a.cpuMhz) * t : 0n,
    gpu: a.gpu ? BigInt(a.gpu) * t : 0n,
    mem: a.memoryBytes ? BigInt(a.memoryBytes) * t : 0n,
    disk: a.diskBytes ? BigInt(a.diskBytes) * t : 0n,
  };
}

/** Exact integer sums for one group. */
class Sums {
  cpu = 0n;
  mhz = 0n;
  gpu = 0n;
  mem = 0n;
  disk = 0n;
  readonly jobs = new Set<string>();
  readonly users = new Set<string>();
  allocations = 0;

  add(c: Contribution, jobKey: string, user: string | null): void {
    // Most amounts are zero (few GPUs, MHz or cores, not both): skip BigInt work for them.
    if (c.cpu) this.cpu += c.cpu;
    if (c.mhz) this.mhz += c.mhz;
    if (c.gpu) this.gpu += c.gpu;
    if (c.mem) this.mem += c.mem;
    if (c.disk) this.disk += c.disk;
    this.allocations++;
    this.jobs.add(jobKey);
    if (user !== null) this.users.add(user);
  }

  /** Adds another group's sums: totals add up, distinct ids unite. */
  merge(o: Sums): void {
    this.cpu += o.cpu;
    this.mhz += o.mhz;
    this.gpu += o.gpu;
    this.mem += o.mem;
    this.disk += o.disk;
    this.allocations += o.allocations;
    for (const j of o.jobs) this.jobs.add(j);
    for (const u of o.users) this.users.add(u);
  }

  hours(): Hours {
    return {
      cpu_hours: divide(this.cpu, DIVISORS.cpu_hours),
      cpu_mhz_hours: divide(this.mhz, DIVISORS.cpu_mhz_hours),
      gpu_hours: divide(this.gpu, DIVISORS.gpu_hours),
      memory_gib_hours: divide(this.mem, DIVISORS.memory_gib_hours),
      disk_gib_hours: divide(this.disk, DIVISORS.disk_gib_hours),
      jobs: this.jobs.size,
      users: this.users.size,
      allocations: this.allocations,
    };
  }
}

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

  add(id: string, keys: string[], c: Contribution, jobKey: string, user: string | null): void {
    let g = this.groups.get(id);
    if (!g) this.groups.set(id, (g = { keys, sums: new Sums() }));
    g.sums.add(c, jobKey, user);
    this.total.add(c, jobKey, user);
  }

  /** This grouping plus another's rows, as a new grouping. */
  plus(o: Grouping): Grouping {
    const out = new Grouping(this.by);
    for (const src of [this, o]) {
      for (const [id, g] of src.groups) {
        let t = out.groups.get(id);
        if (!t) out.groups.set(id, (t = { keys: g.keys, sums: new Sums() }));
        t.sums.merge(g.sums);
      }
      out.total.merge(src.total);
    }
    return out;
  }

  result(): Aggregate {
    const entries = [...this.groups.values()].sort((a, b) => compareKeys(a.keys, b.keys));
    return {
      rows: entries.map(({ keys, sums }) => {
        const row: Partial<Record<GroupKey, string>> = {};
        this.by.forEach((k, i) => (row[k] = keys[i]!));
        return { ...row, ...sums.hours() } as Row;
      }),
      total: this.total.hours(),
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
    const c = us > 0 ? contribution(l.amounts, us) : null;
    if (!isVanished) {
      if (c) settled.add(id, keys, c, jobKey, l.user);
      if (l.endKind === 'open' && l.endUs < period.endUs && us > 0) open++;
      continue;
    }
    if (c) est.add(id, keys, c, jobKey, l.user);
    const cl = lowUs === us ? c : lowUs > 0 ? contribution(l.amounts, lowUs) : null;
    const ch = highUs === us ? c : contribution(l.amounts, highUs);
    if (cl) low.add(id, keys, cl, jobKey, l.user);
    if (ch) high.add(id, keys, ch, jobKey, l.user);
    if (highUs > 0 && l.lowEndUs < period.endUs) vanished++;
  }
  return { ...settled.plus(est).result(), low: settled.plus(low).result(), high: settled.plus(high).result(), open, vanished };
}
