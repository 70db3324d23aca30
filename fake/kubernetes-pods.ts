/**
 * Simulated pods for the fake Kubernetes API: many pods in the shapes the fixtures show
 * (PrimeHub and JupyterHub notebooks, batch Jobs with an owner label, Deployment replicas
 * nobody claims), drawn from a seed so one seed always gives the same pods.
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
