/**
 * Generates a whole simulated cluster history up front: nodes, users, node disconnections,
 * jobs with their allocations, and the snapshot schedule. Deterministic from the seed.
 */

import * as C from './catalog.js';
import type {
  Cluster,
  JobKind,
  MainTask,
  ScheduledSnapshot,
  SimAlloc,
  SimDisconnect,
  SimJob,
  SimNode,
  SimUser,
} from './model.js';
import { resolveOptions, type ResolvedOptions, type SimulatorOptions } from './options.js';
import { stream, type Prng } from './prng.js';

const SEC = 1_000_000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** The longest a job may wait in the queue (log-uniform from 2 minutes). */
const MAX_QUEUE_US = 12 * HOUR;

export function createCluster(options: SimulatorOptions = {}): Cluster {
  const o = resolveOptions(options);
  const snapshots = schedule(o);
  const last = snapshots[snapshots.length - 1];
  if (!last) {
    throw new RangeError(`no snapshot fits in ${o.days} days at one every ${o.intervalMinutes} minutes`);
  }
  const horizonUs = last.timeUs;
  const nodes = makeNodes(o);
  const users = makeUsers(o);
  const disconnects = makeDisconnects(o, nodes, horizonUs);
  const { jobs, allocations } = makeJobs(o, nodes, users, horizonUs);
  return {
    options: o,
    startUs: o.startUs,
    horizonUs,
    namespaces: o.namespaces,
    nodes,
    users,
    jobs,
    allocations,
    disconnects,
    snapshots,
  };
}

function schedule(o: ResolvedOptions): ScheduledSnapshot[] {
  const rngJitter = stream(o.seed, 'jitter');
  const rngMissed = stream(o.seed, 'missed');
  const count = Math.floor((o.days * 24 * 60) / o.intervalMinutes + 1e-9);
  // A late run must not overtake the next one, or capture times would go backwards.
  const jitter = Math.max(0, Math.min(o.jitterSeconds, Math.floor(o.intervalMinutes * 60) - 1));
  const out: ScheduledSnapshot[] = [];
  for (let k = 0; k < count; k++) {
    const scheduledUs = o.startUs + Math.round(k * o.intervalMinutes * MIN);
    // Capture times are whole seconds, as in the file names.
    const timeUs = Math.floor(scheduledUs / SEC) * SEC + rngJitter.int(0, jitter) * SEC;
    const randomMiss = rngMissed.float() < o.missedProbability;
    const inRange = o.missedRanges.some((r) => scheduledUs >= r.fromUs && scheduledUs < r.toUs);
    out.push({ scheduledUs, timeUs, missed: randomMiss || inRange });
  }
  return out;
}

function nsShares(o: ResolvedOptions): number[] {
  const total = o.namespaceWeights.reduce((a, b) => a + b, 0);
  return o.namespaceWeights.map((w) => w / total);
}

function makeNodes(o: ResolvedOptions): SimNode[] {
  const rng = stream(o.seed, 'nodes');
  const shares = nsShares(o);
  // About eight concurrent allocations per node; capacity itself is not modelled.
  const total = Math.max(8, Math.ceil(o.targetConcurrent / 8));
  const counters = new Map<string, number>();
  const nodes: SimNode[] = [];
  o.namespaces.forEach((ns, i) => {
    const share = shares[i] ?? 0;
    const count = Math.max(3, Math.round(total * share));
    const gpuCount = Math.max(1, Math.round(count * 0.25));
    // The first namespace spans every site; the others a few of them.
    const sites = i === 0 ? C.SITES : C.SITES.filter(() => rng.chance(0.6));
    if (sites.length === 0) sites.push(rng.pick(C.SITES));
    for (let k = 0; k < count; k++) {
      const gpu = k < gpuCount;
      const site = rng.pick(sites);
      const style = gpu ? 'gpu-wn' : C.SHORT_NODE_NAMES.has(site) ? 'wn' : 'cpu-wn';
      const key = `${site}-${style}`;
      const n = (counters.get(key) ?? 0) + 1;
      counters.set(key, n);
      nodes.push({
        id: rng.uuid(false),
        name: `${key}-${String(n).padStart(2, '0')}`,
        site,
        datacenter: `${site}-${ns}`,
        namespace: ns,
        gpu,
        gpuModel: gpu ? rng.pick(C.GPU_MODELS) : null,
        disconnects: [],
      });
    }
  });
  return nodes;
}

function makeUsers(o: ResolvedOptions): SimUser[] {
  const rng = stream(o.seed, 'users');
  const shares = nsShares(o);
  const users: SimUser[] = [];
  o.namespaces.forEach((ns, i) => {
    const count = o.usersPerNamespace ?? Math.max(5, Math.round(o.targetConcurrent * 1.5 * (shares[i] ?? 0)));
    for (let k = 0; k < count; k++) {
      const first = rng.pick(C.FIRST_NAMES);
      const last = rng.pick(C.LAST_NAMES);
      const suffix = rng.chance(0.3) ? String(rng.int(1, 99)) : '';
      users.push({
        id: `${rng.hex(64)}@egi.eu`,
        name: `${first} ${last}`,
        email: `${first.toLowerCase()}.${last.toLowerCase()}${suffix}@${rng.pick(C.EMAIL_DOMAINS)}`,
        namespace: ns,
      });
    }
  });
  return users;
}

function lostAfterUs(o: ResolvedOptions, rng: Prng): number {
  const [lo, hi] = o.lostAfterMinutes;
  return Math.round((lo === hi ? lo : rng.uniform(lo, hi)) * MIN);
}

function makeDisconnects(o: ResolvedOptions, nodes: SimNode[], horizonUs: number): SimDisconnect[] {
  const rng = stream(o.seed, 'disconnects');
  const out: SimDisconnect[] = [];
  if (o.disconnectsPerWeek <= 0) return out;
  const meanGap = (7 * DAY) / o.disconnectsPerWeek;
  let t = o.startUs;
  for (;;) {
    t += Math.max(1, Math.round(rng.exponential(meanGap)));
    if (t >= horizonUs) break;
    const node = rng.pick(nodes);
    const lostAfter = lostAfterUs(o, rng);
    const reconnects = rng.chance(o.reconnectProbability);
    const outage = Math.round(rng.logUniform(5 * MIN, Math.max(5 * MIN + 1, Math.min(12 * HOUR, 0.9 * lostAfter))));
    const downAfterLoss = Math.round(rng.logUniform(30 * MIN, 24 * HOUR));
    const prev = node.disconnects[node.disconnects.length - 1];
    // One outage at a time per node.
    if (prev && prev.unavailableUntilUs > t) continue;
    const ev: SimDisconnect = reconnects
      ? { node, atUs: t, reconnectUs: t + outage, lostUs: null, unavailableUntilUs: t + outage }
      : { node, atUs: t, reconnectUs: null, lostUs: t + lostAfter, unavailableUntilUs: t + lostAfter + downAfterLoss };
    node.disconnects.push(ev);
    out.push(ev);
  }
  return out;
}

function mainTask(kind: JobKind, gpu: boolean, rng: Prng): MainTask {
  if (kind === 'tool-llm') {
    return { cores: 4, mhz: 4 * rng.pick([2000, 2100, 2200]), memoryMib: 16000, diskMib: 4096, gpu: 1 };
  }
  const cores = rng.weighted(C.CORES);
  const perCore = 2000 + 100 * rng.int(0, 10);
  return {
    cores,
    mhz: cores * perCore,
    memoryMib: rng.weighted(C.MEMORY_MIB),
    diskMib: rng.weighted(C.DISK_MIB),
    gpu: gpu ? (rng.chance(0.7) ? 1 : 2) : 0,
  };
}

function describe(kind: JobKind, rng: Prng): { image: string; command: string } {
  switch (kind) {
    case 'module':
      return { image: rng.pick(C.MODULE_IMAGES), command: rng.weighted(C.MODULE_COMMANDS) };
    case 'tool-devenv':
      return { image: 'ai4oshub/ai4os-dev-env:latest', command: rng.pick(['deep-start --vscode', 'deep-start --jupyter']) };
    case 'tool-ai4life':
      return { image: 'ai4oshub/ai4os-ai4life-loader:latest', command: 'deep-start --deepaas' };
    case 'tool-llm':
      return { image: 'vllm/vllm-openai:latest', command: '' };
    case 'tool-fl':
      return { image: 'ai4oshub/ai4os-federated-server:latest', command: '' };
    case 'batch':
      return { image: rng.pick(C.MODULE_IMAGES), command: C.BATCH_COMMAND };
  }
}

/** Mean of a log-uniform distribution on [a, b]. */
function logUniformMean(a: number, b: number): number {
  return a === b ? a : (b - a) / Math.log(b / a);
}

/** Standard normal distribution function (Abramowitz-Stegun 7.1.26, error below 2e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Mean of a lognormal (median m, log spread s) clamped to [a, b]: the clamped tails count as a and b. */
function clampedLogNormalMean(m: number, s: number, a: number, b: number): number {
  const mu = Math.log(m);
  const below = normalCdf((Math.log(a) - mu) / s);
  const above = 1 - normalCdf((Math.log(b) - mu) / s);
  const inside = Math.exp(mu + (s * s) / 2) * (normalCdf((Math.log(b) - mu - s * s) / s) - normalCdf((Math.log(a) - mu - s * s) / s));
  return a * below + inside + b * above;
}

/** How long an early failure runs before it fails. */
const EARLY_FAIL_MIN_US = 1 * MIN;
const EARLY_FAIL_MAX_US = 2 * MIN;

/** Mean planned run time, early failures included, for Little's law. */
function meanRunUs(o: ResolvedOptions, minD: number, maxD: number): number {
  const planned =
    o.durationDistribution === 'lognormal'
      ? clampedLogNormalMean(o.medianDurationMinutes * MIN, o.durationSigma, minD, maxD)
      : logUniformMean(minD, maxD);
  if (o.earlyFailFraction === 0) return planned;
  return (1 - o.earlyFailFraction) * planned + (o.earlyFailFraction * (EARLY_FAIL_MIN_US + EARLY_FAIL_MAX_US)) / 2;
}

function plannedRunUs(o: ResolvedOptions, minD: number, maxD: number, rng: Prng): number {
  if (o.durationDistribution === 'lognormal') {
    const d = rng.logNormal(o.medianDurationMinutes * MIN, o.durationSigma);
    return Math.round(Math.min(maxD, Math.max(minD, d)));
  }
  return Math.round(rng.logUniform(minD, maxD));
}

function unavailable(node: SimNode, t: number): SimDisconnect | null {
  for (const ev of node.disconnects) {
    if (ev.atUs > t) break;
    if (t < ev.unavailableUntilUs) return ev;
  }
  return null;
}

/** Picks a node that is not disconnected at t; waits for one when all are. */
function place(candidates: SimNode[], t: number, avoid: SimNode | null, rng: Prng): { node: SimNode; t: number } {
  for (;;) {
    let ok = candidates.filter((n) => n !== avoid && unavailable(n, t) === null);
    if (ok.length === 0) ok = candidates.filter((n) => unavailable(n, t) === null);
    if (ok.length > 0) return { node: rng.pick(ok), t };
    t = Math.min(...candidates.map((n) => unavailable(n, t)?.unavailableUntilUs ?? t));
  }
}

interface Planned {
  createUs: number;
  node: SimNode;
  startUs: number | null;
  endUs: number;
  finalStatus: 'complete' | 'failed';
  restart: boolean;
}

export function makeJobs(
  o: ResolvedOptions,
  nodes: SimNode[],
  users: SimUser[],
  horizonUs: number,
): { jobs: SimJob[]; allocations: SimAlloc[] } {
  const rng = stream(o.seed, 'jobs');
  const shares = nsShares(o);
  const usersByNs = new Map<string, SimUser[]>(o.namespaces.map((ns) => [ns, users.filter((u) => u.namespace === ns)]));
  const pool = (ns: string, gpu: boolean): SimNode[] => {
    const own = nodes.filter((n) => n.namespace === ns && n.gpu === gpu);
    return own.length > 0 ? own : nodes.filter((n) => n.gpu === gpu);
  };
  const pools = new Map<string, SimNode[]>();
  for (const ns of o.namespaces) {
    pools.set(`${ns}/cpu`, pool(ns, false));
    pools.set(`${ns}/gpu`, pool(ns, true));
  }

  const minD = o.minDurationMinutes * MIN;
  const maxD = o.maxDurationMinutes * MIN;
  // Little's law: mean concurrency = arrival rate x mean holding time.
  // Jobs whose image never starts hold nothing, so arrive a little more often to make up
  // (bounded, so a test setting every job to fail does not flood the cluster).
  const meanGap = (meanRunUs(o, minD, maxD) * (1 - Math.min(o.pullFailFraction, 0.5))) / o.targetConcurrent;
  // Start early enough that the cluster is in steady state at the first snapshot.
  const warmupUs = maxD + MAX_QUEUE_US + DAY;

  const jobs: SimJob[] = [];
  const allocations: SimAlloc[] = [];
  const nsItems = o.namespaces.map((ns, i) => [ns, shares[i] ?? 0] as const);

  let t = o.startUs - warmupUs;
  for (;;) {
    t += Math.max(1, Math.round(rng.exponential(meanGap)));
    if (t >= horizonUs) break;
    const namespace = rng.weighted(nsItems);
    const nsUsers = usersByNs.get(namespace) ?? [];
    // A few heavy users do most of the work.
    const user = nsUsers[Math.floor(nsUsers.length * rng.float() ** 2)] ?? rng.pick(users);
    const gpu = rng.chance(o.gpuFraction);
    const kind = rng.weighted(gpu ? C.GPU_KINDS : C.CPU_KINDS);
    const main = mainTask(kind, gpu, rng);
    const { image, command } = describe(kind, rng);
    const id = rng.uuid(true);
    const job: SimJob = {
      index: jobs.length,
      id,
      name: `${kind}-${id}`,
      kind,
      component: kind.split('-')[0] ?? kind,
      namespace,
      user,
      submitUs: t,
      main,
      resources: {
        cpu_cores: main.cores,
        // Nomad's footprint is max(prestart phase, main phase + prestart sidecars).
        cpu_mhz: main.mhz + C.SIDECAR.mhz,
        memory_mib: main.memoryMib + C.SIDECAR.memoryMib,
        disk_mib: main.diskMib,
        gpu: main.gpu,
      },
      title: rng.pick(C.TITLES),
      description: rng.pick(C.DESCRIPTIONS),
      image,
      command,
      customEndpoint: rng.chance(0.94),
      allocs: [],
    };
    jobs.push(job);

    const queued = rng.chance(gpu ? o.queueProbabilityGpu : o.queueProbabilityCpu);
    const wait = queued ? Math.round(rng.logUniform(2 * MIN, MAX_QUEUE_US)) : rng.int(1 * SEC, 5 * SEC);
    // Drawn only when asked for, so histories without early failures stay as they were.
    const earlyFail = o.earlyFailFraction > 0 && rng.chance(o.earlyFailFraction);
    const duration = earlyFail ? rng.int(EARLY_FAIL_MIN_US, EARLY_FAIL_MAX_US) : plannedRunUs(o, minD, maxD, rng);
    const pullFail = rng.chance(o.pullFailFraction);
    // An early failure is the job's end: nothing replaces it.
    const reschedule = !pullFail && !earlyFail && rng.chance(o.rescheduleFraction);
    const failed = earlyFail || rng.chance(o.failFraction);
    const candidates = pools.get(`${namespace}/${gpu ? 'gpu' : 'cpu'}`) ?? nodes;

    const first = place(candidates, t + wait, null, rng);
    const pull = pullDelay(rng);
    let planned: Planned;
    let jobEnd: number;
    if (pullFail) {
      planned = { createUs: first.t, node: first.node, startUs: null, endUs: first.t + pull, finalStatus: 'failed', restart: false };
      jobEnd = first.t + pull;
    } else {
      const start = first.t + pull;
      jobEnd = start + duration;
      const end = reschedule ? start + Math.round(rng.uniform(0.1, 0.9) * duration) : jobEnd;
      planned = {
        createUs: first.t,
        node: first.node,
        startUs: start,
        endUs: end,
        finalStatus: reschedule || failed ? 'failed' : 'complete',
        restart: rng.chance(o.restartFraction),
      };
    }
    const a1 = realise(job, planned, null, allocations, rng);
    if (reschedule && a1.finalStatus === 'failed') {
      // The replacement is placed once the server knows the first one failed.
      const next = place(candidates, a1.terminalUs + Math.round(rng.logUniform(30 * SEC, 10 * MIN)), a1.node, rng);
      const start = next.t + pullDelay(rng);
      realise(
        job,
        {
          createUs: next.t,
          node: next.node,
          startUs: start,
          endUs: Math.max(jobEnd, start + 5 * MIN),
          finalStatus: failed ? 'failed' : 'complete',
          restart: rng.chance(o.restartFraction),
        },
        a1,
        allocations,
        rng,
      );
    }
  }
  allocations.sort((a, b) => a.createUs - b.createUs || a.index - b.index);
  return { jobs, allocations };
}

/** Image pull: 10 s to a few minutes between placement and the main task's start. */
function pullDelay(rng: Prng): number {
  return Math.round(rng.logUniform(10 * SEC, 300 * SEC));
}

/** Turns a plan into an allocation, then lets the node's disconnections rewrite it. */
function realise(job: SimJob, p: Planned, previous: SimAlloc | null, out: SimAlloc[], rng: Prng): SimAlloc {
  const gpuIds: string[] = [];
  for (let i = 0; i < job.main.gpu; i++) gpuIds.push(`GPU-${rng.uuid(false)}`);
  const a: SimAlloc = {
    index: out.length,
    id: rng.uuid(false),
    job,
    node: p.node,
    createUs: p.createUs,
    startUs: p.startUs,
    restarts: [],
    endUs: p.endUs,
    finalStatus: p.finalStatus,
    // The server records the end a moment after the task finishes.
    terminalUs: p.endUs + rng.int(50_000, 900_000),
    unknown: [],
    coreOffset: rng.int(0, 63 - job.main.cores),
    gpuIds,
    previous,
  };
  if (p.restart && p.startUs !== null && p.endUs - p.startUs > 2 * MIN) {
    const at = Math.round(rng.uniform(p.startUs + MIN, p.endUs - MIN));
    a.restarts.push({ atUs: at, startedUs: at + rng.int(2 * SEC, 20 * SEC) });
  }
  applyDisconnects(a, rng);
  job.allocs.push(a);
  out.push(a);
  return a;
}

function applyDisconnects(a: SimAlloc, rng: Prng): void {
  for (const ev of a.node.disconnects) {
    // Placement avoids nodes that are down at creation time.
    if (ev.atUs < a.createUs) continue;
    if (ev.atUs >= a.terminalUs) break;
    const d = ev.atUs;
    if (ev.lostUs !== null) {
      // Still pulling the image when the node went away: the server never saw it start.
      if (a.startUs !== null && a.startUs > d) a.startUs = null;
      a.restarts = a.restarts.filter((r) => r.startedUs < d);
      a.unknown.push({ fromUs: d, toUs: ev.lostUs });
      a.endUs = null;
      a.finalStatus = 'lost';
      a.terminalUs = ev.lostUs;
      return;
    }
    const r = ev.reconnectUs ?? d;
    a.unknown.push({ fromUs: d, toUs: r });
    // A restart during the outage is not reported; drop it.
    a.restarts = a.restarts.filter((x) => x.startedUs < d || x.atUs >= r);
    if (a.startUs !== null && a.startUs > d) {
      // The image pull resumes after the network returns.
      const start = r + rng.int(5 * SEC, 60 * SEC);
      a.startUs = start;
      a.restarts = a.restarts.filter((x) => x.atUs > start);
      if (a.endUs !== null && a.endUs < start + MIN) {
        a.endUs = start + MIN;
        a.terminalUs = a.endUs + rng.int(50_000, 900_000);
      }
    }
    // A task that ended during the outage is reported when the node returns.
    if (a.endUs !== null && a.endUs < r) a.terminalUs = Math.max(a.terminalUs, r);
  }
}
