/**
 * The simulated cluster as plain data. All instants are integer microseconds since the epoch.
 * A cluster is generated once, up front, for the whole horizon; the status of an allocation
 * at any instant is derived from these fields (see state.ts).
 */

import type { NativeResources } from '../snapshots/format.js';
import type { ResolvedOptions } from './options.js';

export type JobKind = 'module' | 'tool-devenv' | 'tool-llm' | 'tool-fl' | 'tool-ai4life' | 'batch';

export type FinalStatus = 'complete' | 'failed' | 'lost';

export interface SimUser {
  /** AI4OS owner id: 64 hex characters + "@egi.eu". */
  id: string;
  name: string;
  email: string;
  namespace: string;
}

export interface SimNode {
  id: string;
  name: string;
  site: string;
  datacenter: string;
  namespace: string;
  gpu: boolean;
  /** GPU model name reported in Nomad device blocks (GPU nodes only). */
  gpuModel: string | null;
  /** This node's disconnections, in time order, never overlapping. */
  disconnects: SimDisconnect[];
}

export interface SimDisconnect {
  node: SimNode;
  atUs: number;
  /** Reconnection instant, or null when the allocations were lost instead. */
  reconnectUs: number | null;
  /** When the server marks the allocations lost (atUs + lostAfter), or null on reconnect. */
  lostUs: number | null;
  /** The scheduler places nothing on the node until then. */
  unavailableUntilUs: number;
}

/** What the main task asks for (the "main" task of AllocatedResources.Tasks). */
export interface MainTask {
  cores: number;
  mhz: number;
  memoryMib: number;
  diskMib: number;
  gpu: number;
}

export interface SimJob {
  index: number;
  /** AI4OS convention: the job id is the uuid in the name. */
  id: string;
  name: string;
  kind: JobKind;
  /** Name prefix: module, tool or batch. */
  component: string;
  namespace: string;
  user: SimUser;
  submitUs: number;
  main: MainTask;
  /** Effective footprint per Nomad's phase rule (main + prestart sidecar). */
  resources: NativeResources;
  title: string;
  description: string;
  image: string;
  command: string;
  /** Whether module-like jobs expose the "custom" endpoint. */
  customEndpoint: boolean;
  /** Allocations in creation order (a rescheduled job has two). */
  allocs: SimAlloc[];
}

export interface SimRestart {
  /** When the task died and was restarted. */
  atUs: number;
  /** The task's new StartedAt (a few seconds after atUs). */
  startedUs: number;
}

export interface SimAlloc {
  index: number;
  id: string;
  job: SimJob;
  node: SimNode;
  createUs: number;
  /** The main task's first start, null if it never started. */
  startUs: number | null;
  restarts: SimRestart[];
  /** The main task's FinishedAt (null for lost allocations). */
  endUs: number | null;
  finalStatus: FinalStatus;
  /** When the server sees the allocation terminal (lost: ModifyTime). GC counts from here. */
  terminalUs: number;
  /** Intervals [from, to) where the client status is "unknown" (node disconnected). */
  unknown: { fromUs: number; toUs: number }[];
  /** First reserved core index on the node. */
  coreOffset: number;
  /** Device ids of the GPUs held. */
  gpuIds: string[];
  /** The allocation this one replaces (rescheduling), if any. */
  previous: SimAlloc | null;
}

export interface ScheduledSnapshot {
  /** Cron's nominal instant. */
  scheduledUs: number;
  /** The capture instant (scheduled + jitter), whole seconds. */
  timeUs: number;
  /** Missed snapshots are not written. */
  missed: boolean;
}

export interface Cluster {
  options: ResolvedOptions;
  /** First scheduled snapshot instant. */
  startUs: number;
  /** The last scheduled snapshot's capture time: truth is clipped here. */
  horizonUs: number;
  namespaces: string[];
  nodes: SimNode[];
  users: SimUser[];
  /** In submission order. */
  jobs: SimJob[];
  /** In creation order. */
  allocations: SimAlloc[];
  /** In time order. */
  disconnects: SimDisconnect[];
  snapshots: ScheduledSnapshot[];
}
