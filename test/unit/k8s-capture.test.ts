import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { simulatedPods } from '../../fake/kubernetes-pods.js';
import { startFakeKubernetes, type FakeKubernetes, type FakeKubernetesOptions } from '../../fake/kubernetes-server.js';
import { ApiHttpError, DEFAULT_CLIENT_OPTIONS } from '../../src/sources/http.js';
import { captureKubernetes, listAll, type KubernetesCaptureOptions } from '../../src/sources/kubernetes/capture.js';
import { KubernetesClient } from '../../src/sources/kubernetes/client.js';
import { DEFAULT_ATTRIBUTION } from '../../src/sources/kubernetes/map.js';
import type { Pod } from '../../src/sources/kubernetes/types.js';
import { tempDir } from '../helpers/cli.js';
import { fixturePods } from '../helpers/k8s.js';

/** The capture against the fake API server, over real HTTPS with a bearer token. */

const TOKEN = 'k8s-test-token-5e1f';
let certs: TestCertificates;
const servers: FakeKubernetes[] = [];
const clients: KubernetesClient[] = [];

beforeAll(async () => {
  certs = await makeTestCertificates(tempDir());
}, 60_000);
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(options: Partial<FakeKubernetesOptions> = {}): Promise<{ fake: FakeKubernetes; client: KubernetesClient }> {
  const fake = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [TOKEN], pods: fixturePods(), ...options });
  servers.push(fake);
  const client = new KubernetesClient(
    { server: fake.url, origin: 'test', tls: { ca: certs.caCert, cert: null, key: null, serverName: null, skipVerify: false }, headers: { authorization: `Bearer ${TOKEN}` } },
    { ...DEFAULT_CLIENT_OPTIONS, backoffMs: 1 },
  );
  clients.push(client);
  return { fake, client };
}

const names = (pods: Pod[]) => pods.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
const FIXTURE_ORDER = [
  'hub/jupyter-foo',
  'jhub/jupyter-alice-example-org---7a64adf2',
  'ml-batch/llm-finetune-7b-worker-0',
  'ml-batch/preprocess-data-29029080-x7k2p',
  'research/bert-sweep-5f7d9c8b6d-qwz4r',
];

function options(over: Partial<KubernetesCaptureOptions> = {}): KubernetesCaptureOptions {
  return {
    namespaces: null,
    excludeNamespaces: [],
    labelSelector: null,
    fieldSelector: null,
    limit: 500,
    maxRestarts: 5,
    attribution: DEFAULT_ATTRIBUTION,
    now: () => new Date('2025-03-12T10:00:00Z'),
    source: { kind: 'kubernetes', address: 'https://k8s.example.org', region: null },
    ...over,
  };
}

describe('chunked lists', () => {
  it('follows continue tokens until a page has none, in storage-key order', async () => {
    const { fake, client } = await setup();
    const pods = await listAll<Pod>(client, '/api/v1/pods', {}, { limit: 2, maxRestarts: 0 });
    expect(names(pods)).toEqual(FIXTURE_ORDER);
    // 5 pods in pages of 2: three requests, the last two with the token of the page before.
    expect(fake.requests.map((r) => [r.query.limit, r.query.continue !== undefined, r.status])).toEqual([
      ['2', false, 200],
      ['2', true, 200],
      ['2', true, 200],
    ]);
    expect(fake.requests.every((r) => r.token === 0)).toBe(true);
  });

  it('starts the list again when the continue token expires in the middle, and returns one consistent view', async () => {
    // keepRevisions 0: a change to the pods compacts away the revision a token reads.
    const { fake, client } = await setup({ keepRevisions: 0 });
    const changed = fixturePods().filter((p) => p.metadata.name !== 'jupyter-foo');
    const extra = simulatedPods({ count: 3, at: '2025-03-12T10:00:00Z' });
    let changes = 0;
    fake.onRequest((r) => {
      if (r.query.continue !== undefined && changes === 0) {
        changes++;
        fake.setPods([...changed, ...extra]);
      }
    });
    let restarts = 0;
    const pods = await listAll<Pod>(client, '/api/v1/pods', {}, { limit: 2, maxRestarts: 3, onRestart: () => restarts++ });
    // Nothing of the first view (jupyter-foo, listed on its first page) survives.
    expect(names(pods).sort()).toEqual(names([...changed, ...extra]).sort());
    expect(restarts).toBe(1);
    // First page, then 410 for the expired token, then the whole list again: 4 + 3 = 7 pods in 4 pages.
    expect(fake.requests.map((r) => [r.query.continue !== undefined, r.status])).toEqual([
      [false, 200],
      [true, 410],
      [false, 200],
      [true, 200],
      [true, 200],
      [true, 200],
    ]);
  });

  it('gives up, bounded, when every token expires', async () => {
    const { fake, client } = await setup({ continueTtlMs: 0 });
    const err = await listAll<Pod>(client, '/api/v1/pods', {}, { limit: 2, maxRestarts: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiHttpError);
    expect((err as ApiHttpError).status).toBe(410);
    expect((err as Error).message).toMatch(/continue token expired \(410 Gone\) 3 times in a row.*raise --per-page/);
    // Three attempts of two requests each (first page, expired second page).
    expect(fake.requests).toHaveLength(6);
  });

  it('retries a 503 and never a 401', async () => {
    const { fake, client } = await setup();
    fake.faults.enqueue({ kind: 'status', status: 503, times: 1, match: '/api/v1/pods' });
    expect(await listAll<Pod>(client, '/api/v1/pods', {}, { limit: 500, maxRestarts: 0 })).toHaveLength(5);
    fake.setTokens(['another']);
    const before = fake.requests.length;
    await expect(listAll<Pod>(client, '/api/v1/pods', {}, { limit: 500, maxRestarts: 0 })).rejects.toThrow(/GET \/api\/v1\/pods: HTTP 401 \(Unauthorized\)$/);
    expect(fake.requests.length - before).toBe(1);
  });
});

describe('captureKubernetes', () => {
  it('covers every namespace, those without pods too, and maps every pod', async () => {
    const { client } = await setup({ namespaces: ['empty'] });
    const r = await captureKubernetes(client, options());
    expect(r.snapshot.scope).toEqual({ requested: ['*'], namespaces: ['empty', 'hub', 'jhub', 'ml-batch', 'research'], failed: [] });
    expect(r.snapshot.allocations.map((a) => `${a.namespace}/${a.raw!.pod as string}`)).toEqual(FIXTURE_ORDER);
    expect(r.snapshot.source).toEqual({ kind: 'kubernetes', address: 'https://k8s.example.org', region: null });
    expect(r.snapshot.captured_at).toBe('2025-03-12T10:00:00.000Z');
    // The unschedulable pod waits to be placed.
    expect(r.snapshot.queued).toMatchObject([{ namespace: 'research', job_name: 'bert-sweep-5f7d9c8b6d', queued: 1, submitted: '2025-03-12T09:47:13Z' }]);
    expect(r.users).toEqual([
      { id: 'foo', name: null, email: null, group: 'phusers' },
      { id: 'alice@example.org', name: null, email: null, group: null },
    ]);
    expect(r.complete).toBe(true);
    expect(r.warnings).toEqual([]);
    // The file follows the format's schema.
    const ajv = new Ajv2020Module.default({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormatsModule.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(new URL('../../docs/snapshot-v1.schema.json', import.meta.url), 'utf8')) as object);
    expect(validate(JSON.parse(JSON.stringify(r.snapshot))), JSON.stringify(validate.errors)).toBe(true);
  });

  it('leaves excluded namespaces out of records and coverage; selectors go to the server', async () => {
    const { fake, client } = await setup();
    const r = await captureKubernetes(client, options({ excludeNamespaces: ['hub'], labelSelector: 'owner', fieldSelector: 'status.phase!=Succeeded' }));
    expect(r.snapshot.scope.namespaces).toEqual(['jhub', 'ml-batch', 'research']);
    expect(r.pods.map((p) => p.metadata.name)).toEqual(['llm-finetune-7b-worker-0', 'bert-sweep-5f7d9c8b6d-qwz4r']);
    expect(fake.requests.find((q) => q.path === '/api/v1/pods')!.query).toEqual({ labelSelector: 'owner', fieldSelector: 'status.phase!=Succeeded', limit: '500' });
  });

  it('without the right to list namespaces, covers the namespaces that have pods, with a warning', async () => {
    const { client } = await setup({ namespaceList: false, namespaces: ['empty'] });
    const r = await captureKubernetes(client, options());
    expect(r.snapshot.scope.namespaces).toEqual(['hub', 'jhub', 'ml-batch', 'research']);
    expect(r.complete).toBe(true);
    expect(r.warnings).toEqual([expect.stringMatching(/^listing namespaces: GET \/api\/v1\/namespaces: HTTP 403 \(namespaces is forbidden.*only namespaces with pods count as covered/)]);
  });

  it('lists named namespaces one by one and records the one it may not read', async () => {
    const { fake, client } = await setup({ clusterWideList: false, forbiddenNamespaces: ['ml-batch'] });
    const r = await captureKubernetes(client, options({ namespaces: ['hub', 'ml-batch', 'nothing-here'] }));
    expect(r.snapshot.scope).toEqual({
      requested: ['hub', 'ml-batch', 'nothing-here'],
      namespaces: ['hub', 'nothing-here'],
      failed: [{ namespace: 'ml-batch', reason: expect.stringMatching(/^listing pods: GET \/api\/v1\/namespaces\/ml-batch\/pods: HTTP 403 \(pods is forbidden/) }],
    });
    expect(r.snapshot.allocations.map((a) => a.namespace)).toEqual(['hub']);
    expect(r.complete).toBe(false);
    expect(fake.requests.map((q) => q.path)).toEqual(['/api/v1/namespaces/hub/pods', '/api/v1/namespaces/ml-batch/pods', '/api/v1/namespaces/nothing-here/pods']);
  });

  it('fails the whole scope when pods may not be listed across namespaces', async () => {
    const { client } = await setup({ clusterWideList: false });
    const r = await captureKubernetes(client, options());
    expect(r.snapshot.scope.namespaces).toEqual([]);
    expect(r.snapshot.scope.failed).toEqual([{ namespace: '*', reason: expect.stringMatching(/^listing pods: .*HTTP 403 \(pods is forbidden: .* at the cluster scope\)/) }]);
  });

  it('takes the time of a list started again as the snapshot time', async () => {
    const { fake, client } = await setup({ keepRevisions: 0 });
    fake.onRequest((r) => {
      if (r.path === '/api/v1/pods' && r.query.continue !== undefined && fake.resourceVersion === 1000) fake.setPods(fixturePods());
    });
    const times = ['2025-03-12T10:00:00Z', '2025-03-12T10:07:00Z', '2025-03-12T10:07:02Z'];
    const r = await captureKubernetes(client, options({ limit: 2, now: () => new Date(times.shift()!) }));
    expect(r.restarts).toBe(1);
    expect(r.snapshot.captured_at).toBe('2025-03-12T10:07:00.000Z');
    expect(r.snapshot.finished_at).toBe('2025-03-12T10:07:02.000Z');
  });

  it('fails a namespace with a malformed quantity rather than leave its pod out', async () => {
    const pods = fixturePods();
    pods[0]!.spec!.containers![0]!.resources!.requests!.memory = '1 G';
    const { client } = await setup({ pods });
    const r = await captureKubernetes(client, options());
    expect(r.snapshot.scope.namespaces).toEqual(['jhub', 'ml-batch', 'research']);
    expect(r.snapshot.scope.failed).toEqual([{ namespace: 'hub', reason: 'pod hub/jupyter-foo: container notebook requests.memory: not a Kubernetes quantity: "1 G" (unknown suffix " G"; use one of n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or an exponent such as e6)' }]);
  });
});
