import type { NativeAllocation, NativeQueuedJob, NativeResources } from '../../snapshots/format.js';
import { formatInstant, instantText as instant, nanosToMicros, parseInstant } from '../../util/time.js';
import type { NomadAllocStub, NomadJobStub, NomadTaskResources, NomadTaskState } from './types.js';

/**
 * Nomad allocations to native snapshot records (docs/accounting.md#lifetime, #resources, #attribution). Pure: the
 * capture passes in the API payloads and the job meta it found.
 */

export interface MetaKeys {
  user: string;
  userName: string;
  userEmail: string;
  group: string;
  component: string;
}

export const DEFAULT_META_KEYS: MetaKeys = { user: 'owner', userName: 'owner_name', userEmail: 'owner_email', group: 'group', component: 'component' };

export interface MappingOptions {
  /** The task whose times are the allocation's (default "main"); otherwise the earliest task. */
  mainTask: string;
  meta: MetaKeys;
}

const TERMINAL = new Set(['complete', 'failed', 'lost']);

/** A job's name from one of its allocations' (`name.group[0]`), for a job no longer listed. */
export function jobNameFromAllocation(allocationName: string | undefined): string | null {
  return allocationName ? allocationName.replace(/\.[^.]*\[\d+\]$/, '') : null;
}

function nanosInstant(value: string | number | undefined): string | null {
  if (value === undefined || value === null || value === 0 || value === '0') return null;
  try {
    return formatInstant(nanosToMicros(typeof value === 'number' ? BigInt(Math.round(value)) : value));
  } catch {
    return null;
  }
}

/** The task whose start and end stand for the allocation's. */
function mainTaskState(states: Record<string, NomadTaskState>, mainTask: string): NomadTaskState | null {
  if (states[mainTask]) return states[mainTask]!;
  let best: NomadTaskState | null = null;
  let bestUs = Infinity;
  for (const s of Object.values(states)) {
    const us = safeInstant(s.StartedAt);
    if (us !== null && us < bestUs) {
      best = s;
      bestUs = us;
    }
  }
  return best ?? Object.values(states)[0] ?? null;
}

function safeInstant(v: string | null | undefined): number | null {
  try {
    return parseInstant(v ?? null);
  } catch {
    return null;
  }
}

interface PhaseSum {
  mhz: number;
  memory: number;
  gpu: number;
}

function addTask(sum: PhaseSum, r: NomadTaskResources): void {
  sum.mhz += r.Cpu?.CpuShares ?? 0;
  sum.memory += r.Memory?.MemoryMB ?? 0;
  for (const d of r.Devices ?? []) if (d.Type === 'gpu') sum.gpu += d.DeviceIDs?.length ?? 0;
}

/**
 * The allocation's footprint as Nomad's scheduler counts it (AllocatedResources.Comparable):
 * the largest of the prestart phase (ephemeral and sidecar prestart tasks), the main phase
 * (main tasks, prestart sidecars and poststart tasks) and the poststop phase, plus every
 * reserved core, which stays reserved for the whole allocation.
 */
export function footprint(a: NomadAllocStub): NativeResources {
  const tasks = a.AllocatedResources?.Tasks ?? {};
  const lifecycles = a.AllocatedResources?.TaskLifecycles ?? {};
  const prestart: PhaseSum = { mhz: 0, memory: 0, gpu: 0 };
  const main: PhaseSum = { mhz: 0, memory: 0, gpu: 0 };
  const poststop: PhaseSum = { mhz: 0, memory: 0, gpu: 0 };
  const cores = new Set<number>();
  for (const [name, r] of Object.entries(tasks)) {
    for (const c of r.Cpu?.ReservedCores ?? []) cores.add(c);
    const lc = lifecycles[name];
    if (!lc || !lc.Hook) addTask(main, r);
    else if (lc.Hook === 'prestart') {
      addTask(prestart, r);
      if (lc.Sidecar) addTask(main, r);
    } else if (lc.Hook === 'poststart') addTask(main, r);
    else if (lc.Hook === 'poststop') addTask(poststop, r);
    else addTask(main, r);
  }
  return {
    cpu_cores: cores.size,
    cpu_mhz: Math.max(prestart.mhz, main.mhz, poststop.mhz),
    memory_mib: Math.max(prestart.memory, main.memory, poststop.memory),
    disk_mib: a.AllocatedResources?.Shared?.DiskMB ?? 0,
    gpu: Math.max(prestart.gpu, main.gpu, poststop.gpu),
  };
}

function metaValue(meta: Record<string, string> | null | undefined, key: string): string | null {
  const v = meta?.[key];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Task states without their event logs: enough to re-derive times, a fraction of the size. */
function compactTaskStates(states: Record<string, NomadTaskState>): Record<string, Omit<NomadTaskState, 'Events'>> {
  const out: Record<string, Omit<NomadTaskState, 'Events'>> = {};
  for (const [name, s] of Object.entries(states)) {
    const { Events: _, ...rest } = s;
    out[name] = rest;
  }
  return out;
}

export function mapAllocation(a: NomadAllocStub, jobName: string | null, meta: Record<string, string> | null, opts: MappingOptions): NativeAllocation {
  const states = a.TaskStates ?? {};
  const task = mainTaskState(states, opts.mainTask);
  const terminal = TERMINAL.has(a.ClientStatus);
  const modified = nanosInstant(a.ModifyTime);
  let end = terminal ? instant(task?.FinishedAt) : null;
  // A lost allocation's task states still say running: the server declared it lost at
  // ModifyTime, which bounds its end.
  if (a.ClientStatus === 'lost' && end === null) end = modified;
  return {
    id: a.ID,
    namespace: a.Namespace ?? 'default',
    job_id: a.JobID,
    job_name: jobName,
    user: metaValue(meta, opts.meta.user),
    group: metaValue(meta, opts.meta.group),
    component: metaValue(meta, opts.meta.component),
    node: a.NodeName || null,
    status: a.ClientStatus,
    created: nanosInstant(a.CreateTime),
    start: instant(task?.StartedAt),
    end,
    modified,
    resources: footprint(a),
    raw: {
      tasks: a.AllocatedResources?.Tasks ?? null,
      lifecycles: a.AllocatedResources?.TaskLifecycles ?? null,
      shared_disk_mb: a.AllocatedResources?.Shared?.DiskMB ?? null,
      task_states: compactTaskStates(states),
      meta: meta ?? null,
      name: a.Name ?? null,
      task_group: a.TaskGroup ?? null,
      node_id: a.NodeID ?? null,
      desired_status: a.DesiredStatus ?? null,
      client_description: a.ClientDescription ?? null,
      next_allocation: a.NextAllocation || null,
      create_time: a.CreateTime === undefined ? null : String(a.CreateTime),
      modify_time: a.ModifyTime === undefined ? null : String(a.ModifyTime),
    },
  };
}

/** Jobs with allocations waiting to be placed (queue statistics). */
export function mapQueuedJob(j: NomadJobStub, meta: Record<string, string> | null, keys: MetaKeys): NativeQueuedJob | null {
  let queued = 0;
  for (const s of Object.values(j.JobSummary?.Summary ?? {})) queued += s?.Queued ?? 0;
  if (queued === 0) return null;
  return {
    namespace: j.Namespace ?? 'default',
    job_id: j.ID,
    job_name: j.Name ?? null,
    user: metaValue(meta, keys.user),
    group: metaValue(meta, keys.group),
    component: metaValue(meta, keys.component),
    submitted: nanosInstant(j.SubmitTime),
    queued,
    resources: null,
  };
}
