/**
 * The simulator's cluster in Nomad's own response shapes (see the API reference, sections
 * 0-6, and the fixtures in shared/fixtures/nomad). Pure: every function takes the cluster
 * and the simulated instant, so the fake server only routes, pages and injects faults.
 *
 * Objects are built with their keys in sorted order because Nomad's encoder writes struct
 * fields sorted; Unix-nanosecond integers go through `NanoInt` so the JSON text carries
 * them exactly (they exceed 2^53).
 */

import { createHash } from 'node:crypto';
import { SIDECAR } from '../src/simulator/catalog.js';
import type { Cluster, SimAlloc, SimJob, SimNode } from '../src/simulator/model.js';
import { nomadTaskResources, rfc3339Nano, unixNanos } from '../src/simulator/render.js';
import { isTerminal, viewAt, type AllocView } from '../src/simulator/state.js';

// ---------------------------------------------------------------------------------------
// Exact big integers in JSON text

/** Marker JSON.stringify escapes (\u0000), so no ordinary string can collide with it by accident. */
const NANO_MARK = '\u0000nanos:';
const NANO_RE = /"\\u0000nanos:(-?\d+)"/g;

/** An integer JSON value written digit for digit (Nomad's int64 nanoseconds). */
export class NanoInt {
  constructor(readonly digits: string) {}
  toJSON(): string {
    return NANO_MARK + this.digits;
  }
}

export function nanos(us: number): NanoInt {
  return new NanoInt(unixNanos(us));
}

/** JSON text with every NanoInt written as a bare integer. */
export function toNomadJson(value: unknown): string {
  return JSON.stringify(value).replace(NANO_RE, '$1');
}

// ---------------------------------------------------------------------------------------
// Raft indexes and per-cluster lookups

const INDEX_BASE = 1000;
const INDEX_STEP = 4;
const SEC = 1_000_000;
const MS = 1000;

/** Lookups built once per cluster: raft indexes, ids, and the parts of an allocation that never change. */
export interface NomadIndex {
  cluster: Cluster;
  /** Sorted instants of job registrations, allocation placements and allocation changes (the raft writes we model). */
  times: Float64Array;
  jobCreateIndex: Map<SimJob, number>;
  allocCreateIndex: Map<SimAlloc, number>;
  allocById: Map<string, SimAlloc>;
  /** Key "<namespace>\u0000<job id>". */
  jobByKey: Map<string, SimJob>;
  /** The replacement placed for a rescheduled allocation. */
  nextAlloc: Map<SimAlloc, SimAlloc>;
  statics: Map<SimAlloc, AllocStatic>;
  nodeIps: Map<SimNode, string>;
  /** Every change in time order, built on first use by the event stream. */
  changes: ChangeTable | null;
}

interface AllocStatic {
  name: string;
  evalId: string;
  followupEvalId: string;
  deploymentId: string;
  signingKeyId: string;
  jobType: 'service' | 'batch';
  allocatedResources: unknown;
  sharedResources: unknown;
  taskResources: unknown;
  /** Small per-allocation offsets so event times differ between allocations. */
  salt: number;
  sidecarStartUs: number;
}

const indexes = new WeakMap<Cluster, NomadIndex>();

export function nomadIndex(cluster: Cluster): NomadIndex {
  let ix = indexes.get(cluster);
  if (!ix) {
    ix = buildIndex(cluster);
    indexes.set(cluster, ix);
  }
  return ix;
}

/**
 * Every change the server records for an allocation, in time order: placement, start,
 * restarts, disconnects and reconnects, the terminal status, and the stop that comes with
 * a replacement's placement. Each change instant is a raft write with its own index.
 */
export function allocChanges(a: SimAlloc, next: SimAlloc | null): AllocChange[] {
  const out: AllocChange[] = [{ us: a.createUs, type: 'PlanResult' }];
  if (a.startUs !== null) out.push({ us: a.startUs, type: 'AllocationUpdated' });
  for (const r of a.restarts) {
    out.push({ us: r.atUs, type: 'AllocationUpdated' }, { us: r.startedUs, type: 'AllocationUpdated' });
  }
  for (const u of a.unknown) {
    // The scheduler marks allocations of a disconnected node unknown; the client reports back.
    out.push({ us: u.fromUs, type: 'PlanResult' });
    if (!(a.finalStatus === 'lost' && u.toUs === a.terminalUs)) out.push({ us: u.toUs, type: 'AllocationUpdated' });
  }
  out.push({ us: a.terminalUs, type: a.finalStatus === 'lost' ? 'PlanResult' : 'AllocationUpdated' });
  if (next) out.push({ us: next.createUs, type: 'PlanResult' });
  const seen = new Set<number>();
  return out
    .filter((c) => c.us >= a.createUs)
    .sort((x, y) => x.us - y.us)
    .filter((c) => (seen.has(c.us) ? false : (seen.add(c.us), true)));
}

export interface AllocChange {
  us: number;
  /** The event Type of the raft write behind it. */
  type: 'PlanResult' | 'AllocationUpdated';
}

function buildIndex(cluster: Cluster): NomadIndex {
  const jobs = [...cluster.jobs].sort((a, b) => a.submitUs - b.submitUs || a.index - b.index);
  const allocs = cluster.allocations;
  const allocById = new Map<string, SimAlloc>();
  const nextAlloc = new Map<SimAlloc, SimAlloc>();
  for (const a of allocs) {
    allocById.set(a.id, a);
    if (a.previous) nextAlloc.set(a.previous, a);
  }
  // Changes after placement are raft writes too: they take index slots after the creations
  // at the same instant, so ModifyIndex and event indexes move with every change.
  const later: number[] = [];
  for (const a of allocs) {
    for (const c of allocChanges(a, nextAlloc.get(a) ?? null)) if (c.us !== a.createUs) later.push(c.us);
  }
  const laterSorted = Float64Array.from(later).sort();
  const times = new Float64Array(jobs.length + allocs.length + laterSorted.length);
  const jobCreateIndex = new Map<SimJob, number>();
  const allocCreateIndex = new Map<SimAlloc, number>();
  // Merge registrations, placements and later changes in time order: create indexes then
  // grow with time, as raft indexes do, and allocations keep their creation order.
  let i = 0;
  let j = 0;
  let k = 0;
  let pos = 0;
  while (i < jobs.length || j < allocs.length || k < laterSorted.length) {
    const job = jobs[i];
    const alloc = allocs[j];
    const creation = job ? (alloc ? Math.min(job.submitUs, alloc.createUs) : job.submitUs) : alloc ? alloc.createUs : Infinity;
    if (k < laterSorted.length && (laterSorted[k] as number) < creation) {
      times[pos++] = laterSorted[k++] as number;
    } else if (job && (!alloc || job.submitUs <= alloc.createUs)) {
      jobCreateIndex.set(job, INDEX_BASE + INDEX_STEP * pos);
      times[pos++] = job.submitUs;
      i++;
    } else if (alloc) {
      allocCreateIndex.set(alloc, INDEX_BASE + INDEX_STEP * pos);
      times[pos++] = alloc.createUs;
      j++;
    }
  }
  const jobByKey = new Map<string, SimJob>();
  for (const job of cluster.jobs) jobByKey.set(`${job.namespace}\u0000${job.id}`, job);
  return {
    cluster,
    times,
    jobCreateIndex,
    allocCreateIndex,
    allocById,
    jobByKey,
    nextAlloc,
    statics: new Map(),
    nodeIps: new Map(),
    changes: null,
  };
}

/** The raft index once everything up to t has been written. */
export function indexAt(ix: NomadIndex, t: number): number {
  let lo = 0;
  let hi = ix.times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ix.times[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return INDEX_BASE + INDEX_STEP * lo + 2;
}

/** The X-Nomad-Index a server would report at t: above every index it has served. */
export function serverIndexAt(ix: NomadIndex, t: number): number {
  return indexAt(ix, t) + 1;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A stable UUID derived from the given parts (the simulator only generates alloc/job/node ids). */
function derivedUuid(...parts: string[]): string {
  const h = digest(parts.join('\u0000')).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function nodeIp(ix: NomadIndex, node: SimNode): string {
  let ip = ix.nodeIps.get(node);
  if (!ip) {
    const h = digest(node.id);
    ip = `10.${h[0]! % 64}.${h[1]!}.${(h[2]! % 250) + 2}`;
    ix.nodeIps.set(node, ip);
  }
  return ip;
}

function jobType(job: SimJob): 'service' | 'batch' {
  return job.kind === 'batch' ? 'batch' : 'service';
}

/** The ports AI4OS jobs expose (labels as in the fixtures). */
function portLabels(job: SimJob): [string, number][] {
  switch (job.kind) {
    case 'batch':
      return [];
    case 'tool-llm':
      return [['ui', 8080], ['vllm', 8000]];
    case 'tool-fl':
      return [['fedserver', 5000], ['monitor', 6006], ['ide', 8888]];
    default:
      return [['api', 5000], ['monitor', 6006], ['ide', 8888]];
  }
}

function allocStatic(ix: NomadIndex, a: SimAlloc): AllocStatic {
  let s = ix.statics.get(a);
  if (s) return s;
  const job = a.job;
  const h = digest(a.id);
  const salt = h.readUInt32BE(0);
  const ip = nodeIp(ix, a.node);
  const labels = portLabels(job);
  const ports = labels.map(([label, to], k) => ({ label, to, value: 20000 + ((salt >>> (k * 3)) % 12000) }));
  const networks =
    ports.length === 0
      ? null
      : [{ DynamicPorts: ports.map((p) => ({ Label: p.label, To: p.to, Value: p.value })), IP: ip, Mode: 'host' }];
  const allocatedResources = {
    Shared: {
      DiskMB: job.main.diskMib,
      Networks: networks,
      Ports: ports.length === 0 ? null : ports.map((p) => ({ HostIP: ip, Label: p.label, To: p.to, Value: p.value })),
    },
    TaskLifecycles: { main: null, [SIDECAR.name]: { Hook: 'prestart', Sidecar: true } },
    Tasks: nomadTaskResources(a),
  };
  const legacyResources = (cpu: number, cores: number, memory: number, maxMemory: number, gpu: number, disk: number, nets: unknown) => ({
    CPU: cpu,
    Cores: cores,
    Devices: gpu > 0 ? [{ Affinities: null, Constraints: null, Count: gpu, Name: 'gpu' }] : null,
    DiskMB: disk,
    IOPS: 0,
    MemoryMB: memory,
    MemoryMaxMB: maxMemory,
    NUMA: null,
    Networks: nets,
    SecretsMB: 0,
  });
  s = {
    name: `${job.name}.usergroup[0]`,
    evalId: derivedUuid(a.id, 'eval'),
    followupEvalId: derivedUuid(a.id, 'followup-eval'),
    deploymentId: derivedUuid(job.id, 'deployment'),
    signingKeyId: derivedUuid(ix.cluster.options.seed, 'signing-key'),
    jobType: jobType(job),
    allocatedResources,
    sharedResources: legacyResources(0, 0, 0, 0, 0, job.main.diskMib, networks),
    taskResources: {
      main: legacyResources(job.main.mhz, job.main.cores, job.main.memoryMib, job.main.memoryMib, job.main.gpu, 0, null),
      [SIDECAR.name]: legacyResources(SIDECAR.mhz, 0, SIDECAR.memoryMib, 0, 0, 0, null),
    },
    salt,
    // The prestart sidecar runs a few seconds after placement, before the image pull ends
    // (the main task never starts less than 10 s after placement).
    sidecarStartUs: a.createUs + 1500 * MS + (salt % 3000) * MS,
  };
  ix.statics.set(a, s);
  return s;
}

// ---------------------------------------------------------------------------------------
// Task states

interface TaskEventSpec {
  type: string;
  us: number;
  display: string;
  details?: Record<string, string>;
  message?: string;
  driverMessage?: string;
  driverError?: string;
  exitCode?: number;
  failsTask?: boolean;
  failedSibling?: string;
  killTimeout?: number;
  restartReason?: string;
  startDelay?: number;
}

/** A TaskEvent with every field Nomad writes, deprecated flat ones included. */
function taskEvent(e: TaskEventSpec): Record<string, unknown> {
  return {
    Details: e.details ?? {},
    DiskLimit: 0,
    DisplayMessage: e.display,
    DownloadError: '',
    DriverError: e.driverError ?? '',
    DriverMessage: e.driverMessage ?? '',
    ExitCode: e.exitCode ?? 0,
    FailedSibling: e.failedSibling ?? '',
    FailsTask: e.failsTask ?? false,
    GenericSource: '',
    KillError: '',
    KillReason: '',
    KillTimeout: e.killTimeout ?? 0,
    Message: e.message ?? '',
    RestartReason: e.restartReason ?? '',
    SetupError: '',
    Signal: 0,
    StartDelay: e.startDelay ?? 0,
    TaskSignal: '',
    TaskSignalReason: '',
    Time: nanos(e.us),
    Type: e.type,
    ValidationError: '',
    VaultError: '',
  };
}

const RESTART_POLICY_REASON = 'Restart within policy';
const NOT_RESTARTING_REASON = 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"';
const KILL_TIMEOUT_NS = 5_000_000_000;

function terminated(us: number, exitCode: number): TaskEventSpec {
  return {
    type: 'Terminated',
    us,
    display: `Exit Code: ${exitCode}`,
    details: { exit_code: String(exitCode), oom_killed: 'false', signal: '0' },
    exitCode,
  };
}

/** The instant of the client's last report: a disconnected node reports nothing after it went away. */
function reportTime(v: AllocView, t: number): number {
  if (v.status !== 'unknown' && v.status !== 'lost') return t;
  let from = t;
  for (const u of v.alloc.unknown) if (u.fromUs <= t) from = u.fromUs;
  return from;
}

/** Nomad keeps the last 10 events per task. */
function lastEvents(specs: TaskEventSpec[], r: number): Record<string, unknown>[] {
  return specs
    .filter((e) => e.us <= r)
    .sort((x, y) => x.us - y.us)
    .slice(-10)
    .map(taskEvent);
}

function mainTaskState(v: AllocView, s: AllocStatic, r: number): Record<string, unknown> {
  const a = v.alloc;
  const ended = v.finishedAtUs !== null;
  const specs: TaskEventSpec[] = [];
  const received = a.createUs + 100 * MS + (s.salt % 80) * MS;
  specs.push({ type: 'Received', us: received, display: 'Task received by client' });
  specs.push({
    type: 'Task Setup',
    us: received + 10 * MS + (s.salt % 5000),
    display: 'Building Task Directory',
    details: { message: 'Building Task Directory' },
    message: 'Building Task Directory',
  });
  const pull = a.createUs + SEC + (s.salt % 2000) * MS;
  if (pull < (a.startUs ?? a.endUs ?? Infinity)) {
    specs.push({
      type: 'Driver',
      us: pull,
      display: 'Downloading image',
      details: { driver_message: 'Downloading image' },
      driverMessage: 'Downloading image',
    });
  }
  if (a.startUs !== null) specs.push({ type: 'Started', us: a.startUs, display: 'Task started by client' });
  let lastRestart: number | null = null;
  for (const x of a.restarts) {
    if (x.atUs > r) continue;
    const delayNs = (x.startedUs - x.atUs - 700) * 1000;
    specs.push(terminated(x.atUs, 1));
    specs.push({
      type: 'Restarting',
      us: x.atUs + 700,
      display: `Task restarting in ${(delayNs / 1e9).toFixed(3).replace(/\.?0+$/, '')}s`,
      details: { restart_reason: RESTART_POLICY_REASON, start_delay: String(delayNs) },
      restartReason: RESTART_POLICY_REASON,
      startDelay: delayNs,
    });
    specs.push({ type: 'Started', us: x.startedUs, display: 'Task started by client' });
    lastRestart = x.atUs + 700;
  }
  for (const u of a.unknown) {
    // The lost interval never ends in a reconnection.
    if (a.finalStatus === 'lost' && u.toUs === a.terminalUs) continue;
    specs.push({ type: 'Reconnected', us: u.toUs, display: 'Client reconnected' });
  }
  if (ended && a.endUs !== null) {
    if (a.finalStatus === 'complete') specs.push(terminated(a.endUs, 0));
    else if (a.startUs !== null) specs.push(terminated(a.endUs, 1));
    else {
      const msg = `Failed to pull \`${a.job.image}\`: API error (404): manifest unknown`;
      specs.push({
        type: 'Driver Failure',
        us: a.endUs,
        display: msg,
        details: { driver_error: msg, fails_task: 'true' },
        driverError: msg,
        failsTask: true,
      });
    }
    if (a.finalStatus === 'failed') {
      specs.push({
        type: 'Not Restarting',
        us: a.endUs + 800,
        display: NOT_RESTARTING_REASON,
        details: { fails_task: 'true', restart_reason: NOT_RESTARTING_REASON },
        failsTask: true,
        restartReason: NOT_RESTARTING_REASON,
      });
    }
  }
  let state: string;
  if (ended) state = 'dead';
  else state = v.startedAtUs !== null ? 'running' : 'pending';
  return {
    Events: lastEvents(specs, r),
    Failed: ended && a.finalStatus === 'failed',
    FinishedAt: v.finishedAtUs === null ? null : rfc3339Nano(v.finishedAtUs),
    LastRestart: lastRestart === null ? null : rfc3339Nano(lastRestart),
    Paused: '',
    Restarts: v.restarts,
    StartedAt: v.startedAtUs === null ? null : rfc3339Nano(v.startedAtUs),
    State: state,
  };
}

function sidecarTaskState(v: AllocView, s: AllocStatic, r: number): Record<string, unknown> {
  const a = v.alloc;
  const specs: TaskEventSpec[] = [];
  const received = a.createUs + 99 * MS + (s.salt % 80) * MS;
  specs.push({ type: 'Received', us: received, display: 'Task received by client' });
  specs.push({
    type: 'Task Setup',
    us: received + 8 * MS + (s.salt % 4000),
    display: 'Building Task Directory',
    details: { message: 'Building Task Directory' },
    message: 'Building Task Directory',
  });
  const started = s.sidecarStartUs <= r;
  if (started) specs.push({ type: 'Started', us: s.sidecarStartUs, display: 'Task started by client' });
  let finishedUs: number | null = null;
  if (v.finishedAtUs !== null && a.endUs !== null) {
    // Killed right after the main task ends, and before the server records the end.
    const d = Math.min(a.terminalUs - a.endUs, SEC);
    const failed = a.finalStatus === 'failed';
    specs.push(
      failed
        ? {
            type: 'Sibling Task Failed',
            us: a.endUs + Math.round(d * 0.05),
            display: "Task's sibling \"main\" failed",
            details: { failed_sibling: 'main', fails_task: 'true' },
            failedSibling: 'main',
            failsTask: true,
          }
        : { type: 'Main Tasks Dead', us: a.endUs + Math.round(d * 0.05), display: 'Main tasks in the group died' },
    );
    specs.push({
      type: 'Killing',
      us: a.endUs + Math.round(d * 0.06),
      display: 'Sent interrupt. Waiting 5s before force killing',
      details: { kill_timeout: String(KILL_TIMEOUT_NS) },
      killTimeout: KILL_TIMEOUT_NS,
    });
    if (started) specs.push(terminated(a.endUs + Math.round(d * 0.7), 0));
    finishedUs = a.endUs + Math.round(d * 0.8);
    specs.push({ type: 'Killed', us: finishedUs, display: 'Task successfully killed' });
  }
  return {
    Events: lastEvents(specs, r),
    Failed: false,
    FinishedAt: finishedUs === null ? null : rfc3339Nano(finishedUs),
    LastRestart: null,
    Paused: '',
    Restarts: 0,
    StartedAt: started ? rfc3339Nano(s.sidecarStartUs) : null,
    State: finishedUs !== null ? 'dead' : started ? 'running' : 'pending',
  };
}

function taskStates(v: AllocView, s: AllocStatic, t: number): Record<string, unknown> {
  const r = reportTime(v, t);
  return { main: mainTaskState(v, s, r), [SIDECAR.name]: sidecarTaskState(v, s, r) };
}

// ---------------------------------------------------------------------------------------
// Allocations

const CLIENT_DESCRIPTION: Record<string, string> = {
  pending: 'No tasks have started',
  running: 'Tasks are running',
  complete: 'All tasks have completed',
  failed: 'Failed tasks',
  unknown: 'alloc is unknown since its node is disconnected',
};

export interface StubOptions {
  resources: boolean;
  taskStates: boolean;
}

/** The replacement of `a` once the server has placed it at t. */
function placedNext(ix: NomadIndex, a: SimAlloc, t: number): SimAlloc | null {
  const next = ix.nextAlloc.get(a);
  return next && next.createUs <= t ? next : null;
}

/** An AllocListStub as `GET /v1/allocations` returns it at t. */
export function allocStub(ix: NomadIndex, v: AllocView, t: number, opts: StubOptions): Record<string, unknown> {
  const a = v.alloc;
  const s = allocStatic(ix, a);
  const createIndex = ix.allocCreateIndex.get(a) ?? INDEX_BASE;
  const next = placedNext(ix, a, t);
  // ModifyIndex is the index of the allocation's last change; a task restart and the
  // replacement's placement (NextAllocation) bump it but not ModifyTime.
  let lastChangeUs = v.modifyUs;
  for (const r of a.restarts) if (r.atUs <= t) lastChangeUs = Math.max(lastChangeUs, r.atUs);
  if (next) lastChangeUs = Math.max(lastChangeUs, next.createUs);
  const modifyIndex = indexAt(ix, lastChangeUs);

  let desiredStatus = 'run';
  let desiredDescription = '';
  let clientDescription = CLIENT_DESCRIPTION[v.status] ?? '';
  let followup = '';
  if (v.status === 'lost') {
    desiredStatus = 'stop';
    desiredDescription = 'alloc is lost since its node is down';
    // The client's last report still stands.
    clientDescription = v.startedAtUs !== null ? CLIENT_DESCRIPTION.running! : CLIENT_DESCRIPTION.pending!;
  } else if (v.status === 'unknown') {
    followup = s.followupEvalId;
  } else if (next) {
    desiredStatus = 'stop';
    desiredDescription = 'alloc was rescheduled because it failed';
    followup = s.followupEvalId;
  } else if (v.status === 'complete' && s.jobType === 'service') {
    // A service only completes when its job is stopped.
    desiredStatus = 'stop';
    desiredDescription = 'alloc not needed due to job update';
  }

  let rescheduleTracker: unknown = null;
  if (a.previous) {
    rescheduleTracker = {
      Events: [
        {
          Delay: 30_000_000_000,
          PrevAllocID: a.previous.id,
          PrevNodeID: a.previous.node.id,
          RescheduleTime: nanos(a.createUs - 6 * MS),
        },
      ],
      LastReschedule: 'ok',
    };
  } else if (next) {
    rescheduleTracker = { Events: null, LastReschedule: 'ok' };
  }

  let deploymentStatus: unknown = null;
  if (s.jobType === 'service' && a.startUs !== null && a.startUs + 10 * SEC <= t && v.startedAtUs !== null) {
    const healthyAt = a.startUs + 10 * SEC;
    deploymentStatus = {
      Canary: false,
      Healthy: !(v.status === 'failed'),
      ModifyIndex: indexAt(ix, healthyAt),
      Timestamp: rfc3339Nano(healthyAt),
    };
  }

  const stub: Record<string, unknown> = {};
  if (opts.resources) stub.AllocatedResources = s.allocatedResources;
  stub.ClientDescription = clientDescription;
  stub.ClientStatus = v.status;
  stub.CreateIndex = createIndex;
  stub.CreateTime = nanos(v.createUs);
  stub.DeploymentStatus = deploymentStatus;
  stub.DesiredDescription = desiredDescription;
  stub.DesiredStatus = desiredStatus;
  stub.DesiredTransition = { ForceReschedule: null, Migrate: null, MigrateDisablePlacement: null, NoShutdownDelay: null, Reschedule: null };
  stub.EvalID = s.evalId;
  stub.FollowupEvalID = followup;
  stub.ID = a.id;
  stub.JobID = a.job.id;
  stub.JobType = s.jobType;
  stub.JobVersion = 0;
  stub.ModifyIndex = modifyIndex;
  stub.ModifyTime = nanos(v.modifyUs);
  stub.Name = s.name;
  stub.Namespace = v.namespace;
  stub.NextAllocation = next ? next.id : '';
  stub.NodeID = a.node.id;
  stub.NodeName = a.node.name;
  stub.PreemptedAllocations = null;
  stub.PreemptedByAllocation = '';
  stub.RescheduleTracker = rescheduleTracker;
  stub.TaskGroup = 'usergroup';
  // AllocListStub has no omitempty on TaskStates: task_states=false gives null.
  stub.TaskStates = opts.taskStates ? taskStates(v, s, t) : null;
  return stub;
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === '' || value === 0 || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object' && !(value instanceof NanoInt)) return Object.values(value).every(isEmpty);
  return false;
}

function sortedKeys(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj).sort()) out[k] = obj[k];
  return out;
}

/**
 * The full Allocation of `GET /v1/allocation/:id`, with the copy of its job. Allocation
 * carries struct-level omitempty, so empty fields are left out.
 */
export function fullAllocation(ix: NomadIndex, v: AllocView, t: number): Record<string, unknown> {
  const a = v.alloc;
  const s = allocStatic(ix, a);
  const stub = allocStub(ix, v, t, { resources: true, taskStates: true });
  // Stub-only fields.
  delete stub.JobType;
  delete stub.PreemptedAllocations;
  delete stub.PreemptedByAllocation;
  const full: Record<string, unknown> = {
    ...stub,
    AllocModifyIndex: stub.CreateIndex,
    DeploymentID: s.jobType === 'service' ? s.deploymentId : '',
    Job: fullJob(ix, a.job, a.createUs, true),
    Metrics: allocMetrics(ix, a),
    PreviousAllocation: a.previous ? a.previous.id : '',
    SharedResources: s.sharedResources,
    SigningKeyID: s.signingKeyId,
    TaskResources: s.taskResources,
  };
  for (const k of Object.keys(full)) if (isEmpty(full[k])) delete full[k];
  return sortedKeys(full);
}

function allocMetrics(ix: NomadIndex, a: SimAlloc): Record<string, unknown> {
  const pool = ix.cluster.nodes.filter((n) => n.namespace === a.node.namespace && n.gpu === a.node.gpu);
  const available: Record<string, number> = {};
  for (const n of pool) available[n.datacenter] = (available[n.datacenter] ?? 0) + 1;
  return {
    AllocationTime: 150_000 + (allocStatic(ix, a).salt % 400_000),
    ClassExhausted: null,
    ClassFiltered: null,
    CoalescedFailures: 0,
    ConstraintFiltered: null,
    DimensionExhausted: null,
    NodePool: 'default',
    NodesAvailable: sortedKeys(available),
    NodesEvaluated: pool.length,
    NodesExhausted: 0,
    NodesFiltered: 0,
    NodesInPool: ix.cluster.nodes.length,
    QuotaExhausted: null,
    ResourcesExhausted: null,
    ScoreMetaData: null,
    Scores: null,
  };
}

// ---------------------------------------------------------------------------------------
// Jobs

export function jobMeta(job: SimJob): Record<string, string> {
  return {
    description: job.description,
    owner: job.user.id,
    owner_email: job.user.email,
    owner_name: job.user.name,
    title: job.title,
  };
}

export interface JobStatusAt {
  status: 'pending' | 'running' | 'dead';
  /** When the job became dead (its last allocation terminal), else null. */
  deadSinceUs: number | null;
  summary: { Complete: number; Failed: number; Lost: number; Queued: number; Running: number; Starting: number; Unknown: number };
  /** The last change the server recorded for the job up to t. */
  modifyUs: number;
}

export function jobStatusAt(job: SimJob, t: number): JobStatusAt {
  const summary = { Complete: 0, Failed: 0, Lost: 0, Queued: 0, Running: 0, Starting: 0, Unknown: 0 };
  let live = false;
  let placed = 0;
  let lastTerminal = -Infinity;
  let modifyUs = job.submitUs;
  for (const a of job.allocs) {
    if (a.createUs > t) continue;
    placed++;
    const v = viewAt(a, t);
    modifyUs = Math.max(modifyUs, v.modifyUs);
    switch (v.status) {
      case 'pending':
        summary.Starting++;
        break;
      case 'running':
        summary.Running++;
        break;
      case 'unknown':
        summary.Unknown++;
        break;
      case 'complete':
        summary.Complete++;
        break;
      case 'failed':
        summary.Failed++;
        break;
      case 'lost':
        summary.Lost++;
        break;
    }
    if (isTerminal(v.status)) lastTerminal = Math.max(lastTerminal, a.terminalUs);
    else live = true;
  }
  if (placed === 0) {
    summary.Queued = 1;
    return { status: 'pending', deadSinceUs: null, summary, modifyUs };
  }
  if (live) return { status: 'running', deadSinceUs: null, summary, modifyUs };
  // A failed allocation whose replacement is not placed yet leaves the job waiting.
  if (job.allocs.some((a) => a.createUs > t)) return { status: 'pending', deadSinceUs: null, summary, modifyUs };
  return { status: 'dead', deadSinceUs: lastTerminal, summary, modifyUs };
}

/** A JobListStub as `GET /v1/jobs` returns it; `withMeta` adds the job-level Meta (Nomad >= 1.5). */
export function jobStub(ix: NomadIndex, job: SimJob, st: JobStatusAt, withMeta: boolean): Record<string, unknown> {
  const createIndex = ix.jobCreateIndex.get(job) ?? INDEX_BASE;
  const modifyIndex = Math.max(createIndex, indexAt(ix, st.modifyUs));
  const type = jobType(job);
  const stub: Record<string, unknown> = {
    CreateIndex: createIndex,
    Datacenters: ['*'],
    ID: job.id,
    JobModifyIndex: createIndex,
    JobSummary: {
      Children: { Dead: 0, Pending: 0, Running: 0 },
      CreateIndex: createIndex,
      JobID: job.id,
      ModifyIndex: modifyIndex,
      Namespace: job.namespace,
      Summary: { usergroup: st.summary },
    },
  };
  if (withMeta) stub.Meta = jobMeta(job);
  Object.assign(stub, {
    ModifyIndex: modifyIndex,
    Multiregion: null,
    Name: job.name,
    Namespace: job.namespace,
    NodePool: 'default',
    ParameterizedJob: false,
    ParentID: '',
    Periodic: false,
    Priority: 50,
    Status: st.status,
    StatusDescription: '',
    Stop: st.status === 'dead' && type === 'service',
    SubmitTime: nanos(job.submitUs),
    Type: type,
  });
  return stub;
}

/**
 * The full Job of `GET /v1/job/:id` at t (abridged to the fields an accounting client could
 * use). `asRegistered` gives the copy an allocation keeps: the job as it was submitted.
 */
export function fullJob(ix: NomadIndex, job: SimJob, t: number, asRegistered = false): Record<string, unknown> {
  const createIndex = ix.jobCreateIndex.get(job) ?? INDEX_BASE;
  const st = jobStatusAt(job, t);
  const type = jobType(job);
  const resources = (cpu: number, cores: number, memory: number, maxMemory: number, gpu: number) => ({
    CPU: cpu,
    Cores: cores,
    Devices: gpu > 0 ? [{ Affinities: null, Constraints: null, Count: gpu, Name: 'gpu' }] : null,
    DiskMB: 0,
    IOPS: 0,
    MemoryMB: memory,
    MemoryMaxMB: maxMemory,
    NUMA: null,
    Networks: null,
    SecretsMB: 0,
  });
  const config: Record<string, unknown> = { image: job.image };
  if (job.command !== '') {
    const [command, ...args] = job.command.split(' ');
    config.args = args;
    config.command = command;
  }
  return {
    Affinities: null,
    AllAtOnce: false,
    Constraints: null,
    ConsulNamespace: '',
    CreateIndex: createIndex,
    Datacenters: ['*'],
    DispatchIdempotencyToken: '',
    Dispatched: false,
    ID: job.id,
    JobModifyIndex: createIndex,
    Meta: jobMeta(job),
    ModifyIndex: asRegistered ? createIndex : Math.max(createIndex, indexAt(ix, st.modifyUs)),
    Multiregion: null,
    Name: job.name,
    Namespace: job.namespace,
    NodePool: 'default',
    ParameterizedJob: null,
    ParentID: '',
    Payload: null,
    Periodic: null,
    Priority: 50,
    Region: 'global',
    Spreads: null,
    Stable: false,
    Status: asRegistered ? 'pending' : st.status,
    StatusDescription: '',
    Stop: !asRegistered && st.status === 'dead' && type === 'service',
    SubmitTime: nanos(job.submitUs),
    TaskGroups: [
      {
        Affinities: null,
        Constraints: null,
        Count: 1,
        EphemeralDisk: { Migrate: false, SizeMB: job.main.diskMib, Sticky: false },
        Meta: null,
        Name: 'usergroup',
        ReschedulePolicy: {
          Attempts: 0,
          Delay: 30_000_000_000,
          DelayFunction: 'exponential',
          Interval: 0,
          MaxDelay: 3_600_000_000_000,
          Unlimited: true,
        },
        RestartPolicy: { Attempts: 2, Delay: 15_000_000_000, Interval: 1_800_000_000_000, Mode: 'fail', RenderTemplates: false },
        Tasks: [
          {
            Config: config,
            Driver: 'docker',
            Meta: null,
            Name: 'main',
            Resources: resources(job.main.cores > 0 ? 0 : job.main.mhz, job.main.cores, job.main.memoryMib, job.main.memoryMib, job.main.gpu),
          },
          {
            Config: { image: 'ai4oshub/storage-mount:latest' },
            Driver: 'docker',
            Lifecycle: { Hook: 'prestart', Sidecar: true },
            Meta: null,
            Name: SIDECAR.name,
            Resources: resources(SIDECAR.mhz, 0, SIDECAR.memoryMib, 0, 0),
          },
        ],
      },
    ],
    Type: type,
    Version: 0,
  };
}

// ---------------------------------------------------------------------------------------
// Namespaces

export function namespaceNames(cluster: Cluster): string[] {
  return [...new Set(['default', ...cluster.namespaces])].sort();
}

export function namespaceObject(cluster: Cluster, name: string): Record<string, unknown> {
  const createIndex = name === 'default' ? 1 : 10 + 2 * cluster.namespaces.indexOf(name);
  return {
    Capabilities: null,
    ConsulConfiguration: null,
    CreateIndex: createIndex,
    Description: name === 'default' ? 'Default shared namespace' : `${name} users`,
    Hash: digest(`namespace\u0000${name}`).toString('base64'),
    Meta: null,
    ModifyIndex: createIndex,
    Name: name,
    NodePoolConfiguration: null,
    OptionalExtraClaims: null,
    Quota: '',
    RequiredExtraClaims: null,
    VaultConfiguration: null,
  };
}

// ---------------------------------------------------------------------------------------
// Event stream (`/v1/event/stream`)

/** One change behind an event: a job registration, or an allocation change. */
interface Change {
  us: number;
  job: SimJob;
  alloc: SimAlloc | null;
  type: string;
}

interface ChangeTable {
  /** Distinct change instants, ascending: one event-buffer item (one raft index) each. */
  instants: Float64Array;
  /** Changes in time order; `first[p]` is where instant p's changes start. */
  changes: Change[];
  first: Uint32Array;
}

function changeTable(ix: NomadIndex): ChangeTable {
  if (ix.changes) return ix.changes;
  const changes: Change[] = [];
  for (const job of ix.cluster.jobs) changes.push({ us: job.submitUs, job, alloc: null, type: 'JobRegistered' });
  for (const a of ix.cluster.allocations) {
    for (const c of allocChanges(a, ix.nextAlloc.get(a) ?? null)) changes.push({ us: c.us, job: a.job, alloc: a, type: c.type });
  }
  // Registrations first, then allocations in creation order.
  changes.sort(
    (x, y) =>
      x.us - y.us ||
      (x.alloc === null ? -1 : 0) - (y.alloc === null ? -1 : 0) ||
      (x.alloc && y.alloc ? (ix.allocCreateIndex.get(x.alloc) ?? 0) - (ix.allocCreateIndex.get(y.alloc) ?? 0) : 0) ||
      (ix.jobCreateIndex.get(x.job) ?? 0) - (ix.jobCreateIndex.get(y.job) ?? 0),
  );
  const instants: number[] = [];
  const first: number[] = [];
  changes.forEach((c, i) => {
    if (instants.length === 0 || instants[instants.length - 1] !== c.us) {
      instants.push(c.us);
      first.push(i);
    }
  });
  first.push(changes.length);
  ix.changes = { instants: Float64Array.from(instants), changes, first: Uint32Array.from(first) };
  return ix.changes;
}

/** How many event-buffer items (distinct change instants) the server has published up to t. */
export function eventCountAt(ix: NomadIndex, t: number): number {
  const { instants } = changeTable(ix);
  let lo = 0;
  let hi = instants.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((instants[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The raft index of item `pos` (the `pos`-th change instant). */
export function eventIndexOf(ix: NomadIndex, pos: number): number {
  return indexAt(ix, changeTable(ix).instants[pos] as number);
}

export interface StreamEvent {
  Topic: 'Allocation' | 'Job';
  Type: string;
  Key: string;
  Namespace: string;
  FilterKeys: string[] | null;
  Index: number;
  Payload: { Allocation: Record<string, unknown> } | { Job: Record<string, unknown> };
}

export interface StreamItem {
  index: number;
  us: number;
  events: StreamEvent[];
}

/**
 * The events of item `pos`, as Nomad's state store publishes them (nomad/state/events.go):
 * an Allocation event per changed allocation, with the allocation as the server shows it
 * then and its Job left out; a Job event per registration and per job whose status changed,
 * typed after the write that changed it.
 */
export function eventItem(ix: NomadIndex, pos: number): StreamItem {
  const table = changeTable(ix);
  const us = table.instants[pos] as number;
  const index = indexAt(ix, us);
  const events: StreamEvent[] = [];
  const registered = new Set<SimJob>();
  const touched = new Map<SimJob, string>();
  for (let i = table.first[pos] as number; i < (table.first[pos + 1] as number); i++) {
    const c = table.changes[i] as Change;
    if (c.alloc === null) {
      registered.add(c.job);
      events.push(jobEvent(ix, c.job, us, c.type, index));
      continue;
    }
    const allocation = fullAllocation(ix, viewAt(c.alloc, us), us);
    delete allocation.Job;
    const deploymentId = (allocation.DeploymentID as string | undefined) ?? '';
    events.push({
      Topic: 'Allocation',
      Type: c.type,
      Key: c.alloc.id,
      Namespace: c.alloc.job.namespace,
      FilterKeys: [c.alloc.job.id, deploymentId],
      Index: index,
      Payload: { Allocation: allocation },
    });
    if (!touched.has(c.job)) touched.set(c.job, c.type);
  }
  // A write that changes a job's status rewrites the job too.
  for (const [job, type] of touched) {
    if (registered.has(job)) continue;
    if (jobStatusAt(job, us).status !== jobStatusAt(job, us - 1).status) events.push(jobEvent(ix, job, us, type, index));
  }
  return { index, us, events };
}

function jobEvent(ix: NomadIndex, job: SimJob, us: number, type: string, index: number): StreamEvent {
  return { Topic: 'Job', Type: type, Key: job.id, Namespace: job.namespace, FilterKeys: null, Index: index, Payload: { Job: fullJob(ix, job, us) } };
}

/** One NDJSON line of the stream: Nomad's encoder writes the fields sorted. */
export function eventLine(index: number, events: StreamEvent[]): string {
  const sorted = events.map((e) => ({
    FilterKeys: e.FilterKeys,
    Index: e.Index,
    Key: e.Key,
    Namespace: e.Namespace,
    Payload: e.Payload,
    Topic: e.Topic,
    Type: e.Type,
  }));
  return toNomadJson({ Events: sorted, Index: index });
}
