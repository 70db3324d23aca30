import { amountsOfFlavour, END_KIND_CODES, estimateColumns, LifetimeColumns, MAX_NAME_ID, MemoryNames, NO_NAME, type Names, type TrackColumns } from './columns.js';
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

/**
 * Exact integer sums for one group. Resource x time is summed as Σ amount × Σ time over the
 * allocations that have the same amounts (their flavour): microseconds add up as plain
 * numbers, spilled into a BigInt before they could lose precision, and only the products
 * at the end are BigInt. Flavours, jobs and users are dictionary ids (see columns.ts).
 * Jobs and users are listed with repeats; Distinct counts them at the end.
 */
interface Flavour {
  us: number;
  spilled: bigint;
}

const SAFE = Number.MAX_SAFE_INTEGER;

/** CPU millicore-, MHz-, GPU-, memory byte- and disk byte-microseconds, then allocation-microseconds. */
type Products = [bigint, bigint, bigint, bigint, bigint, bigint];

/** A job is (namespace, job id): both ids packed into one safe integer. */
const JOB_KEY = MAX_NAME_ID;

class Sums {
  readonly flavours = new Map<number, Flavour>();
  /** Packed job keys and user ids, with repeats. */
  readonly jobs = new NumberList();
  readonly users = new NumberList();
  allocations = 0;
  private totals: Products | null = null;

  add(flavour: number, us: number, job: number, user: number): void {
    let f = this.flavours.get(flavour);
    if (!f) this.flavours.set(flavour, (f = { us: 0, spilled: 0n }));
    if (f.us > SAFE - us) {
      f.spilled += BigInt(f.us);
      f.us = 0;
    }
    f.us += us;
    this.allocations++;
    this.jobs.push(job);
    if (user !== NO_NAME) this.users.push(user);
  }

  /**
   * Σ amount × time per resource, in base units × µs (computed once). Flavours are many
   * (every mix of amounts), amounts per resource few: times are summed per amount first,
   * in small arrays indexed by the amount's rank (see FlavourTable), so only a handful of
   * BigInt products remain.
   */
  products(table: FlavourTable): Products {
    if (this.totals) return this.totals;
    // Ranks first: the table may learn new amounts, and its scratch arrays grow with it.
    for (const id of this.flavours.keys()) table.learn(id);
    const { ranks, scratch, touched } = table.prepare();
    /** Per resource, the BigInt part of a rank's sum, when it spilled (rare). */
    let spilled: Map<number, bigint>[] | null = null;
    let allocationUs = 0n;
    for (const [id, f] of this.flavours) {
      const at = table.indexOf(id) * RESOURCE_COUNT;
      for (let r = 0; r < RESOURCE_COUNT; r++) {
        const k = ranks[at + r]!;
        if (k < 0) continue;
        const sums = scratch[r]!;
        const before = sums[k]!;
        if (before === 0) touched[r]!.push(k);
        if (before > SAFE - f.us || f.spilled !== 0n) {
          spilled ??= RESOURCES.map(() => new Map<number, bigint>());
          const big = spilled[r]!;
          big.set(k, (big.get(k) ?? 0n) + BigInt(before === Number.MIN_VALUE ? 0 : before) + f.spilled);
          // Keep the rank marked as touched even when its plain part is zero.
          sums[k] = f.us === 0 ? Number.MIN_VALUE : f.us;
        } else sums[k] = before + f.us;
      }
      allocationUs += f.spilled + BigInt(f.us);
    }
    const totals = touched.map((ks, r) => {
      let p = 0n;
      const sums = scratch[r]!;
      for (const k of ks) {
        const t = sums[k] === Number.MIN_VALUE ? 0 : sums[k]!;
        p += BigInt(table.amounts[r]![k]!) * ((spilled?.[r]!.get(k) ?? 0n) + BigInt(t));
        sums[k] = 0;
      }
      ks.length = 0;
      return p;
    });
    return (this.totals = [...totals, allocationUs] as Products);
  }
}

/** The order of Products. */
const RESOURCES = ['cpuMilli', 'cpuMhz', 'gpu', 'memoryBytes', 'diskBytes'] as const;
const RESOURCE_COUNT = RESOURCES.length;

/**
 * The amounts of the flavours an aggregation met, parsed once: per resource, the distinct
 * non-zero amounts, and per flavour the rank of each of its amounts (-1 for zero).
 */
class FlavourTable {
  /** Per resource, its distinct non-zero amounts. */
  readonly amounts: number[][] = RESOURCES.map(() => []);
  /** Per flavour met (by its index), the rank of each resource's amount, -1 for zero. */
  ranks = new Int32Array(1024 * RESOURCE_COUNT);
  private readonly rankOfAmount = RESOURCES.map(() => new Map<number, number>());
  private readonly index = new Map<number, number>();

  constructor(private readonly amountsOf: (flavour: number) => Amounts) {}

  /** Per resource, a sum per rank, all zero between uses, and the ranks a use touched. */
  private scratch: Float64Array[] = RESOURCES.map(() => new Float64Array(0));
  private readonly touched: number[][] = RESOURCES.map(() => []);

  /** The ranks and the scratch sums, sized for every amount learnt so far. */
  prepare(): { ranks: Int32Array; scratch: Float64Array[]; touched: number[][] } {
    this.scratch = this.scratch.map((a, r) => {
      const n = this.amounts[r]!.length;
      if (a.length >= n) return a;
      const grown = new Float64Array(Math.max(n, a.length * 2));
      grown.set(a);
      return grown;
    });
    return { ranks: this.ranks, scratch: this.scratch, touched: this.touched };
  }

  /** The flavour's index (see ranks); it must have been learnt. */
  indexOf(flavour: number): number {
    return this.index.get(flavour)!;
  }

  learn(flavour: number): void {
    if (this.index.has(flavour)) return;
    const i = this.index.size;
    this.index.set(flavour, i);
    if ((i + 1) * RESOURCE_COUNT > this.ranks.length) {
      const grown = new Int32Array(this.ranks.length * 2);
      grown.set(this.ranks);
      this.ranks = grown;
    }
    const a = this.amountsOf(flavour);
    for (let r = 0; r < RESOURCE_COUNT; r++) {
      const amount = a[RESOURCES[r]!];
      let k = -1;
      if (amount !== 0) {
        k = this.rankOfAmount[r]!.get(amount) ?? -1;
        if (k < 0) {
          k = this.amounts[r]!.push(amount) - 1;
          this.rankOfAmount[r]!.set(amount, k);
        }
      }
      this.ranks[i * RESOURCE_COUNT + r] = k;
    }
  }
}

/** A growable list of numbers in one typed array (no boxed numbers, little garbage). */
class NumberList {
  private items = new Float64Array(16);
  private n = 0;

  push(x: number): void {
    if (this.n === this.items.length) {
      const grown = new Float64Array(Math.max(16, this.n * 2));
      grown.set(this.items);
      this.items = grown;
    }
    this.items[this.n++] = x;
  }

  /** The numbers so far (a view: valid until the next push). */
  view(): Float64Array {
    return this.items.subarray(0, this.n);
  }
}

/**
 * Counts distinct values over lists with repeats, by stamping each value's slot in a table
 * instead of sorting or hashing: a year of a busy cluster is a hundred thousand jobs and
 * users, counted several times per report (each group, each bound, the total).
 */
class Distinct {
  private stamp = new Int32Array(1024);
  /** For jobs: the namespace the stamped job id was seen with. */
  private namespaceOf = new Int32Array(1024);
  private current = 0;
  /** Job keys whose job id was first seen under another namespace in this count. */
  private readonly more = new Set<number>();

  /** Distinct user ids (dictionary ids) over the lists. */
  users(lists: readonly Float64Array[]): number {
    const cur = ++this.current;
    let n = 0;
    for (const l of lists) {
      for (let i = 0; i < l.length; i++) {
        const id = l[i]!;
        if (id >= this.stamp.length) this.grow(id);
        if (this.stamp[id] !== cur) {
          this.stamp[id] = cur;
          n++;
        }
      }
    }
    return n;
  }

  /** Distinct (namespace, job) keys over the lists; job ids are stamped, namespaces checked. */
  jobs(lists: readonly Float64Array[]): number {
    const cur = ++this.current;
    this.more.clear();
    let n = 0;
    for (const l of lists) {
      for (let i = 0; i < l.length; i++) {
        const key = l[i]!;
        const ns = Math.floor(key / JOB_KEY);
        const job = key - ns * JOB_KEY;
        if (job >= this.stamp.length) this.grow(job);
        if (this.stamp[job] !== cur) {
          this.stamp[job] = cur;
          this.namespaceOf[job] = ns;
          n++;
        } else if (this.namespaceOf[job] !== ns && !this.more.has(key)) {
          // The same job id in another namespace: a job of its own (rare).
          this.more.add(key);
          n++;
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

/** Sums per group (by slot) for one set of allocations: settled, or vanished under one bound. */
type Grouping = (Sums | undefined)[];

/**
 * Sums lifetimes, given as columns, for one period and grouping. Only vanished allocations
 * have bounds that differ from their estimate: the others are summed once, into `settled`,
 * and taken together with each of the three vanished sums for the results.
 */
export class Aggregator {
  private readonly settled: Grouping = [];
  private readonly est: Grouping = [];
  private readonly low: Grouping = [];
  private readonly high: Grouping = [];
  private open = 0;
  private vanished = 0;
  /** The id a missing user or group groups under: the literal name's, if stored. */
  private readonly unattributed: number;
  private readonly only: { namespace: Set<number> | null; user: Set<number> | null; group: Set<number> | null };
  private readonly flavours = new Map<number, Amounts>();
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
      const job = b.namespace[i]! * JOB_KEY + b.job[i]!;
      const flavour = b.flavour[i]!;
      const user = b.user[i]!;
      if (!isVanished) {
        if (us > 0) (this.settled[slot] ??= new Sums()).add(flavour, us, job, user);
        if (kind === OPEN && end < p1 && us > 0) this.open++;
        continue;
      }
      const lowUs = Math.max(0, Math.min(b.low[i]!, p1) - from);
      if (us > 0) (this.est[slot] ??= new Sums()).add(flavour, us, job, user);
      if (lowUs > 0) (this.low[slot] ??= new Sums()).add(flavour, lowUs, job, user);
      if (highUs > 0) (this.high[slot] ??= new Sums()).add(flavour, highUs, job, user);
      if (highUs > 0 && b.low[i]! < p1) this.vanished++;
    }
  }

  result(): StatsResult {
    const ids = new Set<number>();
    for (const keys of this.keys) for (const k of keys) ids.add(k);
    for (const g of [this.settled, this.est, this.low, this.high]) for (const sums of g) if (sums) for (const f of sums.flavours.keys()) ids.add(f);
    this.names.prefetch?.(ids);
    const name = (id: number) => (id === UNATTRIBUTED_ID ? UNATTRIBUTED : this.names.name(id));
    const table = new FlavourTable((f: number) => {
      let a = this.flavours.get(f);
      if (!a) this.flavours.set(f, (a = amountsOfFlavour(this.names.name(f))));
      return a;
    });
    const distinct = new Distinct();
    /** Counts for one Sums alone, shared by the three results (most groups have no vanished part). */
    const alone = new Map<Sums, { jobs: number; users: number }>();
    const rowKeys = this.keys.map((keys) => keys.map(name));
    const order = rowKeys.map((_, slot) => slot).sort((a, b) => compareKeys(rowKeys[a]!, rowKeys[b]!));
    // Each (namespace, job) and each user falls in one group when the grouping says which.
    const jobsDisjoint = this.by.includes('namespace') || this.by.includes('job');
    const usersDisjoint = this.by.includes('user');

    const combine = (other: Grouping): Aggregate => {
      const rows: Row[] = [];
      const total: Products = [0n, 0n, 0n, 0n, 0n, 0n];
      let totalAllocations = 0;
      let totalJobs = 0;
      let totalUsers = 0;
      const allJobs: Float64Array[] = [];
      const allUsers: Float64Array[] = [];
      for (const slot of order) {
        const parts = [this.settled[slot], other[slot]].filter((x): x is Sums => x !== undefined);
        if (parts.length === 0) continue;
        const p: Products = [0n, 0n, 0n, 0n, 0n, 0n];
        for (const s of parts) addProducts(p, s.products(table));
        const jobLists = parts.map((s) => s.jobs.view());
        const userLists = parts.map((s) => s.users.view());
        let counts = parts.length === 1 ? alone.get(parts[0]!) : undefined;
        if (!counts) {
          counts = { jobs: distinct.jobs(jobLists), users: distinct.users(userLists) };
          if (parts.length === 1) alone.set(parts[0]!, counts);
        }
        const { jobs, users } = counts;
        const allocations = parts.reduce((n, s) => n + s.allocations, 0);
        const row: Partial<Record<GroupKey, string>> = {};
        this.by.forEach((k, i) => (row[k] = rowKeys[slot]![i]!));
        rows.push({ ...row, ...hoursOf(p, jobs, users, allocations) } as Row);
        addProducts(total, p);
        totalAllocations += allocations;
        if (jobsDisjoint) totalJobs += jobs;
        else allJobs.push(...jobLists);
        if (usersDisjoint) totalUsers += users;
        else allUsers.push(...userLists);
      }
      if (!jobsDisjoint) totalJobs = distinct.jobs(allJobs);
      if (!usersDisjoint) totalUsers = distinct.users(allUsers);
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
