import { MAX_NAME_ID } from '../columns.js';
import type { Entries } from './entries.js';

/**
 * Distinct jobs and users per group and per bound, counted by stamping each id's place in a
 * table: no sort, no hash set, and a bound's count taken on top of the settled one.
 */

/**
 * Counts distinct ids by stamping each id's place in a table instead of sorting or hashing:
 * a year of a busy cluster is a hundred thousand jobs and users, counted several times per
 * report (each group, each bound, the total). Users: negative ids (none) do not count.
 * Jobs: a job is a (namespace, job id) pair; job ids are stamped and namespaces checked.
 *
 * A count may be taken on top of another (onTop): what the base count saw is not counted
 * again. That is how vanished entries join the settled ones under each bound: the settled
 * ids keep their base stamp, and each bound's count only stamps the ids they lack.
 */
export class Stamps {
  /**
   * A table for ids below `size`: one an earlier count gave back, or a new one. A query
   * worker answers report after report, and zeroing megabytes of stamps for each one costs
   * more than counting on from where the last count stopped (see begin).
   */
  static lend(size: number): Stamps {
    const i = spare.findIndex((s) => s.stamp.length >= size);
    return i < 0 ? new Stamps(size) : spare.splice(i, 1)[0]!;
  }

  /** Hands the table back for a later count; this one must not be used again. */
  giveBack(): void {
    if (spare.length < MAX_SPARE && !spare.includes(this)) spare.push(this);
  }

  /** The stamp a table starts over at: an Int32 counter, bumped a few times per group and report (tests lower it). */
  static restartAt = 2 ** 30;

  count = 0;
  private stamp: Int32Array;
  /** For jobs: the namespace the stamped job id was seen with. */
  private namespaceOf: Int32Array;
  /** The stamp of the base count, and of the current one (the same outside onTop). */
  private base = 0;
  private current = 0;
  /** (namespace, job) pairs whose job id was first seen under another namespace: in the base count, and on top. */
  private readonly baseMore = new Set<number>();
  private readonly more = new Set<number>();

  /** Ids below `size` are stamped without growing the table (see sumRange in rank-table.ts on why it matters). */
  constructor(size: number) {
    this.stamp = new Int32Array(Math.max(1024, size));
    this.namespaceOf = new Int32Array(this.stamp.length);
  }

  /** Starts a count of its own. */
  begin(): void {
    // Stamps below the new base count as unseen; far from overflow, the table starts over.
    if (this.current >= Stamps.restartAt) {
      this.stamp.fill(0);
      this.current = 0;
    }
    this.base = ++this.current;
    this.count = 0;
    this.baseMore.clear();
    this.more.clear();
  }

  /** Starts a count on top of the last begin()'s: ids that one saw do not count (again). */
  onTop(): void {
    if (this.more.size > 0 && this.base === this.current) for (const key of this.more) this.baseMore.add(key);
    this.current++;
    this.count = 0;
    this.more.clear();
  }

  see(id: number): void {
    if (id < 0) return;
    if (id >= this.stamp.length) this.grow(id);
    const s = this.stamp[id]!;
    if (s !== this.current && s !== this.base) {
      this.stamp[id] = this.current;
      this.count++;
    }
  }

  seeJob(namespace: number, job: number): void {
    if (job >= this.stamp.length) this.grow(job);
    // One load of each table for both paths: a path that never ran before V8 optimised
    // the caller's loop would make it deoptimise (see sumRange in rank-table.ts).
    const { stamp, namespaceOf } = this;
    const s = stamp[job]!;
    const elsewhere = namespaceOf[job] !== namespace;
    if (s !== this.current && s !== this.base) {
      stamp[job] = this.current;
      namespaceOf[job] = namespace;
      this.count++;
    } else if (elsewhere) {
      this.seeJobElsewhere(namespace, job);
    }
  }

  /** The same job id in another namespace: a job of its own (rare). */
  private seeJobElsewhere(namespace: number, job: number): void {
    const key = namespace * MAX_NAME_ID + job;
    if (this.more.has(key) || this.baseMore.has(key)) return;
    this.more.add(key);
    this.count++;
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

/** Tables handed back (see Stamps.lend): a report uses two. */
const spare: Stamps[] = [];
const MAX_SPARE = 4;

/** Counts the distinct users of a set of settled entries (all of them hold time). */
export function stampUsers(e: Entries, n: number, users: Stamps): void {
  const { user } = e;
  for (let i = 0; i < n; i++) users.see(user[i]!);
}

/**
 * Counts the distinct jobs and users of the entries order[from..to) that hold time in `us`
 * into the stamps given (on top of what those saw since they began); returns how many
 * entries that is. Alone in its function (see sumRange in rank-table.ts).
 */
export function stampRange(e: Entries, from: number, to: number, us: Float64Array, jobs: Stamps, users: Stamps): number {
  const { order, namespace, job, user } = e;
  let held = 0;
  for (let j = from; j < to; j++) {
    const i = order[j]!;
    if (us[i]! <= 0) continue;
    held++;
    jobs.seeJob(namespace[i]!, job[i]!);
    users.see(user[i]!);
  }
  return held;
}
