import { END_KIND_CODES, estimateColumns, LifetimeColumns, MAX_NAME_ID, MemoryNames, NO_NAME, type Names, type TrackColumns } from './columns.js';
import type { EstimateOptions } from './reconstruct.js';
import type { Amounts, Lifetime, Period } from './types.js';

/**
 * Resource-hours per group (design.md rules 5, 7, 8): Σ resource × |lifetime ∩ period|,
 * summed exactly as integers (base units × microseconds, in BigInt) and divided once.
 */

export const GROUP_KEYS = ['namespace', 'user', 'group', 'component', 'job'] as const;
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
  /** Wall-clock hours the allocations held resources (Σ |lifetime ∩ period|). */
  allocation_hours: number;
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

const SAFE = Number.MAX_SAFE_INTEGER;

/** CPU millicore-, MHz-, GPU-, memory byte- and disk byte-microseconds, then allocation-microseconds. */
type Products = [bigint, bigint, bigint, bigint, bigint, bigint];

/** The order of Products. */
const RESOURCES = ['cpuMilli', 'cpuMhz', 'gpu', 'memoryBytes', 'diskBytes'] as const;
const RESOURCE_COUNT = RESOURCES.length;

/**
 * What the aggregation keeps of each allocation that holds time in the period, as columns:
 * its group (slot), flavour, namespace, job and user ids,
 * and its microseconds in the period. No object per allocation or per group: a year of a
 * busy cluster is a hundred thousand entries. At the end they are grouped by slot with a
 * counting sort (slots are dense), so each group's entries are one range of `order`.
 */
class Entries {
  n = 0;
  slot = new Int32Array(1024);
  flavour = new Int32Array(1024);
  namespace = new Int32Array(1024);
  job = new Int32Array(1024);
  user = new Int32Array(1024);
  us = new Float64Array(1024);
  /** Set by bySlot: entry indexes grouped by slot, and where each slot's range starts. */
  order = new Int32Array(0);
  starts = new Int32Array(1);

  push(slot: number, flavour: number, namespace: number, job: number, user: number, us: number): void {
    if (this.n === this.us.length) this.grow();
    const i = this.n++;
    this.slot[i] = slot;
    this.flavour[i] = flavour;
    this.namespace[i] = namespace;
    this.job[i] = job;
    this.user[i] = user;
    this.us[i] = us;
  }

  private grow(): void {
    const size = this.n * 2;
    const wider = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a);
      return b;
    };
    const i32 = (n: number) => new Int32Array(n);
    this.slot = wider(this.slot, i32);
    this.flavour = wider(this.flavour, i32);
    this.namespace = wider(this.namespace, i32);
    this.job = wider(this.job, i32);
    this.user = wider(this.user, i32);
    this.us = wider(this.us, (n) => new Float64Array(n));
  }

  /** Groups the entries by slot (a stable counting sort into `order`). */
  bySlot(slots: number): void {
    const starts = new Int32Array(slots + 1);
    const slot = this.slot;
    for (let i = 0; i < this.n; i++) starts[slot[i]! + 1]!++;
    for (let s = 0; s < slots; s++) starts[s + 1]! += starts[s]!;
    const next = starts.slice(0, slots);
    const order = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) order[next[slot[i]!]!++] = i;
    this.order = order;
    this.starts = starts;
  }

  /** How many entries a slot has (after bySlot). */
  count(slot: number): number {
    return this.starts[slot + 1]! - this.starts[slot]!;
  }
}

/**
 * The flavours of the dictionary (by flavour id), ranked once per report. Each distinct non-zero
 * amount of each resource gets a rank, and each flavour the ranks of its amounts (-1 for
 * zero). A group's times are summed per rank, as plain numbers, so its exact products are
 * a handful per resource however many flavours it holds: a year of a busy cluster has
 * thousands of flavours (every mix of amounts) but fewer than a hundred amounts each.
 */
class RankTable {
  /** Per flavour, the rank of each resource's amount (flavour × RESOURCE_COUNT + resource). */
  readonly ranks: Int32Array;
  /** Per rank: its amount, and which resource it is. */
  readonly amount: number[] = [];
  readonly resource: number[] = [];
  /** Scratch for one group: µs per rank (zero between uses), and the ranks it touched. */
  readonly sums: Float64Array;
  readonly touched: Int32Array;
  readonly isTouched: Uint8Array;

  constructor(flavours: readonly Amounts[]) {
    const rankOf = RESOURCES.map(() => new Map<number, number>());
    this.ranks = new Int32Array(flavours.length * RESOURCE_COUNT);
    flavours.forEach((a, f) => {
      for (let r = 0; r < RESOURCE_COUNT; r++) {
        const amount = a[RESOURCES[r]!];
        let k = -1;
        if (amount !== 0) {
          k = rankOf[r]!.get(amount) ?? -1;
          if (k < 0) {
            k = this.amount.push(amount) - 1;
            this.resource.push(r);
            rankOf[r]!.set(amount, k);
          }
        }
        this.ranks[f * RESOURCE_COUNT + r] = k;
      }
    });
    this.sums = new Float64Array(this.amount.length);
    this.touched = new Int32Array(this.amount.length);
    this.isTouched = new Uint8Array(this.amount.length);
  }

  /**
   * Σ amount × time per resource over one slot's entries, and their allocation time, in
   * base units × µs. Sums of µs stay exact as plain numbers until they would pass 2^53,
   * and then spill into a BigInt; a product is a BigInt only when it could be inexact.
   */
  products(e: Entries, slot: number): Products {
    const { ranks, sums, touched, isTouched } = this;
    const { order, flavour, us: usOf } = e;
    let touchedCount = 0;
    /** Per rank, the part of its sum that spilled (rare: 2^53 µs is 285 years). */
    let spilled: Map<number, bigint> | null = null;
    let allocationUs = 0;
    let allocationBig = 0n;
    for (let j = e.starts[slot]!, to = e.starts[slot + 1]!; j < to; j++) {
      const i = order[j]!;
      const us = usOf[i]!;
      if (allocationUs > SAFE - us) {
        allocationBig += BigInt(allocationUs);
        allocationUs = 0;
      }
      allocationUs += us;
      const at = flavour[i]! * RESOURCE_COUNT;
      for (let r = 0; r < RESOURCE_COUNT; r++) {
        const k = ranks[at + r]!;
        if (k < 0) continue;
        if (isTouched[k] === 0) {
          isTouched[k] = 1;
          touched[touchedCount++] = k;
        }
        const before = sums[k]!;
        if (before > SAFE - us) {
          spilled ??= new Map();
          spilled.set(k, (spilled.get(k) ?? 0n) + BigInt(before));
          sums[k] = us;
        } else sums[k] = before + us;
      }
    }
    const out: Products = [0n, 0n, 0n, 0n, 0n, allocationBig + BigInt(allocationUs)];
    for (let x = 0; x < touchedCount; x++) {
      const k = touched[x]!;
      const r = this.resource[k]!;
      const amount = this.amount[k]!;
      const time = sums[k]!;
      sums[k] = 0;
      isTouched[k] = 0;
      // A double product at most 2^53 - 1 is exact (rounding is monotonic, 2^53 is a double).
      const product = amount * time;
      out[r]! += product <= SAFE ? BigInt(product) : BigInt(amount) * BigInt(time);
      const big = spilled?.get(k);
      if (big !== undefined) out[r]! += BigInt(amount) * big;
    }
    return out;
  }
}

/**
 * Counts distinct values over entries, by stamping each value's slot in a table instead
 * of sorting or hashing: a year of a busy cluster is a hundred thousand jobs and users,
 * counted several times per report (each group, each bound, the total).
 */
class Distinct {
  private stamp = new Int32Array(1024);
  /** For jobs: the namespace the stamped job id was seen with. */
  private namespaceOf = new Int32Array(1024);
  private current = 0;
  /** (namespace, job) pairs whose job id was first seen under another namespace in this count. */
  private readonly more = new Set<number>();

  /**
   * Distinct users (attributed ones) among the entries of a slot, or of all entries when
   * slot is null, over several sets of entries.
   */
  users(parts: readonly Entries[], slot: number | null): number {
    const cur = ++this.current;
    let n = 0;
    for (const e of parts) {
      const user = e.user;
      const [from, to] = slot === null ? [0, e.n] : [e.starts[slot]!, e.starts[slot + 1]!];
      for (let j = from; j < to; j++) {
        const id = user[slot === null ? j : e.order[j]!]!;
        if (id < 0) continue;
        if (id >= this.stamp.length) this.grow(id);
        if (this.stamp[id] !== cur) {
          this.stamp[id] = cur;
          n++;
        }
      }
    }
    return n;
  }

  /** Distinct (namespace, job) pairs, like users: job ids are stamped, namespaces checked. */
  jobs(parts: readonly Entries[], slot: number | null): number {
    const cur = ++this.current;
    this.more.clear();
    let n = 0;
    for (const e of parts) {
      const { job: jobs, namespace } = e;
      const [from, to] = slot === null ? [0, e.n] : [e.starts[slot]!, e.starts[slot + 1]!];
      for (let j = from; j < to; j++) {
        const i = slot === null ? j : e.order[j]!;
        const job = jobs[i]!;
        const ns = namespace[i]!;
        if (job >= this.stamp.length) this.grow(job);
        if (this.stamp[job] !== cur) {
          this.stamp[job] = cur;
          this.namespaceOf[job] = ns;
          n++;
        } else if (this.namespaceOf[job] !== ns) {
          // The same job id in another namespace: a job of its own (rare).
          const key = ns * MAX_NAME_ID + job;
          if (!this.more.has(key)) {
            this.more.add(key);
            n++;
          }
        }
      }
    }
    return n;
  }

  private grow(id: number): void {
    const size = Math.max(id + 1, this.stamp.length * 2);
    const stamp = new Int32Array(size);
    stamp.set(this.stamp);
    const ns = new Int32Array(size);
    ns.set(this.namespaceOf);
    this.stamp = stamp;
    this.namespaceOf = ns;
  }
}

function addProducts(into: Products, p: Products): void {
  for (let k = 0; k < into.length; k++) into[k]! += p[k]!;
}

function hoursOf(p: Products, jobs: number, users: number, allocations: number): Hours {
  return {
    cpu_hours: divide(p[0], DIVISORS.cpu_hours),
    cpu_mhz_hours: divide(p[1], DIVISORS.cpu_mhz_hours),
    gpu_hours: divide(p[2], DIVISORS.gpu_hours),
    memory_gib_hours: divide(p[3], DIVISORS.memory_gib_hours),
    disk_gib_hours: divide(p[4], DIVISORS.disk_gib_hours),
    allocation_hours: divide(p[5], MICROS_PER_HOUR),
    jobs,
    users,
    allocations,
  };
}

/** n / d as the nearest double, without first rounding n to a double. */
export function divide(n: bigint, d: bigint): number {
  const q = n / d;
  const r = n % d;
  return Number(q) + Number(r) / Number(d);
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

/** Stands for "no user" or "no group" as a row key, when no such name was ever stored. */
const UNATTRIBUTED_ID = -2;

/**
 * Sums lifetimes, given as columns, for one period and grouping. Only vanished allocations
 * have bounds that differ from their estimate: the others are kept once, in `settled`,
 * and taken together with each of the three vanished sets for the results.
 */
export class Aggregator {
  private readonly settled = new Entries();
  private readonly est = new Entries();
  private readonly low = new Entries();
  private readonly high = new Entries();
  private open = 0;
  private vanished = 0;
  /** The id a missing user or group groups under: the literal name's, if stored. */
  private readonly unattributed: number;
  private readonly only: { namespace: Set<number> | null; user: Set<number> | null; group: Set<number> | null };
  /** Group slots: by key id (one key), or by the ids joined (several); 0 = none yet, else slot + 1. */
  private slotById = new Int32Array(1024);
  private readonly slotByIds = new Map<string, number>();
  /** Two keys: both ids (offset past the negative sentinels) packed into one number. */
  private readonly slotByPair = new Map<number, number>();
  private unattributedSlot = -1;
  private readonly keys: number[][] = [];

  constructor(
    private readonly period: Pick<Period, 'startUs' | 'endUs'>,
    private readonly by: readonly GroupKey[],
    filters: Filters,
    private readonly names: Names,
  ) {
    this.unattributed = names.lookup(UNATTRIBUTED) ?? UNATTRIBUTED_ID;
    const ids = (values: readonly string[] | undefined): Set<number> | null => {
      if (!values?.length) return null;
      const out = new Set<number>();
      for (const v of values) {
        const id = v === UNATTRIBUTED ? this.unattributed : names.lookup(v);
        if (id !== undefined) out.add(id);
      }
      return out;
    };
    this.only = { namespace: ids(filters.namespaces), user: ids(filters.users), group: ids(filters.groups) };
  }

  /** The column a group key reads (users and groups may hold NO_NAME: unattributed). */
  private column(b: LifetimeColumns, k: GroupKey): Int32Array {
    return k === 'namespace' ? b.namespace : k === 'user' ? b.user : k === 'group' ? b.group : k === 'component' ? b.component : b.job;
  }

  private slotOf(id: number): number {
    if (id < 0) {
      if (this.unattributedSlot < 0) this.unattributedSlot = this.newSlot([id]);
      return this.unattributedSlot;
    }
    if (id >= this.slotById.length) {
      const grown = new Int32Array(Math.max(id + 1, this.slotById.length * 2));
      grown.set(this.slotById);
      this.slotById = grown;
    }
    const s = this.slotById[id]!;
    if (s > 0) return s - 1;
    const slot = this.newSlot([id]);
    this.slotById[id] = slot + 1;
    return slot;
  }

  private slotOfIds(ids: number[]): number {
    const joined = ids.join(',');
    let slot = this.slotByIds.get(joined);
    if (slot === undefined) this.slotByIds.set(joined, (slot = this.newSlot(ids)));
    return slot;
  }

  private slotOfPair(a: number, b: number): number {
    const packed = (a + 2) * (MAX_NAME_ID + 2) + (b + 2);
    let slot = this.slotByPair.get(packed);
    if (slot === undefined) this.slotByPair.set(packed, (slot = this.newSlot([a, b])));
    return slot;
  }

  private newSlot(keys: number[]): number {
    this.keys.push(keys);
    return this.keys.length - 1;
  }

  add(b: LifetimeColumns): void {
    const { startUs: p0, endUs: p1 } = this.period;
    const un = this.unattributed;
    const only = this.only;
    const single = this.by.length === 1 ? this.column(b, this.by[0]!) : null;
    const cols = this.by.map((k) => ({ col: this.column(b, k), nullable: k === 'user' || k === 'group' || k === 'component' }));
    const VANISHED = END_KIND_CODES.vanished;
    const OPEN = END_KIND_CODES.open;
    for (let i = 0; i < b.length; i++) {
      if (only.namespace && !only.namespace.has(b.namespace[i]!)) continue;
      if (only.user && !only.user.has(b.user[i] === NO_NAME ? un : b.user[i]!)) continue;
      if (only.group && !only.group.has(b.group[i] === NO_NAME ? un : b.group[i]!)) continue;
      const start = b.start[i]!;
      const from = start > p0 ? start : p0;
      const end = b.end[i]!;
      const us = Math.max(0, (end < p1 ? end : p1) - from);
      const kind = b.kind[i]!;
      const isVanished = kind === VANISHED;
      const highUs = isVanished ? Math.max(0, Math.min(b.high[i]!, p1) - from) : us;
      if (highUs <= 0 && us <= 0) continue;
      let slot: number;
      if (single) {
        const id = single[i]!;
        slot = this.slotOf(id === NO_NAME ? un : id);
      } else if (cols.length === 2) {
        const [x, y] = cols as [(typeof cols)[0], (typeof cols)[0]];
        const a = x.col[i]!;
        const c = y.col[i]!;
        slot = this.slotOfPair(x.nullable && a === NO_NAME ? un : a, y.nullable && c === NO_NAME ? un : c);
      } else {
        slot = this.slotOfIds(cols.map(({ col, nullable }) => (nullable && col[i] === NO_NAME ? un : col[i]!)));
      }
      const flavour = b.flavour[i]!;
      const namespace = b.namespace[i]!;
      const job = b.job[i]!;
      const user = b.user[i]!;
      if (!isVanished) {
        if (us > 0) {
          this.settled.push(slot, flavour, namespace, job, user, us);
          if (kind === OPEN && end < p1) this.open++;
        }
        continue;
      }
      const lowUs = Math.max(0, Math.min(b.low[i]!, p1) - from);
      if (us > 0) this.est.push(slot, flavour, namespace, job, user, us);
      if (lowUs > 0) this.low.push(slot, flavour, namespace, job, user, lowUs);
      if (highUs > 0) this.high.push(slot, flavour, namespace, job, user, highUs);
      if (highUs > 0 && b.low[i]! < p1) this.vanished++;
    }
  }

  result(): StatsResult {
    const slots = this.keys.length;
    const { settled } = this;
    for (const e of [settled, this.est, this.low, this.high]) e.bySlot(slots);
    const ids = new Set<number>();
    for (const keys of this.keys) for (const k of keys) ids.add(k);
    this.names.prefetch?.(ids);
    const name = (id: number) => (id === UNATTRIBUTED_ID ? UNATTRIBUTED : this.names.name(id));
    const table = new RankTable(this.names.flavours());
    const distinct = new Distinct();
    // The settled part of a group is shared by the three results: summed and counted once.
    const settledProducts: (Products | undefined)[] = [];
    const settledCounts: ({ jobs: number; users: number } | undefined)[] = [];
    const rowKeys = this.keys.map((keys) => keys.map(name));
    const order = rowKeys.map((_, slot) => slot).sort((a, b) => compareKeys(rowKeys[a]!, rowKeys[b]!));
    // Each (namespace, job) and each user falls in one group when the grouping says which.
    const jobsDisjoint = this.by.includes('namespace') || this.by.includes('job');
    const usersDisjoint = this.by.includes('user');

    const combine = (other: Entries): Aggregate => {
      const rows: Row[] = [];
      const total: Products = [0n, 0n, 0n, 0n, 0n, 0n];
      let totalAllocations = 0;
      let totalJobs = 0;
      let totalUsers = 0;
      for (const slot of order) {
        const mine = settled.count(slot);
        const theirs = other.count(slot);
        if (mine === 0 && theirs === 0) continue;
        const p: Products = [0n, 0n, 0n, 0n, 0n, 0n];
        if (mine > 0) addProducts(p, (settledProducts[slot] ??= table.products(settled, slot)));
        if (theirs > 0) addProducts(p, table.products(other, slot));
        let counts;
        if (theirs === 0) counts = settledCounts[slot] ??= { jobs: distinct.jobs([settled], slot), users: distinct.users([settled], slot) };
        else counts = { jobs: distinct.jobs([settled, other], slot), users: distinct.users([settled, other], slot) };
        const row: Partial<Record<GroupKey, string>> = {};
        this.by.forEach((k, i) => (row[k] = rowKeys[slot]![i]!));
        rows.push({ ...row, ...hoursOf(p, counts.jobs, counts.users, mine + theirs) } as Row);
        addProducts(total, p);
        totalAllocations += mine + theirs;
        totalJobs += counts.jobs;
        totalUsers += counts.users;
      }
      if (!jobsDisjoint) totalJobs = distinct.jobs([settled, other], null);
      if (!usersDisjoint) totalUsers = distinct.users([settled, other], null);
      return { rows, total: hoursOf(total, totalJobs, totalUsers, totalAllocations) };
    };
    return { ...combine(this.est), low: combine(this.low), high: combine(this.high), open: this.open, vanished: this.vanished };
  }
}

/** Stats over lifetimes given as objects (tests, the simulator's truth). */
export function aggregate(lifetimes: Iterable<Lifetime>, period: Period, by: readonly GroupKey[], filters: Filters = {}): StatsResult {
  const names = new MemoryNames();
  const batches: LifetimeColumns[] = [];
  let b = new LifetimeColumns(4096);
  for (const l of lifetimes) {
    b.push(l, names);
    if (b.full) {
      batches.push(b);
      b = new LifetimeColumns(4096);
    }
  }
  batches.push(b);
  const agg = new Aggregator(period, by, filters, names);
  for (const batch of batches) agg.add(batch);
  return agg.result();
}

/** Stats over tracks given as columns (what reports read from the index or the files). */
export function aggregateTracks(
  tracks: Iterable<TrackColumns>,
  names: Names,
  period: Pick<Period, 'startUs' | 'endUs'>,
  by: readonly GroupKey[],
  filters: Filters,
  estimate: EstimateOptions,
): StatsResult & { tracks: number } {
  const agg = new Aggregator(period, by, filters, names);
  let lifetimes = new LifetimeColumns(0);
  let n = 0;
  for (const t of tracks) {
    lifetimes = estimateColumns(t, estimate, lifetimes);
    agg.add(lifetimes);
    n += t.length;
  }
  return { ...agg.result(), tracks: n };
}
