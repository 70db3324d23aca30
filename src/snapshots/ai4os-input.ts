import type { Ai4osJob, Ai4osSnapshot } from '../accounting/ai4os.js';
import { amountProblem } from './limits.js';
import { DeltaEncoder, extractFromDocument, KEY_END, type WireSnapshot } from './extract.js';

/**
 * Feeds the AI4OS method: legacy tuples to the original's view of a snapshot, in file
 * order. A line seen in the previous snapshot reuses its parsed job.
 */
export class Ai4osDecoder {
  private previous = new Map<string, Entry>();

  /**
   * `w` must be a whole file (the reader sends every line for this method). A job with an
   * amount the original would have summed into nonsense (non-finite, negative or above its
   * maximum, see limits.ts) is left out and reported in `skips`.
   */
  decode(x: WireSnapshot & { kind: 'legacy' }): { snapshot: Ai4osSnapshot; skips: { reason: string; detail: string }[] } {
    const out: Ai4osSnapshot = new Map(x.namespaces.map((ns) => [ns, []]));
    const skips: { reason: string; detail: string }[] = [];
    const current = new Map<string, Entry>();
    for (const line of x.lines) {
      const entry = current.get(line) ?? this.previous.get(line) ?? toEntry(line);
      current.set(line, entry);
      if ('skip' in entry) skips.push({ reason: 'implausible amount', detail: entry.skip });
      else out.get(entry.ns)?.push(entry.job);
    }
    this.previous = current;
    return { snapshot: out, skips };
  }
}

type Entry = { ns: string; job: Ai4osJob } | { skip: string };

/** Legacy resource fields in tuple order, with the limit each one answers to. */
const AMOUNTS = [['cpu_num', 'cpu_cores'], ['cpu_MHz', 'cpu_mhz'], ['gpu_num', 'gpu'], ['memory_MB', 'memory_mib'], ['disk_MB', 'disk_mib']] as const;

function toEntry(line: string): Entry {
  const tuple = JSON.parse(line.slice(line.indexOf(KEY_END) + 1)) as unknown[];
  const [ns, jobId, , status, owner, , start, end, ...resources] = tuple;
  // As the original, a missing amount counts as 0; a number must be a plausible one.
  for (const [i, [field, limit]] of AMOUNTS.entries()) {
    const v = resources[i];
    const problem = typeof v === 'number' && status !== 'queued' ? amountProblem(limit, v) : null;
    if (problem !== null) return { skip: `job ${String(jobId)} in ${String(ns)}: resources.${field} ${problem}` };
  }
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const [cpu, mhz, gpu, mem, disk] = resources.map(num) as [number, number, number, number, number];
  return { ns: String(ns), job: [String(status ?? ''), String(jobId ?? ''), text(owner), text(start), text(end), cpu, mhz, gpu, mem, disk] };
}

/** The original's view of one parsed legacy document. */
export function ai4osSnapshotOf(doc: Record<string, unknown[]>): Ai4osSnapshot {
  return new Ai4osDecoder().decode(new DeltaEncoder().encode(extractFromDocument(doc)) as WireSnapshot & { kind: 'legacy' }).snapshot;
}
