import type { NativeAllocation, NativeQueuedJob, NativeResources } from '../../snapshots/format.js';
import { instantText, parseInstant } from '../../util/time.js';
import { ceilMilli, ceilUnits, parseQuantity, QuantityError } from './quantity.js';
import type { Container, ObjectMeta, Pod, ResourceRequirements } from './types.js';

/**
 * Kubernetes pods to native snapshot records (docs/accounting.md#lifetime, #resources, #attribution). Pure: the capture
 * passes in the pods as the API listed them.
 *
 * - Lifetime: from the PodScheduled condition to the latest container `finishedAt`.
 * - Resources: the scheduler's effective request (init containers, sidecars, overhead).
 * - Attribution: an ordered list of annotation or label keys per field, the first one set
 *   wins; a key may name a field of a JSON annotation (PrimeHub's `primehub.io/usage`).
 */

// ---------------------------------------------------------------------------------------
// Attribution

/** Where a user, group or component name is read from. */
export interface AttributionSource {
  from: 'annotation' | 'label';
  key: string;
  /** A field of the value read as a JSON object; null to take the value itself. */
  field: string | null;
}

export interface AttributionConfig {
  user: AttributionSource[];
  group: AttributionSource[];
  component: AttributionSource[];
}

export const PRIMEHUB_USAGE = 'primehub.io/usage';

/** Written `annotation:KEY`, `label:KEY` or `annotation:KEY#FIELD` (label and annotation keys cannot hold `#`). */
export function parseAttributionSource(text: string): AttributionSource {
  const m = /^(annotation|label):([^#\s]+)(?:#([^#\s]+))?$/.exec(text.trim());
  if (!m) throw new RangeError(`${JSON.stringify(text)} is not an attribution source: write annotation:KEY, label:KEY or annotation:KEY#FIELD (a field of a JSON value), e.g. label:owner`);
  return { from: m[1] as AttributionSource['from'], key: m[2]!, field: m[3] ?? null };
}

export function formatAttributionSource(s: AttributionSource): string {
  return `${s.from}:${s.key}${s.field === null ? '' : `#${s.field}`}`;
}

const src = (text: string) => parseAttributionSource(text);

/** PrimeHub's usage annotation first, then JupyterHub's raw user name (the label holds a lossy slug). */
export const DEFAULT_ATTRIBUTION: AttributionConfig = {
  user: [src(`annotation:${PRIMEHUB_USAGE}#user`), src('annotation:hub.jupyter.org/username')],
  group: [src(`annotation:${PRIMEHUB_USAGE}#group`)],
  component: [src(`annotation:${PRIMEHUB_USAGE}#component`), src('label:app.kubernetes.io/component'), src('label:component')],
};

function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The first non-empty value the sources give, or null. */
export function attribute(meta: Pick<ObjectMeta, 'labels' | 'annotations'>, sources: readonly AttributionSource[]): string | null {
  for (const s of sources) {
    const raw = (s.from === 'annotation' ? meta.annotations : meta.labels)?.[s.key];
    if (typeof raw !== 'string' || raw === '') continue;
    if (s.field === null) return raw;
    const v = jsonObject(raw)?.[s.field];
    if ((typeof v === 'string' && v !== '') || typeof v === 'number') return String(v);
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Resources

/** Extended resources counted as GPUs. */
export function isGpuResource(name: string): boolean {
  return name === 'nvidia.com/gpu' || name === 'amd.com/gpu' || name.startsWith('gpu.intel.com/');
}

/** Amounts per resource name, in nano-units (see quantity.ts). */
export type Amounts = Map<string, bigint>;

export class PodResourceError extends Error {}

function quantity(value: string, where: string): bigint {
  try {
    return parseQuantity(value);
  } catch (e) {
    if (e instanceof QuantityError) throw new PodResourceError(`${where}: ${e.message}`);
    throw e;
  }
}

/** A container's requests; a resource given only as a limit is requested at that limit (API defaulting). */
export function containerRequests(r: ResourceRequirements | null | undefined, where: string): Amounts {
  const out: Amounts = new Map();
  for (const [name, value] of Object.entries(r?.limits ?? {})) out.set(name, quantity(value, `${where} limits.${name}`));
  for (const [name, value] of Object.entries(r?.requests ?? {})) out.set(name, quantity(value, `${where} requests.${name}`));
  return out;
}

function add(into: Amounts, more: Amounts): void {
  for (const [k, v] of more) into.set(k, (into.get(k) ?? 0n) + v);
}

function maxInto(into: Amounts, other: Amounts): void {
  for (const [k, v] of other) if (v > (into.get(k) ?? 0n)) into.set(k, v);
}

/**
 * The pod's effective request, as the scheduler computes it (KEP-753):
 *
 *   containers = Σ containers + Σ sidecars (init containers with restartPolicy Always)
 *   init       = max over init container i of (i + Σ sidecars declared before i);
 *                a sidecar counts as the sum of the sidecars up to and including it
 *   effective  = max(containers, init) per resource, then pod-level cpu/memory when set,
 *                plus the RuntimeClass overhead.
 */
export function effectiveRequests(pod: Pod): Amounts {
  const spec = pod.spec ?? {};
  const result: Amounts = new Map();
  for (const c of spec.containers ?? []) add(result, containerRequests(c.resources, `container ${c.name}`));
  const sidecars: Amounts = new Map();
  const init: Amounts = new Map();
  for (const c of spec.initContainers ?? []) {
    const own = containerRequests(c.resources, `init container ${c.name}`);
    if (isSidecar(c)) {
      add(result, own);
      add(sidecars, own);
      maxInto(init, sidecars);
    } else {
      const withSidecars = new Map(own);
      add(withSidecars, sidecars);
      maxInto(init, withSidecars);
    }
  }
  maxInto(result, init);
  if (spec.resources) {
    const podLevel = containerRequests(spec.resources, 'pod resources');
    for (const name of ['cpu', 'memory']) {
      const v = podLevel.get(name);
      if (v !== undefined) result.set(name, v);
    }
  }
  add(result, containerRequests({ requests: spec.overhead ?? {} }, 'overhead'));
  return result;
}

function isSidecar(c: Container): boolean {
  return c.restartPolicy === 'Always';
}

const MIB = 1_048_576;

/** The record's resources: millicores as cores, bytes as MiB, GPUs summed over their vendors. */
export function toNativeResources(a: Amounts): NativeResources {
  let gpu = 0n;
  for (const [name, v] of a) if (isGpuResource(name)) gpu += ceilUnits(v);
  return {
    cpu_cores: Number(ceilMilli(a.get('cpu') ?? 0n)) / 1000,
    cpu_mhz: 0,
    memory_mib: Number(ceilUnits(a.get('memory') ?? 0n)) / MIB,
    disk_mib: Number(ceilUnits(a.get('ephemeral-storage') ?? 0n)) / MIB,
    gpu: Number(gpu),
  };
}

// ---------------------------------------------------------------------------------------
// Lifetime and status

function scheduledCondition(pod: Pod) {
  return pod.status?.conditions?.find((c) => c.type === 'PodScheduled') ?? null;
}

/** Whether the pod is bound to a node: from then on the node holds its requests for it. */
export function isBound(pod: Pod): boolean {
  return scheduledCondition(pod)?.status === 'True' || !!pod.spec?.nodeName;
}

/**
 * Start: when PodScheduled turned True (PrimeHub's rule). A pod bound without the scheduler
 * (spec.nodeName set by its author) has no such condition: the kubelet's startTime stands in.
 */
export function podStart(pod: Pod): string | null {
  const c = scheduledCondition(pod);
  if (c?.status === 'True') return instantText(c.lastTransitionTime);
  return pod.spec?.nodeName ? instantText(pod.status?.startTime) : null;
}

/** End: the latest `terminated.finishedAt` of any container, init containers included. */
export function podEnd(pod: Pod): string | null {
  let best: string | null = null;
  let bestUs = -Infinity;
  for (const s of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
    const t = instantText(s.state?.terminated?.finishedAt);
    if (t === null) continue;
    const us = parseInstant(t)!;
    if (us > bestUs) {
      best = t;
      bestUs = us;
    }
  }
  return best;
}

/**
 * The phase in the snapshot vocabulary. A Pending pod already bound to a node is `running`:
 * its node reserved the requests at binding, and its init containers may be running.
 */
export function podStatus(pod: Pod): string {
  const phase = pod.status?.phase ?? 'Pending';
  switch (phase) {
    case 'Running':
      return 'running';
    case 'Succeeded':
      return 'complete';
    case 'Failed':
      return 'failed';
    case 'Unknown':
      return 'unknown';
    case 'Pending':
      return isBound(pod) ? 'running' : 'pending';
    default:
      return phase.toLowerCase();
  }
}

const TERMINAL = new Set(['complete', 'failed']);

/** The pod's controller (Job, ReplicaSet, StatefulSet, a custom resource), or null for a bare pod. */
export function controllerOf(meta: ObjectMeta) {
  return meta.ownerReferences?.find((o) => o.controller === true) ?? null;
}

/** Annotations that are copies of whole objects: not worth keeping in every snapshot. */
const BULKY_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);

function resourcesOf(c: Container) {
  return { name: c.name, requests: c.resources?.requests ?? null, limits: c.resources?.limits ?? null };
}

function withoutBulky(annotations: Record<string, string> | null | undefined): Record<string, string> | null {
  if (!annotations) return null;
  return Object.fromEntries(Object.entries(annotations).filter(([k]) => !BULKY_ANNOTATIONS.has(k)));
}

/** One pod as a snapshot record. Throws PodResourceError when a quantity is malformed. */
export function mapPod(pod: Pod, attribution: AttributionConfig): NativeAllocation {
  const meta = pod.metadata;
  const spec = pod.spec ?? {};
  const owner = controllerOf(meta);
  const status = podStatus(pod);
  let requests: Amounts;
  try {
    requests = effectiveRequests(pod);
  } catch (e) {
    if (e instanceof PodResourceError) throw new PodResourceError(`pod ${meta.namespace ?? 'default'}/${meta.name}: ${e.message}`);
    throw e;
  }
  return {
    id: meta.uid,
    namespace: meta.namespace ?? 'default',
    job_id: owner?.uid ?? meta.uid,
    job_name: owner?.name ?? meta.name,
    user: attribute(meta, attribution.user),
    group: attribute(meta, attribution.group),
    component: attribute(meta, attribution.component),
    node: spec.nodeName || null,
    status,
    created: instantText(meta.creationTimestamp),
    start: podStart(pod),
    end: TERMINAL.has(status) ? podEnd(pod) : null,
    modified: null,
    resources: toNativeResources(requests),
    raw: {
      pod: meta.name,
      phase: pod.status?.phase ?? null,
      owner: owner ? { kind: owner.kind, name: owner.name, uid: owner.uid } : null,
      containers: (spec.containers ?? []).map(resourcesOf),
      init_containers: (spec.initContainers ?? []).map((c) => ({ ...resourcesOf(c), restart_policy: c.restartPolicy ?? null })),
      overhead: spec.overhead ?? null,
      pod_resources: spec.resources ?? null,
      scheduled: scheduledCondition(pod),
      start_time: pod.status?.startTime ?? null,
      deletion_timestamp: meta.deletionTimestamp ?? null,
      labels: meta.labels ?? null,
      annotations: withoutBulky(meta.annotations),
    },
  };
}

/**
 * Pods not yet bound to a node, per controller: the jobs waiting to be placed. `submitted`
 * is the earliest creation time, `resources` what one pod asks for.
 */
export function queuedJobs(records: readonly NativeAllocation[]): NativeQueuedJob[] {
  const out = new Map<string, NativeQueuedJob>();
  for (const r of records) {
    if (r.status !== 'pending') continue;
    const key = `${r.namespace}\u0000${r.job_id}`;
    const q = out.get(key);
    if (q) {
      q.queued++;
      if (r.created !== null && (q.submitted === null || parseInstant(r.created)! < parseInstant(q.submitted)!)) q.submitted = r.created;
      continue;
    }
    out.set(key, {
      namespace: r.namespace,
      job_id: r.job_id,
      job_name: r.job_name,
      user: r.user,
      group: r.group,
      component: r.component,
      submitted: r.created,
      queued: 1,
      resources: r.resources,
    });
  }
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------
// Watch events (docs/accounting.md#watched-history)

/**
 * The latest time the pod object itself carries: its creation, its conditions' transitions,
 * its containers' starts and ends (to the second, as the API gives them). A watch event
 * has no time of its own, so this dates the change; a deletion's time is left out, since a
 * graceful delete names a moment still to come. Null when the object carries no time.
 */
export function podChangedAt(pod: Pod): string | null {
  const times: unknown[] = [pod.metadata.creationTimestamp, pod.status?.startTime];
  for (const c of pod.status?.conditions ?? []) times.push(c.lastTransitionTime);
  for (const s of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
    times.push(s.state?.running?.startedAt, s.state?.terminated?.startedAt, s.state?.terminated?.finishedAt);
  }
  let best: string | null = null;
  let bestUs = -Infinity;
  for (const raw of times) {
    const t = instantText(raw);
    const us = t === null ? null : parseInstant(t);
    if (us !== null && us > bestUs) {
      best = t;
      bestUs = us;
    }
  }
  return best;
}

/**
 * When a deleted pod left the API: its `deletionTimestamp` once the grace period is 0 (the
 * API's own record of an immediate or final delete, to the second), else null (the watcher
 * dates the delete by the server's clock as it arrives).
 */
export function podDeletedAt(pod: Pod): string | null {
  return pod.metadata.deletionGracePeriodSeconds === 0 ? instantText(pod.metadata.deletionTimestamp) : null;
}

/**
 * A pod as its DELETED event leaves it: a pod that had ended keeps its own end; one that had
 * not (still running, or never bound) is `lost` at `deletedAt`, the moment the API let it go,
 * as a Nomad allocation is lost at the server's time (docs/accounting.md#lifetime).
 */
export function mapDeletedPod(pod: Pod, attribution: AttributionConfig, deletedAt: string): NativeAllocation {
  const record = mapPod(pod, attribution);
  if (TERMINAL.has(record.status)) return { ...record, modified: deletedAt };
  return { ...record, status: 'lost', end: null, modified: deletedAt };
}
