import type { Aggregate, AggregateOptions, Filters, GroupKey, Row, StatsResult } from '../aggregate.js';
import { END_KIND_CODES, type LifetimeColumns, MAX_NAME_ID, NO_NAME, type Names } from '../columns.js';
import type { Period } from '../types.js';
import { clipVanishedRows, Entries } from './entries.js';
import { GroupTally } from './group-tally.js';
import { HOUR_FIELDS, hoursOf } from './hours.js';
import { NamespaceParts } from './namespace-parts.js';
import { RankTable } from './rank-table.js';

/**
 * The fast kernel behind aggregate() and aggregateTracks() (../aggregate.ts): the Aggregator
 * clips batches of lifetime columns (../columns.ts) to the period into entries, finding each row's group
 * slot in dense tables by name id (no string keys on the common paths), then sums each
 * group with the rank table and counts it with stamps. The reference core
 * (../reference.ts) computes the same results plainly; a property test holds the two equal.
 */

/** The row name of allocations without a user or group (a filter may name it too). */
export const UNATTRIBUTED = '(unattributed)';

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

const { open: OPEN_CODE, vanished: VANISHED_CODE } = END_KIND_CODES;

/** Group keys a row may lack (NO_NAME): it then groups as unattributed. */
const NULLABLE_KEYS: ReadonlySet<GroupKey> = new Set(['user', 'group', 'component']);

/** Stands for "no user" or "no group" as a row key, when no such name was ever stored. */
const UNATTRIBUTED_ID = -2;

/**
 * Sums lifetimes, given as columns, for one period and grouping. Only vanished allocations
 * have bounds that differ from their estimate: the others are kept once, in `settled`,
 * and the vanished ones in `unsettled`, with a time under each bound (see GroupTally).
 */
export class Aggregator {
  /** The cells of the slot tables of two-key groupings, at most (16 MB; tests lower it). */
  static pairTableCells = 4 * 1024 * 1024;
  /** Up to this many groups, bounds wanted in total only are still summed per group (see result; tests lower it). */
  static fewGroups = 64;
  private readonly groupBounds: boolean;
  private readonly settled: Entries;
  /** Vanished allocations: the estimate and both bounds of their end (see Entries). */
  private readonly unsettled: Entries;
  private open = 0;
  /** Vanished allocations that may have held time in the period (see clipVanishedRows). */
  private readonly vanishedInPeriod = new Int32Array(1);
  /** The id a missing user or group groups under: the literal name's, if stored. */
  private readonly unattributed: number;
  private readonly only: { namespace: { has(id: number): boolean } | null; user: Set<number> | null; group: Set<number> | null };
  /** Namespaces split into cluster and bare name, for keys and filters (docs/accounting.md#clusters). */
  private readonly parts: NamespaceParts;
  /** Group slots: by key id (one key), or by the ids joined (several); 0 = none yet, else slot + 1. */
  private slotById = new Int32Array(1024);
  /**
   * Three keys or more: per level, the ids so far (a number: the first id, then each level's
   * entry) joined with the next id, packed into one number; the last level gives the slot.
   */
  private readonly levels: Map<number, number>[] = [];
  /** No key (the total alone): one slot for every row. */
  private onlySlot = -1;
  /** Two keys: both ids (offset past the negative sentinels) packed into one number. */
  private readonly slotByPair = new Map<number, number>();
  /** Two keys: per first key id + 2, its table of slots (index + 1, 0: none; see newPairSlot). */
  private readonly pairTableOf: Int32Array;
  private readonly pairTables: Int32Array[] = [];
  private unattributedSlot = -1;
  private readonly keys: number[][] = [];

  constructor(
    private readonly period: Pick<Period, 'startUs' | 'endUs'>,
    private readonly by: readonly GroupKey[],
    filters: Filters,
    private readonly names: Names,
    opts: AggregateOptions = {},
  ) {
    const { expectedRows = 0 } = opts;
    this.groupBounds = opts.groupBounds ?? true;
    this.settled = new Entries(false, expectedRows);
    // Vanished allocations are a part of the rows: up to a third of them on AI4OS-like data.
    this.unsettled = new Entries(true, expectedRows / 2);
    this.unattributed = names.lookup(UNATTRIBUTED) ?? UNATTRIBUTED_ID;
    this.pairTableOf = new Int32Array(by.length === 2 ? names.size() + 2 : 0);
    const ids = (values: readonly string[] | undefined): Set<number> | null => {
      if (!values?.length) return null;
      const out = new Set<number>();
      for (const v of values) {
        const id = v === UNATTRIBUTED ? this.unattributed : names.lookup(v);
        if (id !== undefined) out.add(id);
      }
      return out;
    };
    const parts = (this.parts = new NamespaceParts(names, filters));
    this.only = { namespace: parts.filtering ? { has: (id) => parts.allows(id) } : null, user: ids(filters.users), group: ids(filters.groups) };
  }

  /** The column a group key reads (users and groups may hold NO_NAME: unattributed). */
  private column(b: LifetimeColumns, k: GroupKey): Int32Array {
    if (k === 'namespace' || k === 'cluster') return this.parts.column(b.namespace, b.length, k);
    return k === 'user' ? b.user : k === 'group' ? b.group : k === 'component' ? b.component : b.job;
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

  /** The slot of row i for no key, or three keys or more (ids offset past the negative sentinels, as in newPairSlot). */
  private slotOfKeys(cols: readonly { col: Int32Array; nullable: boolean }[], i: number): number {
    if (cols.length === 0) return this.onlySlot >= 0 ? this.onlySlot : (this.onlySlot = this.newSlot([]));
    const un = this.unattributed;
    const idAt = (k: number) => {
      const id = cols[k]!.col[i]!;
      return cols[k]!.nullable && id === NO_NAME ? un : id;
    };
    let sofar = idAt(0) + 2;
    for (let k = 1; k < cols.length; k++) {
      const level = (this.levels[k - 1] ??= new Map());
      const packed = sofar * (MAX_NAME_ID + 2) + (idAt(k) + 2);
      let next = level.get(packed);
      if (next === undefined) {
        next = k === cols.length - 1 ? this.newSlot(cols.map((_, j) => idAt(j))) : level.size;
        level.set(packed, next);
      }
      sofar = next;
    }
    return sofar;
  }

  private slotOfPair(a: number, b: number): number {
    const t = this.pairTableOf[a + 2]!;
    if (t > 0) {
      const table = this.pairTables[t - 1]!;
      if (b + 2 < table.length && table[b + 2]! > 0) return table[b + 2]! - 1;
    }
    return this.newPairSlot(a, b);
  }

  /**
   * A pair seen for the first time. A first key's first pair gives it a table of slots by
   * second key (dense ids: no hashing), while the tables stay within pairTableCells; the
   * other first keys' pairs go through a Map. A pair always takes the same way.
   */
  private newPairSlot(a: number, b: number): number {
    let t = this.pairTableOf[a + 2]!;
    const size = this.pairTableOf.length;
    if (t === 0 && (this.pairTables.length + 1) * size <= Aggregator.pairTableCells) {
      this.pairTables.push(new Int32Array(size));
      t = this.pairTableOf[a + 2] = this.pairTables.length;
    }
    const table = t > 0 ? this.pairTables[t - 1]! : null;
    if (table && b + 2 < table.length) {
      if (table[b + 2]! === 0) table[b + 2] = this.newSlot([a, b]) + 1;
      return table[b + 2]! - 1;
    }
    const packed = (a + 2) * (MAX_NAME_ID + 2) + (b + 2);
    let slot = this.slotByPair.get(packed);
    if (slot === undefined) this.slotByPair.set(packed, (slot = this.newSlot([a, b])));
    return slot;
  }

  private newSlot(keys: number[]): number {
    this.keys.push(keys);
    return this.keys.length - 1;
  }

  /** Per row of a batch, its slot, or -1 when a filter leaves it out (reused between batches). */
  private rowSlots = new Int32Array(0);
  /** The batch's vanished rows, and how many (written by clip). */
  private vanishedRows = new Int32Array(0);
  private readonly vanishedCount = new Int32Array(1);

  add(b: LifetimeColumns): void {
    if (this.rowSlots.length < b.length) {
      this.rowSlots = new Int32Array(b.length);
      this.vanishedRows = new Int32Array(b.length);
    }
    const slots = this.rowSlots;
    // One key and no filter (the common case): clip finds the slots as it goes.
    const key = this.by.length === 1 && !this.only.namespace && !this.only.user && !this.only.group ? this.column(b, this.by[0]!) : null;
    const unfiltered = !this.only.namespace && !this.only.user && !this.only.group;
    if (!key && unfiltered && this.by.length === 2) this.pairSlots(b, slots);
    else if (!key) this.slotsOfRows(b, slots);
    this.settled.reserve(b.length);
    this.vanishedCount[0] = 0;
    this.settled.n = this.clip(b, key, slots, this.settled);
    const vanished = this.vanishedCount[0]!;
    if (vanished > 0) {
      this.unsettled.reserve(vanished);
      this.clipVanished(b, slots, vanished);
    }
  }

  /** Slots for two keys without filters (a report by namespace and user): known pairs looked up in their tables here. */
  private pairSlots(b: LifetimeColumns, out: Int32Array): void {
    const [first, second] = this.by as [GroupKey, GroupKey];
    const x = this.column(b, first);
    const y = this.column(b, second);
    const nullableX = NULLABLE_KEYS.has(first);
    const nullableY = NULLABLE_KEYS.has(second);
    const un = this.unattributed;
    const { pairTableOf, pairTables } = this;
    for (let i = 0; i < b.length; i++) {
      let a = x[i]!;
      if (nullableX && a === NO_NAME) a = un;
      let c = y[i]!;
      if (nullableY && c === NO_NAME) c = un;
      const t = a + 2 < pairTableOf.length ? pairTableOf[a + 2]! : 0;
      if (t > 0) {
        const table = pairTables[t - 1]!;
        const slot = c + 2 < table.length ? table[c + 2]! : 0;
        if (slot > 0) {
          out[i] = slot - 1;
          continue;
        }
      }
      out[i] = this.newPairSlot(a, c);
    }
  }

  /** Slots with filters or several keys. */
  private slotsOfRows(b: LifetimeColumns, out: Int32Array): void {
    const un = this.unattributed;
    const only = this.only;
    const cols = this.by.map((k) => ({ col: this.column(b, k), nullable: NULLABLE_KEYS.has(k) }));
    for (let i = 0; i < b.length; i++) {
      out[i] = -1;
      if (only.namespace && !only.namespace.has(b.namespace[i]!)) continue;
      if (only.user && !only.user.has(b.user[i] === NO_NAME ? un : b.user[i]!)) continue;
      if (only.group && !only.group.has(b.group[i] === NO_NAME ? un : b.group[i]!)) continue;
      if (cols.length === 1) {
        const id = cols[0]!.col[i]!;
        out[i] = this.slotOf(id === NO_NAME ? un : id);
      } else if (cols.length === 2) {
        const [x, y] = cols as [(typeof cols)[0], (typeof cols)[0]];
        const a = x.col[i]!;
        const c = y.col[i]!;
        out[i] = this.slotOfPair(x.nullable && a === NO_NAME ? un : a, y.nullable && c === NO_NAME ? un : c);
      } else {
        out[i] = this.slotOfKeys(cols, i);
      }
    }
  }

  /**
   * Clips each row to the period and appends it to the settled entries (reserved for the
   * batch), or lists a vanished one for clipVanished; returns the settled count. The slots
   * come from `key` (one key column, no filter) or were set in `slots` (-1: filtered out),
   * and clipVanished finds them there. A slot made for a row that then holds nothing in the
   * period is harmless: it has no entries.
   */
  private clip(b: LifetimeColumns, key: Int32Array | null, slots: Int32Array, e: Entries): number {
    const { startUs: p0, endUs: p1 } = this.period;
    const { slot: eSlot, flavour: eFlavour, namespace: eNamespace, job: eJob, user: eUser, us: eUs } = e;
    const { vanishedRows, vanishedCount } = this;
    let n = e.n;
    for (let i = 0; i < b.length; i++) {
      let slot: number;
      if (key !== null) {
        // Known ids find their slot here; new ones (a few, early) and the rest go the long way.
        const id = key[i]!;
        const known = id >= 0 && id < this.slotById.length ? this.slotById[id]! : 0;
        slot = slots[i] = known > 0 ? known - 1 : this.slotOf(id === NO_NAME ? this.unattributed : id);
      } else {
        slot = slots[i]!;
        if (slot < 0) continue;
      }
      const kind = b.kind[i]!;
      if (kind === VANISHED_CODE) {
        vanishedRows[vanishedCount[0]!++] = i;
        continue;
      }
      const start = b.start[i]!;
      const end = b.end[i]!;
      const us = (end < p1 ? end : p1) - (start > p0 ? start : p0);
      if (us <= 0) continue;
      eSlot[n] = slot;
      eFlavour[n] = b.flavour[i]!;
      eNamespace[n] = b.namespace[i]!;
      eJob[n] = b.job[i]!;
      eUser[n] = b.user[i]!;
      eUs[n] = us;
      n++;
      if (kind === OPEN_CODE && end < p1) this.open++;
    }
    return n;
  }

  /** The batch's vanished rows: the estimate and both bounds, in one set of entries (reserved). */
  private clipVanished(b: LifetimeColumns, slots: Int32Array, count: number): void {
    const { startUs: p0, endUs: p1 } = this.period;
    const e = this.unsettled;
    e.n = clipVanishedRows(b, slots, this.vanishedRows, count, p0, p1, e, this.vanishedInPeriod);
  }

  result(): StatsResult {
    const slots = this.keys.length;
    const { settled, unsettled } = this;
    settled.bySlot(slots);
    unsettled.bySlot(slots);
    // Slots are made for every row read; only those with entries in the period make rows.
    const held = this.keys.map((_, slot) => settled.count(slot) + unsettled.count(slot) > 0);
    const ids = new Set<number>();
    this.keys.forEach((keys, slot) => held[slot] && keys.forEach((k) => ids.add(k)));
    this.names.prefetch?.([...ids].filter((id) => this.parts.isStored(id)));
    const name = (id: number) => (id === UNATTRIBUTED_ID ? UNATTRIBUTED : this.parts.name(id));
    const rowKeys = this.keys.map((keys, slot) => (held[slot] ? keys.map(name) : []));
    const order = rowKeys.flatMap((_, slot) => (held[slot] ? [slot] : [])).sort((a, b) => compareKeys(rowKeys[a]!, rowKeys[b]!));

    // Bounds wanted in total only are summed over all entries at once, unless the groups are
    // few: summing those three times costs less than a pass over all entries.
    const perGroup = this.groupBounds || order.length <= Aggregator.fewGroups;
    const groups = new GroupTally(new RankTable(this.names.flavours()), this.names.size(), settled, unsettled, slots, perGroup);
    groups.tallyAll(order);
    if (!perGroup) groups.sumBoundsOverAll();
    // The total's jobs (or users) are the sum of the rows' when each job (or user) falls in one
    // group: when every key is a job's namespace or id (or the user). Otherwise, as with a
    // job run by two users in a report by namespace and user, they are counted over all entries.
    const jobsDisjoint = this.by.every((k) => k === 'cluster' || k === 'namespace' || k === 'job');
    const usersDisjoint = this.by.every((k) => k === 'user');
    const overAll = !jobsDisjoint || !usersDisjoint || !perGroup ? groups.countOverAll(jobsDisjoint && perGroup) : null;
    groups.release();

    const aggregates: Aggregate[] = groups.bounds.map((bound, k) => {
      if (!perGroup && k > 0) {
        const c = overAll![k]!;
        return { rows: [], total: hoursOf(bound.total, c.jobs, c.users, c.allocations) };
      }
      const rows: Row[] = [];
      let allocations = 0;
      let jobs = 0;
      let users = 0;
      for (const slot of order) {
        const held = bound.allocations[slot]!;
        if (held === 0) continue;
        const row: Partial<Record<GroupKey, string | number>> = {};
        for (let i = 0; i < this.by.length; i++) row[this.by[i]!] = rowKeys[slot]![i]!;
        const at = slot * HOUR_FIELDS.length;
        for (let f = 0; f < HOUR_FIELDS.length; f++) (row as Record<string, number>)[HOUR_FIELDS[f]!] = bound.hours[at + f]!;
        rows.push(Object.assign(row, { jobs: bound.jobs[slot]!, users: bound.users[slot]!, allocations: held }) as Row);
        allocations += held;
        jobs += bound.jobs[slot]!;
        users += bound.users[slot]!;
      }
      if (overAll && !jobsDisjoint) jobs = overAll[k]!.jobs;
      if (overAll && !usersDisjoint) users = overAll[k]!.users;
      return { rows: k > 0 && !this.groupBounds ? [] : rows, total: hoursOf(bound.total, jobs, users, allocations) };
    });
    const est = aggregates[0]!;
    // Nothing vanished: the bounds are the estimate, their rows left empty as groupBounds says.
    const same: Aggregate = this.groupBounds ? est : { rows: [], total: est.total };
    return { ...est, low: aggregates[1] ?? same, high: aggregates[2] ?? same, open: this.open, vanished: this.vanishedInPeriod[0]! };
  }
}
