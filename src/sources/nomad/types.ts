/** The parts of Nomad's API responses that hourmeter reads (see the API reference). */

export interface NomadTaskResources {
  Cpu?: { CpuShares?: number; ReservedCores?: number[] | null } | null;
  Memory?: { MemoryMB?: number; MemoryMaxMB?: number } | null;
  Devices?: { Vendor?: string; Type?: string; Name?: string; DeviceIDs?: string[] | null }[] | null;
}

export interface NomadLifecycle {
  Hook?: string;
  Sidecar?: boolean;
}

export interface NomadAllocatedResources {
  Tasks?: Record<string, NomadTaskResources> | null;
  TaskLifecycles?: Record<string, NomadLifecycle | null> | null;
  Shared?: { DiskMB?: number } | null;
}

export interface NomadTaskState {
  State?: string;
  Failed?: boolean;
  Restarts?: number;
  LastRestart?: string | null;
  StartedAt?: string | null;
  FinishedAt?: string | null;
  Events?: unknown[];
}

/**
 * An allocation list stub (`GET /v1/allocations?resources=true`). CreateTime and ModifyTime
 * are Unix nanoseconds beyond 2^53; the client hands them over as decimal strings.
 */
export interface NomadAllocStub {
  ID: string;
  Namespace?: string;
  JobID: string;
  JobType?: string;
  Name?: string;
  TaskGroup?: string;
  NodeID?: string;
  NodeName?: string;
  ClientStatus: string;
  ClientDescription?: string;
  DesiredStatus?: string;
  DesiredDescription?: string;
  NextAllocation?: string;
  CreateTime?: string | number;
  ModifyTime?: string | number;
  AllocatedResources?: NomadAllocatedResources;
  TaskStates?: Record<string, NomadTaskState> | null;
  Job?: { Meta?: Record<string, string> | null } | null;
}

export interface NomadJobStub {
  ID: string;
  Name?: string;
  Namespace?: string;
  Status?: string;
  Type?: string;
  SubmitTime?: string | number;
  JobModifyIndex?: number;
  JobSummary?: { Summary?: Record<string, { Queued?: number }> | null } | null;
  Meta?: Record<string, string> | null;
}

export interface NomadNamespace {
  Name: string;
}
