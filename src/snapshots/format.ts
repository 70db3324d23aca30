/**
 * Snapshot file formats.
 *
 * Native v1 is hourmeter's own format (documented in docs/snapshot-format.md, schema in
 * docs/snapshot-v1.schema.json). Legacy files are the AI4OS `take_snapshot` output:
 * `{namespace: [job, ...]}` named `YYYY-MM-DDTHH:MM:SS.json` (UTC).
 */

export const NATIVE_FORMAT = 'hourmeter.snapshot';
export const NATIVE_VERSION = 1;

/** Resources as the source reported them, in their natural units. */
export interface NativeResources {
  /** CPU cores (Nomad reserved cores; Kubernetes requests, may be fractional). */
  cpu_cores: number;
  /** CPU shares in MHz (Nomad). 0 when the source has no such notion. */
  cpu_mhz: number;
  /** Memory in MiB (Nomad `MemoryMB` is MiB; Kubernetes bytes / 2^20). */
  memory_mib: number;
  /** Disk in MiB (Nomad ephemeral disk; Kubernetes ephemeral-storage request). */
  disk_mib: number;
  /** Accelerator count (Nomad devices of type gpu; nvidia.com/gpu, amd.com/gpu, gpu.intel.com/*). */
  gpu: number;
}

/** Client statuses used in native records (Nomad's vocabulary; Kubernetes phases map onto it). */
export type NativeStatus = 'pending' | 'running' | 'unknown' | 'complete' | 'failed' | 'lost';

export interface NativeAllocation {
  id: string;
  namespace: string;
  job_id: string;
  job_name: string | null;
  user: string | null;
  group: string | null;
  component: string | null;
  node: string | null;
  status: NativeStatus | string;
  /** RFC 3339 instants, null when unset. */
  created: string | null;
  start: string | null;
  end: string | null;
  modified: string | null;
  resources: NativeResources;
  /** Source payload kept verbatim so a mapping bug can be fixed by re-reading old files. */
  raw?: {
    tasks?: unknown;
    lifecycles?: unknown;
    task_states?: unknown;
    meta?: Record<string, unknown> | null;
    [key: string]: unknown;
  };
}

export interface NativeQueuedJob {
  namespace: string;
  job_id: string;
  job_name: string | null;
  user: string | null;
  group: string | null;
  component: string | null;
  /** RFC 3339 submit time, null when unknown. */
  submitted: string | null;
  /** Allocations waiting to be placed. */
  queued: number;
  resources: NativeResources | null;
}

export interface NativeScopeFailure {
  namespace: string;
  reason: string;
}

export interface NativeSnapshot {
  format: typeof NATIVE_FORMAT;
  version: typeof NATIVE_VERSION;
  captured_at: string;
  finished_at: string;
  /** `cluster`: the name of the cluster (docs/accounting.md#clusters); absent for the unnamed cluster. */
  source: { kind: 'nomad' | 'kubernetes' | 'simulator' | string; address: string | null; region: string | null; cluster?: string };
  scope: {
    /** What was asked for: ["*"] for every namespace the credentials can read. */
    requested: string[];
    /** Namespaces captured completely. A snapshot "covers" exactly these. */
    namespaces: string[];
    /** Namespaces (or "*" for the whole listing) that failed, with the reason. */
    failed: NativeScopeFailure[];
  };
  allocations: NativeAllocation[];
  queued: NativeQueuedJob[];
}

/**
 * A native snapshot document as a capture writes it: the listing of `covered` namespaces,
 * what failed, and when the capture started and finished.
 */
export function nativeSnapshot(p: {
  capturedAt: Date;
  finishedAt: Date;
  source: NativeSnapshot['source'];
  /** Namespaces asked for; null for every one the credentials can read. */
  requested: string[] | null;
  covered: string[];
  failed: NativeScopeFailure[];
  allocations: NativeAllocation[];
  queued: NativeQueuedJob[];
}): NativeSnapshot {
  return {
    format: NATIVE_FORMAT,
    version: NATIVE_VERSION,
    captured_at: p.capturedAt.toISOString(),
    finished_at: p.finishedAt.toISOString(),
    source: p.source,
    scope: { requested: p.requested ?? ['*'], namespaces: p.covered, failed: p.failed },
    allocations: p.allocations,
    queued: p.queued,
  };
}

/** One job record of an AI4OS legacy snapshot (only the fields hourmeter reads are typed). */
export interface LegacyJob {
  job_ID: string;
  name?: string | null;
  status: string;
  owner?: string | null;
  alloc_ID?: string | null;
  alloc_start?: string | null;
  alloc_end?: string | null;
  resources: { cpu_num: number; cpu_MHz: number; gpu_num: number; memory_MB: number; disk_MB: number };
  [key: string]: unknown;
}

export type LegacySnapshot = Record<string, LegacyJob[]>;
