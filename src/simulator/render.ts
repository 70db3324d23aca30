/**
 * Renders a cluster state as a snapshot file: hourmeter's native v1 format or the AI4OS
 * legacy `{namespace: [job, ...]}` format, plus the file names and serialisers for each.
 */

import {
  NATIVE_FORMAT,
  NATIVE_VERSION,
  type LegacyJob,
  type LegacySnapshot,
  type NativeAllocation,
  type NativeQueuedJob,
  type NativeSnapshot,
} from '../snapshots/format.js';
import { NETWORK_ERROR, SIDECAR, domainOf } from './catalog.js';
import type { Cluster, SimAlloc, SimJob, SimNode } from './model.js';
import type { SnapshotFormat } from './options.js';
import { latestPerJob, type AllocView, type ClusterState } from './state.js';

export interface RenderOptions {
  /** Default: the cluster's fullFields option. */
  fullFields?: boolean;
}

// ---------------------------------------------------------------------------------------
// Time formatting

/**
 * Sub-microsecond digits (1..999) derived from the instant itself: Nomad reports
 * nanoseconds, and readers must truncate them to the microseconds the truth is kept in.
 */
function subMicroNs(us: number): number {
  return 1 + (((us % 999_983) * 7919) % 999);
}

/**
 * RFC 3339 UTC with nanoseconds. `trim` drops trailing zeros of the fraction as Go's
 * RFC3339Nano does (AI4OS files); otherwise the fraction always has 9 digits.
 */
export function rfc3339Nano(us: number, trim = false): string {
  const secUs = Math.floor(us / 1_000_000) * 1_000_000;
  const base = new Date(secUs / 1000).toISOString().slice(0, 19);
  let frac = String(us - secUs).padStart(6, '0') + String(subMicroNs(us)).padStart(3, '0');
  if (trim) {
    frac = frac.replace(/0+$/, '');
    if (frac === '') return `${base}Z`;
  }
  return `${base}.${frac}Z`;
}

/** Nomad's CreateTime/ModifyTime: Unix nanoseconds, as a decimal string (above 2^53). */
export function unixNanos(us: number): string {
  return `${us}${String(subMicroNs(us)).padStart(3, '0')}`;
}

function isoSeconds(us: number): string {
  return new Date(Math.floor(us / 1_000_000) * 1000).toISOString().slice(0, 19);
}

/** Snapshot file name for a capture instant: `...Z.json` native, `....json` legacy. */
export function snapshotFileName(format: SnapshotFormat, timeUs: number): string {
  return format === 'native' ? `${isoSeconds(timeUs)}Z.json` : `${isoSeconds(timeUs)}.json`;
}

// ---------------------------------------------------------------------------------------
// Native

/** Nomad's AllocatedResources.Tasks of an allocation: its main task and the storage sidecar. */
export function nomadTaskResources(alloc: SimAlloc): Record<string, unknown> {
  const { job, coreOffset, gpuIds, node } = alloc;
  const cores: number[] = [];
  for (let i = 0; i < job.main.cores; i++) cores.push(coreOffset + i);
  return {
    main: {
      Cpu: { CpuShares: job.main.mhz, ReservedCores: cores },
      Devices:
        gpuIds.length > 0 ? [{ DeviceIDs: gpuIds, Name: node.gpuModel ?? 'NVIDIA GPU', Type: 'gpu', Vendor: 'nvidia' }] : null,
      Memory: { MemoryMB: job.main.memoryMib, MemoryMaxMB: job.main.memoryMib },
      Networks: null,
    },
    [SIDECAR.name]: {
      Cpu: { CpuShares: SIDECAR.mhz, ReservedCores: null },
      Devices: null,
      Memory: { MemoryMB: SIDECAR.memoryMib, MemoryMaxMB: 0 },
      Networks: null,
    },
  };
}

function nativeAllocation(v: AllocView, full: boolean): NativeAllocation {
  const job = v.alloc.job;
  // A lost allocation has no FinishedAt; its end is bounded by ModifyTime.
  const endUs = v.status === 'lost' ? v.modifyUs : v.finishedAtUs;
  const rec: NativeAllocation = {
    id: v.id,
    namespace: v.namespace,
    job_id: job.id,
    job_name: job.name,
    user: job.user.id,
    group: null,
    component: job.component,
    node: v.node,
    status: v.status,
    created: rfc3339Nano(v.createUs),
    start: v.startedAtUs === null ? null : rfc3339Nano(v.startedAtUs),
    end: endUs === null ? null : rfc3339Nano(endUs),
    modified: rfc3339Nano(v.modifyUs),
    resources: { ...v.resources },
  };
  if (full) {
    rec.raw = {
      tasks: nomadTaskResources(v.alloc),
      lifecycles: { main: null, [SIDECAR.name]: { Hook: 'prestart', Sidecar: true } },
      shared: { DiskMB: job.main.diskMib },
      meta: {
        owner: job.user.id,
        owner_name: job.user.name,
        owner_email: job.user.email,
        title: job.title,
        description: job.description,
      },
    };
  }
  return rec;
}

function nativeQueued(job: SimJob): NativeQueuedJob {
  return {
    namespace: job.namespace,
    job_id: job.id,
    job_name: job.name,
    user: job.user.id,
    group: null,
    component: job.component,
    submitted: rfc3339Nano(job.submitUs),
    queued: 1,
    resources: { ...job.resources },
  };
}

export function renderNative(cluster: Cluster, state: ClusterState, options: RenderOptions = {}): NativeSnapshot {
  const full = options.fullFields ?? cluster.options.fullFields;
  // The capture itself takes a moment; finished_at records that.
  const finishedUs = state.timeUs + 400_000 + subMicroNs(state.timeUs) * 1000;
  return {
    format: NATIVE_FORMAT,
    version: NATIVE_VERSION,
    captured_at: `${isoSeconds(state.timeUs)}Z`,
    finished_at: new Date(finishedUs / 1000).toISOString(),
    source: { kind: 'simulator', address: null, region: 'global' },
    scope: { requested: ['*'], namespaces: [...cluster.namespaces], failed: [] },
    allocations: state.allocations.map((v) => nativeAllocation(v, full)),
    queued: state.queued.map(nativeQueued),
  };
}

// ---------------------------------------------------------------------------------------
// Legacy (AI4OS)

const LEGACY_STATUS: Record<string, string> = {
  pending: 'starting',
  running: 'running',
  unknown: 'down',
  complete: 'dead',
  failed: 'dead',
  lost: 'dead',
};

function endpoints(job: SimJob, node: SimNode | null): Record<string, string> {
  // Queued jobs show the unrendered template, as AI4OS does before placement.
  const host = `${node ? node.site : '${meta.domain}'}-deployments.cloud.${domainOf(job.namespace)}`;
  const url = (name: string, suffix = ''): string => `https://${name}-${job.id}.${host}${suffix}`;
  switch (job.kind) {
    case 'module':
    case 'tool-devenv': {
      const eps: Record<string, string> = { api: url('api', '/ui'), monitor: url('monitor'), ide: url('ide') };
      if (job.customEndpoint) eps.custom = url('custom');
      return eps;
    }
    case 'tool-ai4life':
      return { api: url('api', '/ui'), monitor: url('monitor'), ide: url('ide') };
    case 'tool-llm':
      return { ui: url('ui'), vllm: url('vllm') };
    case 'tool-fl':
      return { fedserver: url('fedserver'), monitor: url('monitor'), ide: url('ide') };
    case 'batch':
      return {};
  }
}

function mainEndpoint(job: SimJob): string | null {
  switch (job.kind) {
    case 'tool-llm':
      return 'ui';
    case 'tool-fl':
      return 'fedserver';
    case 'batch':
      return null;
    default:
      return job.command === 'deep-start --deepaas' ? 'api' : 'ide';
  }
}

function submitTime(us: number): string {
  return isoSeconds(us).replace('T', ' ');
}

function legacyJob(job: SimJob, v: AllocView | null, full: boolean): LegacyJob {
  const status = v ? (LEGACY_STATUS[v.status] ?? v.status) : 'queued';
  const resources = {
    cpu_num: job.resources.cpu_cores,
    // AI4OS reads MHz from the allocation, so a queued job shows 0.
    cpu_MHz: v ? job.resources.cpu_mhz : 0,
    gpu_num: job.resources.gpu,
    memory_MB: job.resources.memory_mib,
    disk_MB: job.resources.disk_mib,
  };
  const allocStart = v && v.startedAtUs !== null ? rfc3339Nano(v.startedAtUs, true) : null;
  const allocEnd = v && v.finishedAtUs !== null ? rfc3339Nano(v.finishedAtUs, true) : null;
  if (!full) {
    return {
      job_ID: job.id,
      name: job.name,
      status,
      owner: job.user.id,
      resources,
      alloc_ID: v ? v.id : null,
      alloc_start: allocStart,
      alloc_end: allocEnd,
    };
  }
  const rec: LegacyJob = {
    job_ID: job.id,
    name: job.name,
    status,
    owner: job.user.id,
    title: job.title,
    description: job.description,
    docker_image: job.image,
    docker_command: job.command,
    submit_time: submitTime(job.submitUs),
    resources,
    endpoints: endpoints(job, v ? v.alloc.node : null),
    active_endpoints: null,
    main_endpoint: mainEndpoint(job),
    alloc_ID: v ? v.id : null,
    datacenter: v ? v.alloc.node.datacenter : null,
  };
  if (status === 'down') rec.error_msg = NETWORK_ERROR;
  rec.alloc_start = allocStart;
  rec.alloc_end = allocEnd;
  return rec;
}

export function renderLegacy(cluster: Cluster, state: ClusterState, options: RenderOptions = {}): LegacySnapshot {
  const full = options.fullFields ?? cluster.options.fullFields;
  const out: LegacySnapshot = {};
  for (const ns of cluster.namespaces) out[ns] = [];
  const entries: { ns: string; id: string; rec: LegacyJob }[] = [];
  for (const v of latestPerJob(state)) entries.push({ ns: v.namespace, id: v.jobId, rec: legacyJob(v.alloc.job, v, full) });
  for (const j of state.queued) entries.push({ ns: j.namespace, id: j.id, rec: legacyJob(j, null, full) });
  // Nomad lists jobs by id; AI4OS keeps that order.
  entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const e of entries) (out[e.ns] ??= []).push(e.rec);
  return out;
}

// ---------------------------------------------------------------------------------------
// Serialisation

const UNSAFE = /[^\x20-\x7e]/;
const UNSAFE_ALL = /[^\x20-\x7e]/g;

/**
 * JSON as Python's `json.dumps` writes it by default (", " and ": " separators, non-ASCII
 * escaped): the AI4OS snapshot writer's exact byte format.
 */
export function pyDumps(value: unknown): string {
  // Indented output puts ": " after keys and real newlines only between tokens (newlines
  // inside strings are escaped), so collapsing the newlines yields Python's separators.
  let s = JSON.stringify(value, null, 1) ?? 'null';
  s = s.replace(/,\n */g, ', ').replace(/\n */g, '');
  return UNSAFE.test(s) ? s.replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : s;
}

/** Turns states into file contents. Stateful: feed it states in time order. */
export interface SnapshotSerializer {
  serialize(state: ClusterState): string;
}

/**
 * Most records repeat from one snapshot to the next with only their times changed, so the
 * serialisers keep each record's unchanging text from the previous snapshot. The output is
 * byte for byte that of serializing renderNative/renderLegacy.
 */
class NativeSerializer implements SnapshotSerializer {
  private prev = new Map<SimAlloc, { head: string; tail: string }>();

  constructor(
    private readonly cluster: Cluster,
    private readonly full: boolean,
  ) {}

  serialize(state: ClusterState): string {
    const next = new Map<SimAlloc, { head: string; tail: string }>();
    const recs: string[] = [];
    for (const v of state.allocations) {
      let parts = this.prev.get(v.alloc);
      if (!parts) {
        const { status, created, start, end, modified, resources, raw, ...head } = nativeAllocation(v, this.full);
        parts = { head: JSON.stringify(head).slice(0, -1), tail: JSON.stringify({ resources, raw }).slice(1) };
      }
      next.set(v.alloc, parts);
      const endUs = v.status === 'lost' ? v.modifyUs : v.finishedAtUs;
      recs.push(
        `${parts.head},"status":${JSON.stringify(v.status)},"created":"${rfc3339Nano(v.createUs)}",` +
          `"start":${v.startedAtUs === null ? 'null' : `"${rfc3339Nano(v.startedAtUs)}"`},` +
          `"end":${endUs === null ? 'null' : `"${rfc3339Nano(endUs)}"`},"modified":"${rfc3339Nano(v.modifyUs)}",${parts.tail}`,
      );
    }
    this.prev = next;
    const { allocations, queued, ...top } = renderNative(this.cluster, { ...state, allocations: [], queued: [] });
    const head = JSON.stringify(top).slice(0, -1);
    return `${head},"allocations":[${recs.join(',')}],"queued":${JSON.stringify(state.queued.map(nativeQueued))}}\n`;
  }
}

class LegacySerializer implements SnapshotSerializer {
  private prev = new Map<SimJob, { key: string; prefix: string }>();

  constructor(
    private readonly cluster: Cluster,
    private readonly full: boolean,
  ) {}

  serialize(state: ClusterState): string {
    const next = new Map<SimJob, { key: string; prefix: string }>();
    const byNs = new Map<string, { id: string; text: string }[]>(this.cluster.namespaces.map((ns) => [ns, []]));
    const add = (job: SimJob, v: AllocView | null): void => {
      const status = v ? v.status : 'queued';
      // Everything before alloc_start depends only on the job, its allocation and status.
      const key = v ? `${v.id}/${status}` : status;
      let cached = this.prev.get(job);
      if (!cached || cached.key !== key) {
        const { alloc_start, alloc_end, ...rest } = legacyJob(job, v, this.full);
        cached = { key, prefix: pyDumps(rest).slice(0, -1) };
      }
      next.set(job, cached);
      const start = v && v.startedAtUs !== null ? `"${rfc3339Nano(v.startedAtUs, true)}"` : 'null';
      const end = v && v.finishedAtUs !== null ? `"${rfc3339Nano(v.finishedAtUs, true)}"` : 'null';
      let list = byNs.get(job.namespace);
      if (!list) byNs.set(job.namespace, (list = []));
      list.push({ id: job.id, text: `${cached.prefix}, "alloc_start": ${start}, "alloc_end": ${end}}` });
    };
    for (const v of latestPerJob(state)) add(v.alloc.job, v);
    for (const j of state.queued) add(j, null);
    this.prev = next;
    const parts: string[] = [];
    for (const [ns, list] of byNs) {
      list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      parts.push(`${pyDumps(ns)}: [${list.map((e) => e.text).join(', ')}]`);
    }
    return `{${parts.join(', ')}}`;
  }
}

export function createSerializer(format: SnapshotFormat, cluster: Cluster, options: RenderOptions = {}): SnapshotSerializer {
  const full = options.fullFields ?? cluster.options.fullFields;
  return format === 'native' ? new NativeSerializer(cluster, full) : new LegacySerializer(cluster, full);
}

/** The file content for one state in either format (native: compact JSON; legacy: Python style). */
export function serializeSnapshot(format: SnapshotFormat, cluster: Cluster, state: ClusterState, options: RenderOptions = {}): string {
  return createSerializer(format, cluster, options).serialize(state);
}
