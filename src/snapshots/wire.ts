import type { Observation, SnapshotObservations } from '../accounting/types.js';

/**
 * A compact form of one snapshot's observations for crossing from a reader thread to the
 * main thread: one string, one line per allocation. Cloning one string is far cheaper than
 * cloning a thousand objects, and most lines repeat the previous snapshot's line for the
 * same allocation exactly, so the decoder reuses the object it built last time.
 */

export interface WireSnapshot extends Omit<SnapshotObservations, 'observations' | 'covered'> {
  covered: string[];
  /** Lines of `<JSON key>\t<JSON array of the other fields>`, joined by "\n". */
  lines: string;
}

export function encodeSnapshot(s: SnapshotObservations): WireSnapshot {
  const lines = s.observations.map(
    (o) =>
      `${JSON.stringify(o.key)}\t${JSON.stringify([
        o.namespace, o.jobId, o.jobName, o.user, o.group, o.component, o.node, o.status, o.phase, o.startUs, o.endUs,
        o.amounts.cpuMilli, o.amounts.cpuMhz, o.amounts.memoryBytes, o.amounts.diskBytes, o.amounts.gpu,
      ])}`,
  );
  const { observations: _, covered, ...rest } = s;
  return { ...rest, covered: [...covered], lines: lines.join('\n') };
}

type Fields = [string, string, string | null, string | null, string | null, string | null, string | null, string, Observation['phase'], number | null, number | null, number, number, number, number, number];

export class WireDecoder {
  /** The last line and observation per allocation key (as its JSON text). */
  private readonly last = new Map<string, { line: string; obs: Observation }>();

  decode(w: WireSnapshot): SnapshotObservations {
    const observations: Observation[] = [];
    if (w.lines.length > 0) {
      for (const line of w.lines.split('\n')) {
        const tab = line.indexOf('\t');
        const keyText = line.slice(0, tab);
        const cached = this.last.get(keyText);
        if (cached && cached.line === line) {
          observations.push(cached.obs);
          continue;
        }
        const f = JSON.parse(line.slice(tab + 1)) as Fields;
        const obs: Observation = {
          key: JSON.parse(keyText) as string,
          namespace: f[0], jobId: f[1], jobName: f[2], user: f[3], group: f[4], component: f[5], node: f[6],
          status: f[7], phase: f[8], startUs: f[9], endUs: f[10],
          amounts: { cpuMilli: f[11], cpuMhz: f[12], memoryBytes: f[13], diskBytes: f[14], gpu: f[15] },
        };
        this.last.set(keyText, { line, obs });
        observations.push(obs);
      }
    }
    const { lines: _, covered, ...rest } = w;
    return { ...rest, covered: new Set(covered), observations };
  }
}
