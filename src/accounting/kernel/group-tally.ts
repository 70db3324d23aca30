import type { Entries } from './entries.js';
import { divide, HOUR_FIELDS, PRODUCT_DIVISORS } from './hours.js';
import { type Products, type RankTable, SPLIT, zeroProducts } from './rank-table.js';
import { stampRange, Stamps, stampUsers } from './stamps.js';

/**
 * The group tally: each group's sums and distinct counts under the estimate and both bounds.
 * The settled entries are summed once and each bound's vanished entries added on top, and
 * the results are kept in typed arrays per slot rather than an object per group.
 */

/**
 * What one result (the estimate, or a bound) holds per group slot, and its total products.
 * Numbers in typed arrays rather than objects: a report by user has thousands of groups,
 * and what a report keeps alive until its end is work for the garbage collector.
 */
export interface BoundSums {
  /** Entries that hold time in the period (0: the group has no row). */
  allocations: Float64Array;
  jobs: Float64Array;
  users: Float64Array;
  /** HOUR_FIELDS per slot: slot × HOUR_FIELDS.length + field. */
  hours: Float64Array;
  total: Products;
}

/**
 * The sums and distinct counts of each group, under the estimate and both bounds: the
 * settled entries once, then each bound's vanished entries on top. Without vanished
 * entries at all there is one result, which stands for the three.
 */
export class GroupTally {
  /** The estimate, the low bound, the high bound (or the estimate alone). */
  readonly bounds: BoundSums[];
  private readonly jobs: Stamps;
  private readonly users: Stamps;
  /** The vanished entries' µs under each bound. */
  private readonly times: readonly Float64Array[];
  /**
   * Slots that hold a vanished entry with no time under the estimate or a bound: there the
   * bounds count different entries, jobs and users. Elsewhere they count the same: once.
   */
  private readonly partial: Uint8Array | null;

  constructor(
    private readonly table: RankTable,
    names: number,
    private readonly settled: Entries,
    private readonly unsettled: Entries,
    slots: number,
    /** Whether each group gets its low and high bounds, or only the totals do. */
    private readonly groupBounds: boolean,
  ) {
    this.jobs = Stamps.lend(names);
    this.users = Stamps.lend(names);
    this.times = [unsettled.us, unsettled.usLow, unsettled.usHigh];
    this.partial = unsettled.partial > 0 ? slotsOfPartial(unsettled, this.times, slots) : null;
    const results = unsettled.n > 0 ? 3 : 1;
    this.bounds = Array.from({ length: results }, () => ({
      allocations: new Float64Array(slots),
      jobs: new Float64Array(slots),
      users: new Float64Array(slots),
      hours: new Float64Array(slots * HOUR_FIELDS.length),
      total: zeroProducts(),
    }));
  }

  /** After the last count: the stamp tables go back for the next report (see Stamps.lend). */
  release(): void {
    this.jobs.giveBack();
    this.users.giveBack();
  }

  tallyAll(slots: readonly number[]): void {
    for (const slot of slots) this.tally(slot);
  }

  private tally(slot: number): void {
    const { table, jobs, users, settled, unsettled, times, bounds } = this;
    // The split sums stay exact below 2^26 entries per group, settled and vanished together (see sumRange in rank-table.ts).
    if (settled.count(slot) + unsettled.count(slot) >= SPLIT) throw new Error(`more than ${SPLIT} allocations in one group`);
    jobs.begin();
    users.begin();
    table.settle(settled, settled.starts[slot]!, settled.starts[slot + 1]!);
    stampRange(settled, settled.starts[slot]!, settled.starts[slot + 1]!, settled.us, jobs, users);
    const mine = settled.count(slot);
    const settledJobs = jobs.count;
    const settledUsers = users.count;
    const from = unsettled.starts[slot]!;
    const to = unsettled.starts[slot + 1]!;
    // Without groupBounds, the bounds are summed in total only (see sumBoundsOverAll).
    const kinds = this.groupBounds ? bounds.length : 1;
    if (from === to) {
      // The estimate and both bounds are the settled sums.
      const p = table.products();
      for (let k = 0; k < kinds; k++) this.keep(bounds[k]!, slot, p, mine, settledJobs, settledUsers);
      return;
    }
    const partial = this.partial !== null && this.partial[slot] === 1;
    let theirs = 0;
    for (let k = 0; k < kinds; k++) {
      table.add(unsettled, from, to, times[k]!);
      const p = table.products();
      if (k === 0 || partial) {
        jobs.onTop();
        users.onTop();
        theirs = stampRange(unsettled, from, to, times[k]!, jobs, users);
      }
      this.keep(bounds[k]!, slot, p, mine + theirs, settledJobs + jobs.count, settledUsers + users.count);
    }
  }

  private keep(bound: BoundSums, slot: number, p: Products, allocations: number, jobs: number, users: number): void {
    if (allocations === 0) return;
    bound.allocations[slot] = allocations;
    bound.jobs[slot] = jobs;
    bound.users[slot] = users;
    const at = slot * HOUR_FIELDS.length;
    for (let f = 0; f < HOUR_FIELDS.length; f++) {
      bound.hours[at + f] = divide(p[f]!, PRODUCT_DIVISORS[f]!);
      bound.total[f]! += p[f]!;
    }
  }

  /**
   * The products of the low and high bounds taken over all entries at once, for a report
   * that shows the bounds in total only (groupBounds false): sums are linear. Their counts
   * come from countOverAll.
   */
  sumBoundsOverAll(): void {
    const { table, settled, unsettled, times, bounds } = this;
    if (settled.n + unsettled.n >= SPLIT) throw new Error(`more than ${SPLIT} allocations in one report`);
    table.settle(settled, 0, settled.n);
    for (let k = 1; k < bounds.length; k++) {
      table.add(unsettled, 0, unsettled.n, times[k]!);
      bounds[k]!.total = table.products();
    }
  }

  /**
   * Distinct jobs and users, and the entries that hold time, over all groups, per result:
   * for totals the rows cannot sum, and bounds summed in total only. `usersOnly`: the jobs
   * are counted per group, and the settled ones are not counted again here.
   */
  countOverAll(usersOnly: boolean): { jobs: number; users: number; allocations: number }[] {
    const { jobs, users, settled, unsettled, times } = this;
    jobs.begin();
    users.begin();
    if (usersOnly) stampUsers(settled, settled.n, users);
    else stampRange(settled, 0, settled.n, settled.us, jobs, users);
    const settledJobs = jobs.count;
    const settledUsers = users.count;
    let all = { jobs: settledJobs, users: settledUsers, allocations: settled.n };
    return this.bounds.map((_, k) => {
      // Every bound counts the same vanished entries unless some hold no time under one.
      if (k === 0 || unsettled.partial > 0) {
        jobs.onTop();
        users.onTop();
        const held = stampRange(unsettled, 0, unsettled.n, times[k]!, jobs, users);
        all = { jobs: settledJobs + jobs.count, users: settledUsers + users.count, allocations: settled.n + held };
      }
      return all;
    });
  }
}

/** The slots that hold a vanished entry with no time under the estimate or a bound (1 in a per-slot table). */
function slotsOfPartial(e: Entries, bounds: readonly Float64Array[], slots: number): Uint8Array {
  const out = new Uint8Array(slots);
  for (let i = 0; i < e.n; i++) if (bounds.some((us) => us[i]! <= 0)) out[e.slot[i]!] = 1;
  return out;
}
