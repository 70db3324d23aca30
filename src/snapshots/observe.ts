import { clusterNameProblem, qualify } from '../accounting/clusters.js';
import { NATIVE_ORDER } from '../accounting/resources.js';
import type { Amounts, Observation, Phase, QueuedObservation, SnapshotDelta, SnapshotObservations } from '../accounting/types.js';
import { BadTimeError, parseInstant } from '../util/time.js';
import { amountProblem } from './limits.js';
import { DeltaEncoder, extractFromDocument, isRepeat, KEY_END, type Extract, type NativeHeader, type WireSnapshot } from './extract.js';

export { detectKind, FormatError, type SnapshotKind } from './detect.js';
import { FormatError } from './detect.js';

/**
 * Step two of reading a snapshot: record tuples (see extract.ts) become observations.
 * Pure. A bad record is skipped with a reason; a document that is neither format throws
 * FormatError. The decoder reuses the outcome of a tuple line it has seen in the previous
 * snapshot, so only new or changed records are parsed and checked.
 */

/** Statuses that hold resources, and terminal ones (docs/accounting.md#reconstruction); anything else holds none. */
const HOLDING = new Set(['running', 'unknown', 'down']);
const TERMINAL = new Set(['dead', 'complete', 'failed', 'lost']);

export function phaseOf(status: string): Phase {
  if (HOLDING.has(status)) return 'holding';
  if (TERMINAL.has(status)) return 'terminal';
  return 'none';
}

/** What one tuple line becomes. */
export type Outcome = { obs: Observation } | { queued: QueuedObservation } | { skip: string; detail: string };

type Skip = { skip: string; detail: string };

/** The resources of a tuple, in the native order (resources.ts), as their limits name them. */
const RESOURCES = NATIVE_ORDER.map((r) => r.native.field);
const NATIVE_NAMES = RESOURCES.map((r) => `resources.${r}`);
const LEGACY_NAMES = NATIVE_ORDER.map((r) => `resources.${r.legacy}`);

/**
 * Amounts in base units, or why the record is skipped, naming the field: a missing or
 * non-numeric amount, or one that is non-finite, negative or above its maximum (limits.ts).
 */
function amounts(names: readonly string[], values: readonly unknown[]): Amounts | Skip {
  for (let i = 0; i < RESOURCES.length; i++) {
    const v = values[i];
    if (typeof v !== 'number') return { skip: 'record missing fields', detail: `${names[i]} is ${v === null || v === undefined ? 'missing' : 'not a number'}` };
    const problem = amountProblem(RESOURCES[i]!, v);
    if (problem !== null) return { skip: 'implausible amount', detail: `${names[i]} ${problem}` };
  }
  // Snapshot units (cores, MiB) to base units (millicores, bytes).
  const a = {} as Amounts;
  for (let i = 0; i < NATIVE_ORDER.length; i++) a[NATIVE_ORDER[i]!.amount] = Math.round((values[i] as number) * NATIVE_ORDER[i]!.native.perBase);
  return a;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** A namespace may not hold the separator of cluster-qualified names (docs/accounting.md#clusters); no scheduler allows one. */
function namespaceSkip(namespace: string, what: string): Skip | null {
  return namespace.includes('/') ? { skip: 'bad namespace', detail: `${what}: namespace ${JSON.stringify(namespace)} holds "/", which neither Nomad nor Kubernetes allows` } : null;
}

/** Parses a time; a malformed one is reported as a string reason. */
function time(v: unknown, field: string): Time {
  try {
    return { field, raw: v, us: parseInstant(v) };
  } catch (e) {
    if (e instanceof BadTimeError) return { field, raw: v, us: `bad time in ${field}` };
    throw e;
  }
}

/** A time as read, with the field it came from (for messages). */
type Time = { field: string; raw: unknown; us: number | null | string };

function finish(
  key: string,
  attrs: Omit<Observation, 'key' | 'phase' | 'startUs' | 'endUs' | 'amounts' | 'status'>,
  status: string,
  start: Time,
  end: Time,
  res: Amounts | Skip,
  what: string,
): Outcome {
  if (typeof start.us === 'string') return { skip: start.us, detail: `${what}: ${start.us}` };
  if (typeof end.us === 'string') return { skip: end.us, detail: `${what}: ${end.us}` };
  if ('skip' in res) return { skip: res.skip, detail: `${what}: ${res.detail}` };
  let phase = phaseOf(status);
  // A holding status without a start cannot be placed on the time line: the workload has
  // not started (AI4OS lists jobs as running while the allocation is still pending).
  if (phase === 'holding' && start.us === null) phase = 'none';
  const endUs = phase === 'terminal' ? end.us : null;
  // Only an end that is used can contradict the start.
  if (endUs !== null && start.us !== null && endUs < start.us) {
    return { skip: 'end before start', detail: `${what}: ${end.field} ${String(end.raw)} is before ${start.field} ${String(start.raw)}` };
  }
  return { obs: { key, ...attrs, status, phase, startUs: start.us, endUs, amounts: res } };
}

/** [namespace, job_ID, name, status, owner, alloc_ID, alloc_start, alloc_end, cpu_num, cpu_MHz, gpu_num, memory_MB, disk_MB] */
export function observeLegacyTuple(t: unknown[]): Outcome {
  const [ns, jobIdRaw, name, statusRaw, owner, allocId, start, end, cpu, mhz, gpu, mem, disk] = t;
  const namespace = String(ns);
  const jobId = str(jobIdRaw);
  const status = str(statusRaw);
  if (!jobId || !status) {
    return { skip: 'record missing fields', detail: `job ${JSON.stringify(jobIdRaw ?? null)} in ${namespace} lacks job_ID, status or resources` };
  }
  const bad = namespaceSkip(namespace, `job ${jobId}`);
  if (bad) return bad;
  const user = str(owner);
  if (status === 'queued') return { queued: { namespace, jobId, user, group: null, queued: 1 } };
  // Identity is the allocation; AI4OS records without one fall back to the job (docs/accounting.md#allocation).
  return finish(
    `nomad:${str(allocId) ?? jobId}`,
    { namespace, jobId, jobName: str(name), user, group: null, component: null, node: null },
    status,
    time(start, 'alloc_start'),
    time(end, 'alloc_end'),
    amounts(LEGACY_NAMES, [cpu, mhz, mem, disk, gpu]),
    `job ${jobId} in ${namespace}`,
  );
}

/** [id, namespace, job_id, job_name, user, group, component, node, status, start, end, modified, cpu_cores, cpu_mhz, memory_mib, disk_mib, gpu] */
export function observeNativeTuple(t: unknown[], idKind: string, cluster = ''): Outcome {
  const [idRaw, nsRaw, jobRaw, jobName, user, group, component, node, statusRaw, start, endRaw, modified, cores, mhz, mem, disk, gpu] = t;
  const id = str(idRaw);
  const namespace = str(nsRaw);
  const jobId = str(jobRaw);
  const status = str(statusRaw);
  if (!id || !namespace || !jobId || !status) {
    return { skip: 'record missing fields', detail: `allocation ${JSON.stringify(idRaw ?? null)} lacks id, namespace, job_id or status` };
  }
  const bad = namespaceSkip(namespace, `allocation ${id}`);
  if (bad) return bad;
  // A lost allocation's task states still say running: the server's ModifyTime, when it
  // declared it lost, bounds its end (docs/accounting.md#lifetime).
  const endFromModified = status === 'lost' && (endRaw === null || endRaw === undefined);
  return finish(
    qualify(cluster, `${idKind}:${id}`),
    { namespace: qualify(cluster, namespace), jobId, jobName: str(jobName), user: str(user), group: str(group), component: str(component), node: str(node) },
    status,
    time(start, 'start'),
    endFromModified ? time(modified, 'modified') : time(endRaw, 'end'),
    amounts(NATIVE_NAMES, [cores, mhz, mem, disk, gpu]),
    `allocation ${id}`,
  );
}

/** How messages name the record of a tuple. */
function recordName(kind: 'native' | 'legacy', t: unknown[]): string {
  return kind === 'native' ? `allocation ${String(t[0])}` : `job ${String(t[1])} in ${String(t[0])}`;
}

/** The source kind names the identity space; simulated clusters are Nomad-like. */
function idKindOf(source: unknown): string {
  const kind = source !== null && typeof source === 'object' ? str((source as Record<string, unknown>).kind) : null;
  return !kind || kind === 'simulator' ? 'nomad' : kind;
}

/** The cluster a native file names in `source.cluster`; '' when it names none (docs/accounting.md#clusters). */
export function clusterOfSource(source: unknown): string {
  const cluster = source !== null && typeof source === 'object' ? (source as Record<string, unknown>).cluster : undefined;
  if (cluster === undefined || cluster === null || cluster === '') return '';
  const problem = typeof cluster === 'string' ? clusterNameProblem(cluster) : 'it must be a string';
  if (problem !== null) throw new FormatError(`source.cluster ${JSON.stringify(cluster)} is not a cluster name: ${problem}`);
  return cluster as string;
}

function nativeScope(h: NativeHeader, cluster: string): { covered: Set<string>; failed: { namespace: string; reason: string }[] } {
  const scope = h.scope as { namespaces?: unknown; failed?: unknown };
  if (!Array.isArray(scope.namespaces)) throw new FormatError('native snapshot lacks scope.namespaces');
  const failed = (Array.isArray(scope.failed) ? scope.failed : []).map((f: { namespace?: unknown; reason?: unknown } | null) => ({
    namespace: qualify(cluster, String(f?.namespace ?? '')),
    reason: String(f?.reason ?? ''),
  }));
  const covered = scope.namespaces.filter((n): n is string => typeof n === 'string' && !n.includes('/')).map((n) => qualify(cluster, n));
  return { covered: new Set(covered), failed };
}

/** The queued jobs of a native header; a count that cannot be one skips its job, with a reason. */
function nativeQueued(h: NativeHeader, cluster: string): { queued: QueuedObservation[]; skips: Skip[] } {
  const queued: QueuedObservation[] = [];
  const skips: Skip[] = [];
  for (const q of Array.isArray(h.queued) ? (h.queued as Record<string, unknown>[]) : []) {
    const namespace = str(q?.namespace);
    const jobId = str(q?.job_id);
    if (!namespace || !jobId || namespace.includes('/')) continue;
    const count = typeof q.queued === 'number' ? q.queued : 1;
    const problem = amountProblem('queued', count);
    if (problem !== null) skips.push({ skip: 'implausible amount', detail: `queued job ${jobId} in ${namespace}: queued ${problem}` });
    else queued.push({ namespace: qualify(cluster, namespace), jobId, user: str(q.user), group: str(q.group), queued: count });
  }
  return { queued, skips };
}

type Entry = { line: string; out: Outcome };

/**
 * Turns what a reader sends (see extract.ts) into the difference from the previous
 * snapshot, which the reconstruction applies. It keeps every listed record's line and
 * outcome, so only new or changed lines are parsed, and keeps the skipped and queued ones
 * apart so that each snapshot still reports them.
 */
export class SnapshotDecoder {
  private current = new Map<string, Entry>();
  /** How many listed records name each allocation: it is gone only when none does. */
  private readonly listings = new Map<string, number>();
  /** The identity space of the previous native file, to notice a change of source. */
  private idKind: string | null = null;
  private readonly skipped = new Map<string, { skip: string; detail: string }>();
  private readonly queuedJobs = new Map<string, QueuedObservation>();

  /** Every allocation the last decoded snapshot lists. */
  listedKeys(): Set<string> {
    return new Set(this.listings.keys());
  }

  decode(w: WireSnapshot, file: string, nameTimeUs: number): SnapshotDelta {
    let timeUs = nameTimeUs;
    let covered: Set<string>;
    /** Legacy files are of the unnamed cluster. */
    let cluster = '';
    let failedScopes: { namespace: string; reason: string }[] = [];
    const queued: QueuedObservation[] = [];
    let observe: (t: unknown[]) => Outcome;
    let kindChanged = false;
    /** Skips found in this file alone (its header, its repeated records), not kept for the next. */
    let fileSkips: Skip[] = [];
    if (w.kind === 'native') {
      const captured = (() => {
        try {
          return parseInstant(w.header.captured_at);
        } catch {
          return null;
        }
      })();
      timeUs = captured ?? nameTimeUs;
      cluster = clusterOfSource(w.header.source);
      ({ covered, failed: failedScopes } = nativeScope(w.header, cluster));
      const fromHeader = nativeQueued(w.header, cluster);
      queued.push(...fromHeader.queued);
      fileSkips = fromHeader.skips;
      const idKind = idKindOf(w.header.source);
      observe = (t) => observeNativeTuple(t, idKind, cluster);
      // The identity space is the source kind within its cluster.
      const space = qualify(cluster, idKind);
      kindChanged = this.idKind !== null && this.idKind !== space;
      this.idKind = space;
    } else {
      covered = new Set(w.namespaces.filter((n) => !n.includes('/')));
      observe = observeLegacyTuple;
      // Legacy records are Nomad's, of the unnamed cluster.
      kindChanged = this.idKind !== null && this.idKind !== 'nomad';
      this.idKind = 'nomad';
    }

    const changed: Observation[] = [];
    const left = new Set<string>();
    const drop = (key: string, old: Entry | undefined) => {
      if (!old) return;
      if ('obs' in old.out) {
        const k = old.out.obs.key;
        this.listings.set(k, (this.listings.get(k) ?? 1) - 1);
        left.add(k);
      }
      this.skipped.delete(key);
      this.queuedJobs.delete(key);
    };
    const take = (key: string, line: string, before: Entry | undefined): Entry => {
      if (before !== undefined && before.line === line) return before;
      const entry = { line, out: observe(JSON.parse(line.slice(line.indexOf(KEY_END) + 1)) as unknown[]) };
      drop(key, before);
      if ('obs' in entry.out) {
        changed.push(entry.out.obs);
        this.listings.set(entry.out.obs.key, (this.listings.get(entry.out.obs.key) ?? 0) + 1);
      }
      else if ('queued' in entry.out) this.queuedJobs.set(key, entry.out.queued);
      else this.skipped.set(key, entry.out);
      return entry;
    };
    // A record listed again in the same file counts once: its first listing (see conflicts below).
    if (kindChanged) {
      // Another identity space (another cluster, or Nomad to Kubernetes): what the file before
      // listed is not this file's, even where a line reads the same. Every earlier record
      // leaves under its own identity, and every record of this file is decoded afresh.
      const lines = new Map<string, string>();
      if (!w.full) for (const [key, e] of this.current) lines.set(key, e.line);
      if (!w.full) for (const key of w.gone) lines.delete(key);
      for (const line of w.lines) {
        const key = line.slice(0, line.indexOf(KEY_END));
        if (isRepeat(key) || (w.full && lines.has(key))) continue;
        lines.set(key, line);
      }
      for (const [key, old] of this.current) drop(key, old);
      this.current = new Map();
      for (const [key, line] of lines) this.current.set(key, take(key, line, undefined));
    } else if (w.full) {
      // A whole file: compare it with what was listed before.
      const next = new Map<string, Entry>();
      for (const line of w.lines) {
        const key = line.slice(0, line.indexOf(KEY_END));
        if (isRepeat(key)) continue;
        next.set(key, take(key, line, next.get(key) ?? this.current.get(key)));
      }
      for (const [key, old] of this.current) if (!next.has(key)) drop(key, old);
      this.current = next;
    } else {
      for (const key of w.gone) {
        drop(key, this.current.get(key));
        this.current.delete(key);
      }
      for (const line of w.lines) {
        const key = line.slice(0, line.indexOf(KEY_END));
        if (isRepeat(key)) continue;
        this.current.set(key, take(key, line, this.current.get(key)));
      }
    }
    for (const { key, times } of w.conflicts ?? []) {
      const line = this.current.get(key)?.line;
      const what = line === undefined ? key : recordName(w.kind, JSON.parse(line.slice(line.indexOf(KEY_END) + 1)) as unknown[]);
      fileSkips.push({ skip: 'conflicting records', detail: `${what} is listed ${times} times with different content; the first listing is used` });
    }
    // An allocation is gone only when no record of this snapshot lists it any more.
    const gone: string[] = [];
    for (const k of left) {
      if ((this.listings.get(k) ?? 0) > 0) continue;
      this.listings.delete(k);
      gone.push(k);
    }
    queued.push(...this.queuedJobs.values());
    const skips = [...this.skipped.values(), ...fileSkips].map((k) => ({ reason: k.skip, file, detail: k.detail }));
    return { file, timeUs, covered, failedScopes, changed, gone, queued, skips, kind: w.kind, cluster };
  }
}

/** One whole file's observations, decoded on their own. */
export function observeWire(w: WireSnapshot, file: string, nameTimeUs: number): SnapshotObservations {
  if (!w.full) throw new Error('observeWire needs a whole file');
  const { changed, gone: _, ...rest } = new SnapshotDecoder().decode(w, file, nameTimeUs);
  return { ...rest, observations: changed };
}

function observeAll(x: Extract, file: string, nameTimeUs: number): SnapshotObservations {
  return observeWire(new DeltaEncoder().encode(x), file, nameTimeUs);
}

/** Observations of a parsed legacy document (one-off; readers use SnapshotDecoder). */
export function observeLegacy(doc: Record<string, unknown[]>, file: string, timeUs: number): SnapshotObservations {
  return observeAll(extractFromDocument(doc), file, timeUs);
}

/** Observations of a parsed native document (one-off; readers use SnapshotDecoder). */
export function observeNative(doc: unknown, file: string, nameTimeUs: number | null): SnapshotObservations {
  const s = observeAll(extractFromDocument(doc), file, nameTimeUs ?? NaN);
  if (Number.isNaN(s.timeUs)) throw new FormatError('captured_at is missing or not an RFC 3339 time');
  return s;
}

