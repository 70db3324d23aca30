import type { Micros } from './types.js';

/**
 * `--method ai4os`: reproduces the numbers of the original AI4OS `usage_stats`
 * (docs/accounting.md#ai4os-method), floating-point order and integer truncation included, without its
 * crashes. Pure: the caller feeds legacy snapshots in file-name order.
 */

/** One job as the original reads it: [status, job_ID, owner, alloc_start, alloc_end, cpu_num, cpu_MHz, gpu_num, memory_MB, disk_MB]. */
export type Ai4osJob = [string, string, string | null, string | null, string | null, number, number, number, number, number];

export type Ai4osSnapshot = Map<string, Ai4osJob[]>;

export interface Ai4osRow {
  cpu_num_hours: number;
  cpu_MHz_hours: number;
  gpu_num_hours: number;
  memory_MB_hours: number;
  disk_MB_hours: number;
  jobs: number;
  users: number;
}

export interface Ai4osResult {
  rows: ({ namespace: string } & Ai4osRow)[];
  total: Ai4osRow;
}

const CLASSIC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{1,6})$/;
const EXACT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|[+-]00:00)?$/;

function utcMicros(m: RegExpExecArray, frac: string | undefined): Micros {
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return ms * 1000 + (frac ? +(frac + '000000').slice(0, 6) : 0);
}

/**
 * The original drops the last 4 characters and reads `YYYY-MM-DDTHH:MM:SS.ffffff`, so a
 * 9-digit fraction keeps 6 digits and `.12345Z` becomes `.12`. Where that leaves no
 * fraction digit (3 or fewer, or none) it crashed; we read the instant exactly instead.
 * Go's zero time and empty values are unset.
 */
export function parseAi4osTime(value: string | null): Micros | null {
  if (value === null || value === '' || value.startsWith('0001-01-01')) return null;
  const classic = CLASSIC.exec(value.slice(0, -4));
  if (classic) return utcMicros(classic, classic[7]);
  const exact = EXACT.exec(value);
  if (exact) return utcMicros(exact, exact[7]);
  throw new Error(`not a time the AI4OS method can read: ${JSON.stringify(value)}`);
}

class NamespaceUsage {
  cpu = 0;
  mhz = 0;
  gpu = 0;
  mem = 0;
  disk = 0;
  readonly jobs = new Set<string>();
  readonly users = new Set<string | null>();

  row(): Ai4osRow {
    return {
      cpu_num_hours: Math.trunc(this.cpu / 3600),
      cpu_MHz_hours: Math.trunc(this.mhz / 3600),
      gpu_num_hours: Math.trunc(this.gpu / 3600),
      memory_MB_hours: Math.trunc(this.mem / 3600),
      disk_MB_hours: Math.trunc(this.disk / 3600),
      jobs: this.jobs.size,
      users: this.users.size,
    };
  }
}

export class Ai4osAccumulator {
  private readonly usage = new Map<string, NamespaceUsage>();
  private prevUs: Micros;

  /**
   * `rangeStartUs`: the first day's 00:00:00 (or the first snapshot's own time without dates).
   * `namespaces`: report only these (all when empty).
   */
  constructor(
    rangeStartUs: Micros,
    private readonly namespaces: readonly string[] = [],
  ) {
    this.prevUs = rangeStartUs;
  }

  add(timeUs: Micros, snapshot: Ai4osSnapshot): void {
    for (const [namespace, jobs] of snapshot) {
      if (this.namespaces.length > 0 && !this.namespaces.includes(namespace)) continue;
      let u = this.usage.get(namespace);
      if (!u) this.usage.set(namespace, (u = new NamespaceUsage()));
      for (const [status, jobId, owner, startText, endText, cpuNum, cpuMhz, gpu, mem, disk] of jobs) {
        if (status !== 'running' && status !== 'dead') continue;
        const allocStart = parseAi4osTime(startText);
        if (allocStart === null) continue;
        let endUs: Micros;
        if (status === 'dead') {
          const allocEnd = parseAi4osTime(endText);
          if (allocEnd === null) continue;
          endUs = Math.min(timeUs, allocEnd);
        } else {
          endUs = timeUs;
        }
        const startUs = Math.max(this.prevUs, allocStart);
        // timedelta.total_seconds(): microseconds divided by 10^6, correctly rounded.
        const seconds = Math.max(0, (endUs - startUs) / 1e6);
        u.cpu += (cpuNum === 0 ? cpuMhz : cpuNum) * seconds;
        u.mhz += cpuMhz * seconds;
        u.gpu += gpu * seconds;
        u.mem += mem * seconds;
        u.disk += disk * seconds;
        u.jobs.add(jobId);
        u.users.add(owner);
      }
    }
    this.prevUs = timeUs;
  }

  result(): Ai4osResult {
    const rows = [...this.usage.entries()].map(([namespace, u]) => ({ namespace, ...u.row() }));
    const allUsers = new Set<string | null>();
    for (const u of this.usage.values()) for (const x of u.users) allUsers.add(x);
    const total: Ai4osRow = { cpu_num_hours: 0, cpu_MHz_hours: 0, gpu_num_hours: 0, memory_MB_hours: 0, disk_MB_hours: 0, jobs: 0, users: allUsers.size };
    for (const r of rows) {
      total.cpu_num_hours += r.cpu_num_hours;
      total.cpu_MHz_hours += r.cpu_MHz_hours;
      total.gpu_num_hours += r.gpu_num_hours;
      total.memory_MB_hours += r.memory_MB_hours;
      total.disk_MB_hours += r.disk_MB_hours;
      total.jobs += r.jobs;
    }
    return { rows, total };
  }
}
