import type { Amounts, Observation, Phase, QueuedObservation, Skip, SnapshotObservations } from '../accounting/types.js';
import { BadTimeError, parseInstant } from '../util/time.js';
import { NATIVE_FORMAT, NATIVE_VERSION, type LegacyJob, type NativeAllocation, type NativeSnapshot } from './format.js';

/**
 * Turns a parsed snapshot document (native v1 or legacy AI4OS) into observations.
 * Pure: the caller reads and parses the file. Bad records are skipped with a reason;
 * a document that is neither format throws FormatError.
 */

export class FormatError extends Error {
  constructor(
    message: string,
    readonly reason = 'unknown file format',
  ) {
    super(message);
  }
}

const MIB = 1_048_576;

/** Statuses that hold resources, and terminal ones (design.md rule 3); anything else holds none. */
const HOLDING = new Set(['running', 'unknown', 'down']);
const TERMINAL = new Set(['dead', 'complete', 'failed', 'lost']);

export function phaseOf(status: string): Phase {
  if (HOLDING.has(status)) return 'holding';
  if (TERMINAL.has(status)) return 'terminal';
  return 'none';
}

export type SnapshotKind = 'native' | 'legacy';

export function detectKind(doc: unknown): SnapshotKind {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new FormatError('unknown file format: expected a JSON object (a native hourmeter snapshot or an AI4OS {namespace: [job, ...]} file)');
  }
  const obj = doc as Record<string, unknown>;
  if ('format' in obj) {
    if (obj.format !== NATIVE_FORMAT) throw new FormatError(`unknown file format ${JSON.stringify(obj.format)}: expected "${NATIVE_FORMAT}"`);
    if (obj.version !== NATIVE_VERSION) {
      throw new FormatError(`version ${JSON.stringify(obj.version)}: this hourmeter reads version ${NATIVE_VERSION}; upgrade hourmeter`, 'unsupported snapshot version');
    }
    return 'native';
  }
  for (const value of Object.values(obj)) {
    if (!Array.isArray(value)) {
      throw new FormatError('unknown file format: neither a native hourmeter snapshot (no "format" key) nor an AI4OS file (values must be job lists)');
    }
  }
  return 'legacy';
}

function finiteNonNegative(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function amountsFromNative(r: unknown): Amounts | null {
  if (!r || typeof r !== 'object') return null;
  const x = r as Record<string, unknown>;
  const { cpu_cores, cpu_mhz, memory_mib, disk_mib, gpu } = x;
  if (![cpu_cores, cpu_mhz, memory_mib, disk_mib, gpu].every(finiteNonNegative)) return null;
  return {
    cpuMilli: Math.round((cpu_cores as number) * 1000),
    cpuMhz: Math.round(cpu_mhz as number),
    memoryBytes: Math.round((memory_mib as number) * MIB),
    diskBytes: Math.round((disk_mib as number) * MIB),
    gpu: Math.round(gpu as number),
  };
}

function amountsFromLegacy(r: unknown): Amounts | null {
  if (!r || typeof r !== 'object') return null;
  const x = r as Record<string, unknown>;
  const { cpu_num, cpu_MHz, gpu_num, memory_MB, disk_MB } = x;
  if (![cpu_num, cpu_MHz, gpu_num, memory_MB, disk_MB].every(finiteNonNegative)) return null;
  return {
    cpuMilli: Math.round((cpu_num as number) * 1000),
    cpuMhz: Math.round(cpu_MHz as number),
    memoryBytes: Math.round((memory_MB as number) * MIB),
    diskBytes: Math.round((disk_MB as number) * MIB),
    gpu: Math.round(gpu_num as number),
  };
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Parses a time field; a malformed one skips the record (returned as a string reason). */
function timeField(rec: Record<string, unknown>, field: string): number | null | string {
  try {
    return parseInstant(rec[field]);
  } catch (e) {
    if (e instanceof BadTimeError) return `bad time in ${field}`;
    throw e;
  }
}

/** Builds an observation, or returns the reason it must be skipped. */
function observation(
  key: string,
  attrs: Omit<Observation, 'key' | 'phase' | 'startUs' | 'endUs' | 'amounts' | 'status'>,
  status: string,
  start: number | null | string,
  end: number | null | string,
  amounts: Amounts | null,
): Observation | string {
  if (typeof start === 'string') return start;
  if (typeof end === 'string') return end;
  if (!amounts) return 'missing or invalid resources';
  let phase = phaseOf(status);
  // A holding status without a start time cannot be placed on the time line: the workload
  // has not started (AI4OS lists jobs as running while the allocation is still pending).
  if (phase === 'holding' && start === null) phase = 'none';
  return { key, ...attrs, status, phase, startUs: start, endUs: phase === 'terminal' ? end : null, amounts };
}

export function observeNative(doc: NativeSnapshot, file: string, nameTimeUs: number | null): SnapshotObservations {
  const skips: Skip[] = [];
  const captured = (() => {
    try {
      return parseInstant(doc.captured_at);
    } catch {
      return null;
    }
  })();
  const timeUs = captured ?? nameTimeUs;
  if (timeUs === null) throw new FormatError('captured_at is missing or not an RFC 3339 time');
  const scope = doc.scope;
  if (!scope || !Array.isArray(scope.namespaces) || !Array.isArray(doc.allocations)) {
    throw new FormatError('native snapshot lacks scope.namespaces or allocations');
  }
  const kind = str(doc.source?.kind) ?? 'nomad';
  const idKind = kind === 'simulator' ? 'nomad' : kind;
  const observations: Observation[] = [];
  for (const rec of doc.allocations as unknown[]) {
    const r = (rec ?? {}) as Record<string, unknown> & Partial<NativeAllocation>;
    const id = str(r.id);
    const namespace = str(r.namespace);
    const jobId = str(r.job_id);
    const status = str(r.status);
    if (!id || !namespace || !jobId || !status) {
      skips.push({ reason: 'record missing fields', file, detail: `allocation ${JSON.stringify(r.id ?? null)} lacks id, namespace, job_id or status` });
      continue;
    }
    const o = observation(
      `${idKind}:${id}`,
      { namespace, jobId, jobName: str(r.job_name), user: str(r.user), group: str(r.group), component: str(r.component), node: str(r.node) },
      status,
      timeField(r, 'start'),
      timeField(r, 'end'),
      amountsFromNative(r.resources),
    );
    if (typeof o === 'string') skips.push({ reason: o === 'missing or invalid resources' ? 'record missing fields' : o, file, detail: `allocation ${id}: ${o}` });
    else observations.push(o);
  }
  const queued: QueuedObservation[] = [];
  for (const q of Array.isArray(doc.queued) ? doc.queued : []) {
    if (!q || !str(q.namespace) || !str(q.job_id)) continue;
    queued.push({ namespace: q.namespace, jobId: q.job_id, user: str(q.user), group: str(q.group), queued: typeof q.queued === 'number' ? q.queued : 1 });
  }
  return {
    file,
    timeUs,
    covered: new Set(scope.namespaces.filter((n): n is string => typeof n === 'string')),
    failedScopes: (Array.isArray(scope.failed) ? scope.failed : []).map((f) => ({ namespace: String(f?.namespace), reason: String(f?.reason ?? '') })),
    observations,
    queued,
    skips,
    kind: 'native',
  };
}

export function observeLegacy(doc: Record<string, unknown[]>, file: string, timeUs: number): SnapshotObservations {
  const skips: Skip[] = [];
  const observations: Observation[] = [];
  const queued: QueuedObservation[] = [];
  for (const [namespace, jobs] of Object.entries(doc)) {
    for (const rec of jobs) {
      const r = (rec ?? {}) as Record<string, unknown> & Partial<LegacyJob>;
      const jobId = str(r.job_ID);
      const status = str(r.status);
      if (!jobId || !status || !r.resources) {
        skips.push({ reason: 'record missing fields', file, detail: `job ${JSON.stringify(r.job_ID ?? null)} in ${namespace} lacks job_ID, status or resources` });
        continue;
      }
      const user = str(r.owner);
      if (status === 'queued') {
        queued.push({ namespace, jobId, user, group: null, queued: 1 });
        continue;
      }
      // Identity is the allocation; AI4OS records without one fall back to the job (design.md rule 1).
      const key = `nomad:${str(r.alloc_ID) ?? jobId}`;
      const o = observation(
        key,
        { namespace, jobId, jobName: str(r.name), user, group: null, component: null, node: null },
        status,
        timeField(r, 'alloc_start'),
        timeField(r, 'alloc_end'),
        amountsFromLegacy(r.resources),
      );
      if (typeof o === 'string') skips.push({ reason: o === 'missing or invalid resources' ? 'record missing fields' : o, file, detail: `job ${jobId} in ${namespace}: ${o}` });
      else observations.push(o);
    }
  }
  return { file, timeUs, covered: new Set(Object.keys(doc)), failedScopes: [], observations, queued, skips, kind: 'legacy' };
}
