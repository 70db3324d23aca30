import type { Ai4osJob, Ai4osSnapshot } from '../accounting/ai4os.js';
import { DeltaEncoder, extractFromDocument, KEY_END, type WireSnapshot } from './extract.js';

/**
 * Feeds the AI4OS method: legacy tuples to the original's view of a snapshot, in file
 * order. A line seen in the previous snapshot reuses its parsed job.
 */
export class Ai4osDecoder {
  private previous = new Map<string, { ns: string; job: Ai4osJob }>();

  /** `w` must be a whole file (the reader sends every line for this method). */
  decode(x: WireSnapshot & { kind: 'legacy' }): Ai4osSnapshot {
    const out: Ai4osSnapshot = new Map(x.namespaces.map((ns) => [ns, []]));
    const current = new Map<string, { ns: string; job: Ai4osJob }>();
    for (const line of x.lines) {
      let entry = current.get(line) ?? this.previous.get(line);
      if (!entry) {
        const tuple = JSON.parse(line.slice(line.indexOf(KEY_END) + 1)) as unknown[];
        const [ns, jobId, , status, owner, , start, end, cpu, mhz, gpu, mem, disk] = tuple;
        const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
        const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
        entry = {
          ns: String(ns),
          job: [String(status ?? ''), String(jobId ?? ''), text(owner), text(start), text(end), num(cpu), num(mhz), num(gpu), num(mem), num(disk)],
        };
      }
      current.set(line, entry);
      out.get(entry.ns)?.push(entry.job);
    }
    this.previous = current;
    return out;
  }
}

/** The original's view of one parsed legacy document. */
export function ai4osSnapshotOf(doc: Record<string, unknown[]>): Ai4osSnapshot {
  return new Ai4osDecoder().decode(new DeltaEncoder().encode(extractFromDocument(doc)) as WireSnapshot & { kind: 'legacy' });
}
