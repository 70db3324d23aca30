import type { Amounts, Observation, SnapshotObservations } from '../../src/accounting/types.js';
import { phaseOf } from '../../src/snapshots/observe.js';

/** In-memory builders for core tests: no files. Times are ISO strings for readability. */

export const us = (iso: string): number => Date.parse(iso) * 1000;

export function amounts(p: Partial<{ cpu: number; mhz: number; memMiB: number; diskMiB: number; gpu: number }> = {}): Amounts {
  return {
    cpuMilli: Math.round((p.cpu ?? 0) * 1000),
    cpuMhz: p.mhz ?? 0,
    memoryBytes: (p.memMiB ?? 0) * 1_048_576,
    diskBytes: (p.diskMiB ?? 0) * 1_048_576,
    gpu: p.gpu ?? 0,
  };
}

export function obs(p: {
  id: string;
  status: string;
  start?: string | null;
  end?: string | null;
  ns?: string;
  job?: string;
  user?: string | null;
  group?: string | null;
  component?: string | null;
  res?: Parameters<typeof amounts>[0];
}): Observation {
  const startUs = p.start ? us(p.start) : null;
  let phase = phaseOf(p.status);
  if (phase === 'holding' && startUs === null) phase = 'none';
  return {
    key: `nomad:${p.id}`,
    namespace: p.ns ?? 'ns1',
    jobId: p.job ?? `job-${p.id}`,
    jobName: null,
    user: p.user === undefined ? 'alice' : p.user,
    group: p.group ?? null,
    component: p.component ?? null,
    node: null,
    status: p.status,
    phase,
    startUs,
    endUs: phase === 'terminal' && p.end ? us(p.end) : null,
    amounts: amounts(p.res ?? { cpu: 1 }),
  };
}

export function snap(time: string, observations: Observation[], opts: { covered?: string[]; kind?: 'native' | 'legacy' } = {}): SnapshotObservations {
  return {
    file: `${time}.json`,
    timeUs: us(time),
    covered: new Set(opts.covered ?? ['ns1']),
    failedScopes: [],
    observations,
    queued: [],
    skips: [],
    kind: opts.kind ?? 'native',
  };
}
