import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  attribute,
  DEFAULT_ATTRIBUTION,
  effectiveRequests,
  formatAttributionSource,
  mapDeletedPod,
  mapPod,
  parseAttributionSource,
  podChangedAt,
  podDeletedAt,
  PodResourceError,
  podStatus,
  queuedJobs,
  toNativeResources,
  type AttributionConfig,
} from '../../src/sources/kubernetes/map.js';
import type { Pod, PodList } from '../../src/sources/kubernetes/types.js';

const FIX = join(import.meta.dirname, '../fixtures/kubernetes');
const list = (f: string) => (JSON.parse(readFileSync(join(FIX, f), 'utf8')) as PodList).items;
const pods = [...list('k8s-pods-list.json'), ...list('k8s-pods-list-page2.json')];
const pod = (name: string) => pods.find((p) => p.metadata.name.startsWith(name))!;
const MIB = 1_048_576;
const NANO = 1_000_000_000n;

describe('the fixture pods map to the documented resources and times', () => {
  it('hub/jupyter-foo: PrimeHub notebook, terminating but still running', () => {
    // 1 CPU, memory "1G" = 10^9 bytes = 953.67431640625 MiB; the usage annotation names all three.
    expect(mapPod(pod('jupyter-foo'), DEFAULT_ATTRIBUTION)).toMatchObject({
      id: '1fb0ca03-0fbe-4c82-88f3-d0e702ae858a',
      namespace: 'hub',
      job_id: '1fb0ca03-0fbe-4c82-88f3-d0e702ae858a', // a bare pod is its own job
      job_name: 'jupyter-foo',
      user: 'foo',
      group: 'phusers',
      component: 'jupyter',
      node: 'gke-primehub-cpu-pool-7f3c2a1b-x9kq',
      status: 'running',
      created: '2025-03-12T07:58:03Z',
      start: '2025-03-12T07:58:03Z',
      end: null,
      modified: null,
      resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1e9 / MIB, disk_mib: 0, gpu: 0 },
    });
    expect(1e9 / MIB).toBe(953.67431640625);
  });

  it('jhub/jupyter-alice-...: the raw user name from the annotation, not the label slug', () => {
    expect(mapPod(pod('jupyter-alice'), DEFAULT_ATTRIBUTION)).toMatchObject({
      user: 'alice@example.org',
      group: null,
      component: 'singleuser-server',
      status: 'running',
      start: '2025-03-12T08:31:58Z',
      end: null,
      // 50m; "1073741824" bytes = 1024 MiB (the limits, 2 CPU and 2 GiB, are not requests)
      resources: { cpu_cores: 0.05, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
    });
  });

  it('ml-batch/llm-finetune-7b-worker-0: effective request 8350m CPU, 65824Mi, 2 GPUs', () => {
    // containers: pytorch 8 CPU 64Gi 2 GPU + sidecar metrics-exporter 100m 128Mi = 8.1 CPU, 65664Mi
    // init: fetch-dataset 2 CPU 8Gi + the sidecar declared before it = 2.1 CPU, 8320Mi
    // max(8.1, 2.1) + overhead 250m = 8.35 CPU; max(65664, 8320) + 160Mi = 65824Mi
    const p = pod('llm-finetune');
    const eff = effectiveRequests(p);
    expect(eff.get('cpu')).toBe(8_350_000_000n);
    expect(eff.get('memory')).toBe(65_824n * BigInt(MIB) * NANO);
    expect(eff.get('nvidia.com/gpu')).toBe(2n * NANO);
    expect(mapPod(p, DEFAULT_ATTRIBUTION)).toMatchObject({
      job_id: 'a787474a-bf4c-414c-847f-33f2376cefc7',
      job_name: 'llm-finetune-7b',
      user: null,
      group: null,
      component: null,
      node: 'gpu-a100-node-03',
      status: 'running',
      created: '2025-03-11T23:04:18Z',
      start: '2025-03-11T23:04:19Z',
      end: null,
      resources: { cpu_cores: 8.35, cpu_mhz: 0, memory_mib: 65824, disk_mib: 0, gpu: 2 },
    });
  });

  it('ml-batch/preprocess-data-...: a Succeeded Job pod ends at its last container finishedAt', () => {
    expect(mapPod(pod('preprocess-data'), DEFAULT_ATTRIBUTION)).toMatchObject({
      job_id: 'fc17cf80-23e9-42f8-b70f-97a41d65c88d',
      job_name: 'preprocess-data-29029080',
      status: 'complete',
      start: '2025-03-12T02:00:00Z',
      end: '2025-03-12T02:41:35Z',
      resources: { cpu_cores: 0.5, cpu_mhz: 0, memory_mib: 2048, disk_mib: 0, gpu: 0 },
    });
  });

  it('research/bert-sweep-...: unschedulable, so pending with no start; memory "16e9", one AMD GPU', () => {
    expect(mapPod(pod('bert-sweep'), DEFAULT_ATTRIBUTION)).toMatchObject({
      job_id: '68ae053d-f0b4-4dd2-b42f-7ff3fa94fe59',
      job_name: 'bert-sweep-5f7d9c8b6d',
      node: null,
      status: 'pending',
      start: null,
      end: null,
      // 16 × 10^9 bytes / 2^20 = 15258.7890625 MiB
      resources: { cpu_cores: 4, cpu_mhz: 0, memory_mib: 15258.7890625, disk_mib: 0, gpu: 1 },
    });
  });

  it('keeps what the record was derived from, without managedFields', () => {
    const r = mapPod(pod('llm-finetune'), DEFAULT_ATTRIBUTION);
    expect(r.raw).toMatchObject({
      pod: 'llm-finetune-7b-worker-0',
      phase: 'Running',
      owner: { kind: 'PyTorchJob', name: 'llm-finetune-7b', uid: 'a787474a-bf4c-414c-847f-33f2376cefc7' },
      overhead: { cpu: '250m', memory: '160Mi' },
      init_containers: [
        { name: 'metrics-exporter', restart_policy: 'Always', requests: { cpu: '100m', memory: '128Mi' } },
        { name: 'fetch-dataset', restart_policy: null },
      ],
      labels: { owner: 'carol', team: 'nlp' },
    });
    expect(JSON.stringify(mapPod(pod('preprocess-data'), DEFAULT_ATTRIBUTION))).not.toContain('managedFields');
  });

  it('attributes by configured labels', () => {
    const byLabel: AttributionConfig = { user: [parseAttributionSource('label:owner')], group: [parseAttributionSource('label:team')], component: [] };
    expect(pods.map((p) => [p.metadata.name, mapPod(p, byLabel).user, mapPod(p, byLabel).group])).toEqual([
      ['jupyter-foo', null, null],
      ['jupyter-alice-example-org---7a64adf2', null, null],
      ['llm-finetune-7b-worker-0', 'carol', 'nlp'],
      ['preprocess-data-29029080-x7k2p', 'dataeng', null],
      ['bert-sweep-5f7d9c8b6d-qwz4r', 'dave', null],
    ]);
  });
});

const base = (spec: Pod['spec'], status: Pod['status'] = { phase: 'Running' }): Pod => ({ metadata: { name: 'p', namespace: 'n', uid: 'u' }, spec, status });
const res = (requests: Record<string, string>, limits?: Record<string, string>) => ({ resources: { requests, ...(limits ? { limits } : {}) } });

describe('effective requests', () => {
  const cores = (p: Pod) => toNativeResources(effectiveRequests(p)).cpu_cores;

  it('without sidecars: max(Σ containers, max init) + overhead', () => {
    // containers 1 + 0.5 = 1.5; init max(2, 0.25) = 2; + overhead 0.1 = 2.1
    const p = base({
      containers: [{ name: 'a', ...res({ cpu: '1' }) }, { name: 'b', ...res({ cpu: '500m' }) }],
      initContainers: [{ name: 'i1', ...res({ cpu: '2' }) }, { name: 'i2', ...res({ cpu: '250m' }) }],
      overhead: { cpu: '100m' },
    });
    expect(cores(p)).toBe(2.1);
  });

  it('a sidecar counts for the init containers declared after it only', () => {
    // init A 1 (no sidecar yet), sidecar S 0.5, init B 1 + 0.5 = 1.5; containers 0.2 + S 0.5 = 0.7
    const p = base({
      containers: [{ name: 'main', ...res({ cpu: '200m' }) }],
      initContainers: [
        { name: 'A', ...res({ cpu: '1' }) },
        { name: 'S', restartPolicy: 'Always', ...res({ cpu: '500m' }) },
        { name: 'B', ...res({ cpu: '1' }) },
      ],
    });
    expect(cores(p)).toBe(1.5);
    // Sidecars also add to the main phase: with a 3-CPU main container, 3 + 0.5 wins.
    p.spec!.containers![0] = { name: 'main', ...res({ cpu: '3' }) };
    expect(cores(p)).toBe(3.5);
  });

  it('a limit stands for a missing request, resource by resource', () => {
    const p = base({ containers: [{ name: 'a', ...res({ memory: '1Gi' }, { cpu: '2', memory: '4Gi' }) }] });
    expect(toNativeResources(effectiveRequests(p))).toEqual({ cpu_cores: 2, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 });
  });

  it('pod-level resources replace cpu and memory, not the rest', () => {
    const p = base({
      containers: [{ name: 'a', ...res({ cpu: '1', memory: '1Gi', 'nvidia.com/gpu': '1' }) }],
      resources: { requests: { cpu: '3' }, limits: { memory: '8Gi' } },
    });
    expect(toNativeResources(effectiveRequests(p))).toEqual({ cpu_cores: 3, cpu_mhz: 0, memory_mib: 8192, disk_mib: 0, gpu: 1 });
  });

  it('counts NVIDIA, AMD and Intel GPUs, not MIG slices or other devices; ephemeral storage is disk', () => {
    const p = base({
      containers: [
        { name: 'a', ...res({ 'nvidia.com/gpu': '2', 'gpu.intel.com/i915': '1', 'nvidia.com/mig-1g.5gb': '3', 'example.com/fpga': '1' }) },
        { name: 'b', ...res({ 'amd.com/gpu': '1', 'gpu.intel.com/xe': '1', 'ephemeral-storage': '10Gi' }) },
      ],
    });
    expect(toNativeResources(effectiveRequests(p))).toEqual({ cpu_cores: 0, cpu_mhz: 0, memory_mib: 0, disk_mib: 10240, gpu: 5 });
  });

  it('rounds CPU up to millicores and memory up to bytes once, after summing', () => {
    // 3 × 0.4m = 1.2m → 2m; 3 × "400m" bytes = 1.2 bytes → 2 bytes
    const c = { name: 'x', ...res({ cpu: '0.4m', memory: '400m' }) };
    const p = base({ containers: [c, { ...c, name: 'y' }, { ...c, name: 'z' }] });
    expect(toNativeResources(effectiveRequests(p))).toMatchObject({ cpu_cores: 0.002, memory_mib: 2 / MIB });
  });

  it('names the container of a malformed quantity', () => {
    const p = base({ containers: [{ name: 'web', ...res({ memory: '2GB' }) }] });
    expect(() => mapPod(p, DEFAULT_ATTRIBUTION)).toThrow(PodResourceError);
    expect(() => mapPod(p, DEFAULT_ATTRIBUTION)).toThrow(/^pod n\/p: container web requests.memory: not a Kubernetes quantity: "2GB"/);
  });
});

describe('status and lifetime', () => {
  const scheduled = { type: 'PodScheduled', status: 'True', lastTransitionTime: '2025-01-01T10:00:00Z' };

  it('maps phases; a Pending pod bound to a node already holds its requests', () => {
    expect(podStatus(base({}, { phase: 'Running' }))).toBe('running');
    expect(podStatus(base({}, { phase: 'Succeeded' }))).toBe('complete');
    expect(podStatus(base({}, { phase: 'Failed' }))).toBe('failed');
    expect(podStatus(base({}, { phase: 'Unknown' }))).toBe('unknown');
    expect(podStatus(base({}, { phase: 'Pending' }))).toBe('pending');
    expect(podStatus(base({}, { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] }))).toBe('pending');
    expect(podStatus(base({}, { phase: 'Pending', conditions: [scheduled] }))).toBe('running');
    expect(podStatus(base({ nodeName: 'n1' }, { phase: 'Pending' }))).toBe('running');
    expect(podStatus(base({}, null))).toBe('pending');
  });

  it('a failed pod whose init container failed ends when that one finished', () => {
    const p = base(
      { nodeName: 'n1' },
      {
        phase: 'Failed',
        conditions: [scheduled],
        initContainerStatuses: [{ name: 'init', state: { terminated: { finishedAt: '2025-01-01T10:05:00Z', exitCode: 1 } } }],
        containerStatuses: [{ name: 'main', state: { waiting: { reason: 'PodInitializing' } } }],
      },
    );
    expect(mapPod(p, DEFAULT_ATTRIBUTION)).toMatchObject({ status: 'failed', start: '2025-01-01T10:00:00Z', end: '2025-01-01T10:05:00Z' });
  });

  it('takes the latest finish over all containers, sidecars included, and only once terminal', () => {
    const statuses = {
      conditions: [scheduled],
      initContainerStatuses: [{ name: 'sidecar', state: { terminated: { finishedAt: '2025-01-01T12:00:03Z' } } }],
      containerStatuses: [
        { name: 'a', state: { terminated: { finishedAt: '2025-01-01T12:00:00Z' } } },
        { name: 'b', state: { terminated: { finishedAt: '2025-01-01T11:00:00Z' } } },
      ],
    };
    expect(mapPod(base({ nodeName: 'n1' }, { phase: 'Succeeded', ...statuses }), DEFAULT_ATTRIBUTION).end).toBe('2025-01-01T12:00:03Z');
    expect(mapPod(base({ nodeName: 'n1' }, { phase: 'Running', ...statuses }), DEFAULT_ATTRIBUTION).end).toBeNull();
  });

  it('a pod bound by nodeName has no PodScheduled condition: the kubelet start time stands in', () => {
    expect(mapPod(base({ nodeName: 'n1' }, { phase: 'Running', startTime: '2025-01-01T09:00:00Z' }), DEFAULT_ATTRIBUTION).start).toBe('2025-01-01T09:00:00Z');
    expect(mapPod(base({}, { phase: 'Pending', startTime: '2025-01-01T09:00:00Z' }), DEFAULT_ATTRIBUTION).start).toBeNull();
  });
});

describe('attribution', () => {
  const meta = (annotations: Record<string, string>, labels: Record<string, string> = {}) => ({ annotations, labels });

  it('takes the first source that gives a value', () => {
    const sources = ['annotation:primehub.io/usage#user', 'annotation:hub.jupyter.org/username', 'label:owner'].map(parseAttributionSource);
    expect(attribute(meta({ 'primehub.io/usage': '{"user":"u1"}', 'hub.jupyter.org/username': 'u2' }, { owner: 'u3' }), sources)).toBe('u1');
    expect(attribute(meta({ 'primehub.io/usage': 'not json', 'hub.jupyter.org/username': 'u2' }), sources)).toBe('u2');
    expect(attribute(meta({ 'primehub.io/usage': '{"user":""}', 'hub.jupyter.org/username': '' }, { owner: 'u3' }), sources)).toBe('u3');
    expect(attribute(meta({ 'primehub.io/usage': '["user"]' }), sources)).toBeNull();
    expect(attribute(meta({ 'primehub.io/usage': '{"user":42}' }), sources)).toBe('42');
    expect(attribute({}, sources)).toBeNull();
  });

  it('parses and prints sources, and refuses malformed ones', () => {
    expect(parseAttributionSource('annotation:primehub.io/usage#group')).toEqual({ from: 'annotation', key: 'primehub.io/usage', field: 'group' });
    expect(parseAttributionSource('label:team')).toEqual({ from: 'label', key: 'team', field: null });
    expect(formatAttributionSource(parseAttributionSource('annotation:a.b/c#d'))).toBe('annotation:a.b/c#d');
    for (const bad of ['owner', 'env:OWNER', 'label:', 'label:a b', 'annotation:k#a#b']) expect(() => parseAttributionSource(bad)).toThrow(/annotation:KEY, label:KEY or annotation:KEY#FIELD/);
  });
});

describe('queued jobs', () => {
  it('groups unbound pods by controller, with the earliest creation time', () => {
    const owner = { kind: 'ReplicaSet', name: 'rs', uid: 'rs-uid', controller: true };
    const mk = (uid: string, created: string): Pod => ({
      metadata: { name: uid, namespace: 'n', uid, creationTimestamp: created, ownerReferences: [owner], labels: { owner: 'dave' } },
      spec: { containers: [{ name: 'c', ...res({ cpu: '1' }) }] },
      status: { phase: 'Pending' },
    });
    const byLabel: AttributionConfig = { ...DEFAULT_ATTRIBUTION, user: [parseAttributionSource('label:owner')] };
    const records = [mk('a', '2025-01-01T10:00:00Z'), mk('b', '2025-01-01T09:00:00Z'), pod('jupyter-foo')].map((p) => mapPod(p, byLabel));
    expect(queuedJobs(records)).toEqual([
      { namespace: 'n', job_id: 'rs-uid', job_name: 'rs', user: 'dave', group: null, component: null, submitted: '2025-01-01T09:00:00Z', queued: 2, resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 0, disk_mib: 0, gpu: 0 } },
    ]);
  });
});

describe('watch events: when a change happened, and how a delete ends a pod', () => {
  it('a change is dated by the latest time its object carries, never by a deletion still to come', () => {
    // jupyter-foo: the latest is Ready at 07:58:19 (after its container's start at 07:58:18); its graceful delete names 09:59:42.
    expect(podChangedAt(pod('jupyter-foo'))).toBe('2025-03-12T07:58:19Z');
    // llm-finetune: Ready at 23:21:07, after the init container ended (23:19:50) and the main one started (23:21:06).
    expect(podChangedAt(pod('llm-finetune'))).toBe('2025-03-11T23:21:07Z');
    // preprocess-data: a condition set after the container finished (02:41:37 > 02:41:35).
    expect(podChangedAt(pod('preprocess-data'))).toBe('2025-03-12T02:41:37Z');
    expect(podChangedAt({ metadata: { name: 'bare', uid: 'u' } })).toBeNull();
  });

  it("a delete is dated by the API's deletionTimestamp only once its grace period is 0", () => {
    const foo = pod('jupyter-foo');
    // Grace period 1: the delete was asked for, the kubelet has yet to stop it.
    expect(podDeletedAt(foo)).toBeNull();
    expect(podDeletedAt({ ...foo, metadata: { ...foo.metadata, deletionGracePeriodSeconds: 0 } })).toBe('2025-03-12T09:59:42Z');
    expect(podDeletedAt(pod('jupyter-alice'))).toBeNull();
  });

  it('a pod deleted before it ended is lost at its delete; one that ended keeps its own end', () => {
    const at = '2025-03-12T10:00:01.000000Z';
    expect(mapDeletedPod(pod('jupyter-alice'), DEFAULT_ATTRIBUTION, at)).toMatchObject({ status: 'lost', start: '2025-03-12T08:31:58Z', end: null, modified: at });
    // Never bound: lost too, with no start, so it never held anything.
    expect(mapDeletedPod(pod('bert-sweep'), DEFAULT_ATTRIBUTION, at)).toMatchObject({ status: 'lost', start: null, end: null, modified: at });
    expect(mapDeletedPod(pod('preprocess-data'), DEFAULT_ATTRIBUTION, at)).toMatchObject({ status: 'complete', start: '2025-03-12T02:00:00Z', end: '2025-03-12T02:41:35Z', modified: at });
  });
});
