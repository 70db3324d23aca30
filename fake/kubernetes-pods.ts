/**
 * Simulated pods for the fake Kubernetes API: many pods in the shapes the fixtures show
 * (PrimeHub and JupyterHub notebooks, batch Jobs with an owner label, Deployment replicas
 * nobody claims), drawn from a seed so one seed always gives the same pods.
 *
 * For histories (watch tests): a PodLife says when a pod is created, scheduled, finished
 * and deleted; podsAt(lives, t) gives the pods the API shows at t, and changeInstants(lives)
 * the instants to call setPods at. simulatedPodLives() draws such lives from a seed, and
 * jupyterHubLives() the servers of a JupyterHub whose idle culler stops them.
 */

import { Prng } from '../src/simulator/prng.js';
import type { Pod } from '../src/sources/kubernetes/types.js';

export interface SimulatedPodsOptions {
  seed?: string;
  count: number;
  /** The moment the pods are listed at (RFC 3339); every time in them lies before it. */
  at: string;
}

const SIZES = [
  { cpu: '500m', memory: '1Gi' },
  { cpu: '1', memory: '2Gi' },
  { cpu: '2', memory: '4G' },
  { cpu: '4', memory: '16Gi' },
  { cpu: '8', memory: '64Gi', 'nvidia.com/gpu': '1' },
  { cpu: '16', memory: '128e9', 'nvidia.com/gpu': '4' },
] as const;

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export function simulatedPods(opts: SimulatedPodsOptions): Pod[] {
  const rng = new Prng(opts.seed ?? 'pods');
  const atMs = Date.parse(opts.at);
  const pods: Pod[] = [];
  for (let i = 0; i < opts.count; i++) {
    const style = rng.pick(['primehub', 'jupyterhub', 'batch', 'replica'] as const);
    const user = `user${rng.int(1, 40)}`;
    const group = `group${rng.int(1, 6)}`;
    const size = rng.pick(SIZES);
    const scheduledMs = atMs - Math.round(rng.logUniform(60, 7 * 86_400)) * 1000;
    const phase = rng.weighted([
      ['Running', 0.8],
      ['Succeeded', 0.1],
      ['Pending', 0.1],
    ] as const);
    const uid = rng.uuid(true);
    const namespace = { primehub: 'hub', jupyterhub: 'jhub', batch: 'ml-batch', replica: 'research' }[style];
    const name = `${{ primehub: 'jupyter', jupyterhub: 'jupyter', batch: 'train', replica: 'serve' }[style]}-${user}-${String(i).padStart(5, '0')}`;
    const annotations: Record<string, string> = {};
    const labels: Record<string, string> = {};
    let ownerReferences: NonNullable<Pod['metadata']['ownerReferences']> = [];
    if (style === 'primehub') {
      annotations['primehub.io/usage'] = JSON.stringify({ component: 'jupyter', component_name: name, group, user, instance_type: 'cpu-1' });
    } else if (style === 'jupyterhub') {
      annotations['hub.jupyter.org/username'] = `${user}@example.org`;
      labels['app.kubernetes.io/component'] = 'singleuser-server';
    } else if (style === 'batch') {
      labels.owner = user;
      labels.team = group;
      ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: `train-${user}-${i}`, uid: rng.uuid(true), controller: true }];
    } else {
      ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `serve-${rng.hex(10)}`, uid: rng.uuid(true), controller: true }];
    }
    const bound = phase !== 'Pending' || rng.chance(0.5);
    const finishedMs = Math.min(atMs - 1000, scheduledMs + Math.round(rng.uniform(60, 3600)) * 1000);
    pods.push({
      metadata: { name, namespace, uid, creationTimestamp: iso(scheduledMs - 1000), labels, annotations, ownerReferences },
      spec: {
        containers: [{ name: 'main', resources: { requests: { ...size }, limits: { ...size } } }],
        ...(bound ? { nodeName: `node-${rng.int(1, 50)}` } : {}),
      },
      status: {
        phase,
        conditions: [
          bound
            ? { type: 'PodScheduled', status: 'True', lastTransitionTime: iso(scheduledMs) }
            : { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', lastTransitionTime: iso(scheduledMs) },
        ],
        containerStatuses:
          phase === 'Succeeded'
            ? [{ name: 'main', state: { terminated: { startedAt: iso(scheduledMs + 2000), finishedAt: iso(finishedMs), exitCode: 0, reason: 'Completed' } } }]
            : phase === 'Running'
              ? [{ name: 'main', state: { running: { startedAt: iso(scheduledMs + 2000) } } }]
              : [],
      },
    });
  }
  return pods;
}

// ---------------------------------------------------------------------------------------
// Simulated histories: a pod's life, and the pods at any instant of it (for setPods).

/** One pod's life; instants are ms since the epoch, whole seconds (the API gives seconds). */
export interface PodLife {
  namespace: string;
  name: string;
  uid: string;
  /** Created: Pending, on no node yet. */
  createdMs: number;
  /** Bound to a node: PodScheduled turns True and its container starts running. */
  scheduledMs: number;
  /** The container's `terminated.finishedAt`; null while it runs (or when deleted running). */
  finishedMs: number | null;
  /** Non-zero makes the pod Failed instead of Succeeded. Default 0. */
  exitCode?: number;
  /** Gone from the API; null when never deleted. Before `finishedMs` (or with none): deleted while running. */
  deletedMs: number | null;
  requests: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  nodeName?: string;
}

/** The pod as the API shows it at `atMs`, or null when it does not exist then. */
export function podAt(life: PodLife, atMs: number): Pod | null {
  if (atMs < life.createdMs || (life.deletedMs !== null && atMs >= life.deletedMs)) return null;
  const scheduled = atMs >= life.scheduledMs;
  const finished = life.finishedMs !== null && atMs >= life.finishedMs;
  const exitCode = life.exitCode ?? 0;
  const started = iso(life.scheduledMs);
  return {
    metadata: {
      name: life.name,
      namespace: life.namespace,
      uid: life.uid,
      creationTimestamp: iso(life.createdMs),
      labels: { ...life.labels },
      annotations: { ...life.annotations },
    },
    spec: {
      containers: [{ name: 'main', resources: { requests: { ...life.requests }, limits: { ...life.requests } } }],
      ...(scheduled ? { nodeName: life.nodeName ?? 'node-1' } : {}),
    },
    status: {
      phase: !scheduled ? 'Pending' : !finished ? 'Running' : exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: scheduled ? [{ type: 'PodScheduled', status: 'True', lastTransitionTime: started }] : [],
      ...(scheduled ? { startTime: started } : {}),
      containerStatuses: !scheduled
        ? []
        : finished
          ? [{ name: 'main', state: { terminated: { startedAt: started, finishedAt: iso(life.finishedMs!), exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } } }]
          : [{ name: 'main', state: { running: { startedAt: started } } }],
    },
  };
}

/** Every pod that exists at `atMs`, for `setPods`. */
export function podsAt(lives: PodLife[], atMs: number): Pod[] {
  return lives.map((l) => podAt(l, atMs)).filter((p): p is Pod => p !== null);
}

/** The instants at which some pod changes, in order: a history's revisions. */
export function changeInstants(lives: PodLife[]): number[] {
  const all = lives.flatMap((l) => [l.createdMs, l.scheduledMs, l.finishedMs, l.deletedMs]).filter((t): t is number => t !== null);
  return [...new Set(all)].sort((a, b) => a - b);
}

export interface SimulatedLivesOptions {
  seed?: string;
  count: number;
  /** Pods are created in [fromMs, toMs); their later instants may fall after toMs. */
  fromMs: number;
  toMs: number;
}

/**
 * Pod lives drawn from a seed: JupyterHub servers and batch Jobs, some living seconds, some
 * completed (and deleted later, or kept), some deleted while running, some still running.
 */
export function simulatedPodLives(opts: SimulatedLivesOptions): PodLife[] {
  const rng = new Prng(opts.seed ?? 'pod-lives');
  const sec = (ms: number) => Math.floor(ms / 1000) * 1000;
  const lives: PodLife[] = [];
  for (let i = 0; i < opts.count; i++) {
    const jupyter = rng.chance(0.5);
    const user = `user${rng.int(1, 40)}`;
    const createdMs = sec(rng.uniform(opts.fromMs, opts.toMs));
    const scheduledMs = createdMs + rng.int(0, 30) * 1000;
    const lifeMs = Math.round(rng.logUniform(2, 4 * 3600)) * 1000;
    const end = rng.weighted([
      ['completed', 0.4],
      ['deleted-running', 0.4],
      ['running', 0.2],
    ] as const);
    const finishedMs = end === 'completed' ? scheduledMs + lifeMs : null;
    const deletedMs = end === 'completed' ? (rng.chance(0.5) ? finishedMs! + rng.int(1, 600) * 1000 : null) : end === 'deleted-running' ? scheduledMs + lifeMs : null;
    lives.push({
      namespace: jupyter ? 'jhub' : 'ml-batch',
      name: `${jupyter ? 'jupyter' : 'train'}-${user}-${String(i).padStart(5, '0')}`,
      uid: rng.uuid(true),
      createdMs,
      scheduledMs,
      finishedMs,
      exitCode: end === 'completed' && !jupyter && rng.chance(0.2) ? 1 : 0,
      deletedMs,
      requests: { ...rng.pick(SIZES) },
      labels: jupyter ? { 'app.kubernetes.io/component': 'singleuser-server' } : { owner: user },
      annotations: jupyter ? { 'hub.jupyter.org/username': `${user}@example.org` } : {},
      nodeName: `node-${rng.int(1, 50)}`,
    });
  }
  return lives;
}

export interface JupyterHubLivesOptions {
  seed?: string;
  users: number;
  /** Servers are started in [fromMs, toMs); their later instants may fall after toMs. */
  fromMs: number;
  toMs: number;
}

/** The culler's settings, as Zero to JupyterHub ships them (cull.timeout 3600 s, cull.every 600 s). */
export const CULL_TIMEOUT_MS = 3600_000;
export const CULL_EVERY_MS = 600_000;

/**
 * Single-user servers of a JupyterHub with the idle culler, as Zero to JupyterHub runs them
 * (namespace `jhub`, one server per user at a time, pod `jupyter-<escaped name>`):
 * - a user starts a server: the pod is created, and bound and running 2 to 15 s later;
 * - the user works for a while (lognormal, median 1.5 h, σ 1), then goes idle;
 * - a quarter of the servers are stopped by their user when they are done (no idle tail);
 *   the rest are culled: the culler deletes servers idle for cull.timeout (3600 s), looking
 *   every cull.every (600 s), so the cull lands 60 to 70 minutes after the last activity;
 * - either way the delete is graceful: the container finishes 1 to 2 s later (finishedAt,
 *   exit code 0) and the pod is gone 1 s after that;
 * - the user starts again after a break (exponential, mean 2 h; the first start too, from
 *   `fromMs`), while it still falls before `toMs`.
 * Each user keeps one size (a profile) from SIZES. Instants are whole seconds.
 */
export function jupyterHubLives(opts: JupyterHubLivesOptions): PodLife[] {
  const rng = new Prng(opts.seed ?? 'jupyterhub-lives');
  const sec = (ms: number) => Math.floor(ms / 1000) * 1000;
  const lives: PodLife[] = [];
  for (let u = 1; u <= opts.users; u++) {
    const username = `user${u}@example.org`;
    // KubeSpawner's escaping of the name: '@' -> -40, '.' -> -2e.
    const name = `jupyter-${username.replace(/[@.]/g, (c) => `-${c.charCodeAt(0).toString(16)}`)}`;
    const requests = { ...rng.pick(SIZES) };
    let startMs = opts.fromMs + rng.exponential(2 * 3600_000);
    while (startMs < opts.toMs) {
      const createdMs = sec(startMs);
      const scheduledMs = createdMs + rng.int(2, 15) * 1000;
      const lastActiveMs = scheduledMs + Math.max(1, Math.round(rng.logNormal(1.5 * 3600, 1))) * 1000;
      const stopMs = rng.chance(0.25) ? lastActiveMs : lastActiveMs + CULL_TIMEOUT_MS + rng.int(0, CULL_EVERY_MS / 1000) * 1000;
      const finishedMs = stopMs + rng.int(1, 2) * 1000;
      const deletedMs = finishedMs + 1000;
      lives.push({
        namespace: 'jhub',
        name,
        uid: rng.uuid(true),
        createdMs,
        scheduledMs,
        finishedMs,
        deletedMs,
        requests,
        labels: { 'app.kubernetes.io/component': 'singleuser-server' },
        annotations: { 'hub.jupyter.org/username': username },
        nodeName: `node-${rng.int(1, 20)}`,
      });
      startMs = deletedMs + 1000 + rng.exponential(2 * 3600_000);
    }
  }
  return lives;
}
