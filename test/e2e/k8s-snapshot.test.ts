import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { simulatedPods } from '../../fake/kubernetes-pods.js';
import { startFakeKubernetes, type FakeKubernetes } from '../../fake/kubernetes-server.js';
import type { NativeSnapshot } from '../../src/snapshots/format.js';
import { runAsync, tempDir } from '../helpers/cli.js';
import { fixturePods, writeKubeconfig } from '../helpers/k8s.js';

/** `hourmeter snapshot --source kubernetes` as a process, against a fake API server over HTTPS. */

const TOKEN = 'k8s-reader-token-0a1b2c';
const TOKEN2 = 'k8s-other-token-3d4e5f';
const NOW = '2025-03-12T10:00:00Z';
let certs: TestCertificates;
let fake: FakeKubernetes;

beforeAll(async () => {
  certs = await makeTestCertificates(tempDir());
  // The CA is given so that the server asks for client certificates (and accepts tokens as well).
  fake = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.caCert }, tokens: [TOKEN, TOKEN2], pods: fixturePods() });
}, 60_000);
afterAll(async () => fake.close());
afterEach(() => {
  fake.requests.length = 0;
  fake.faults.clear();
});

const K8S = ['snapshot', '--source', 'kubernetes', '--now', NOW];

/** A kubeconfig for the fake with one user, as the current context. */
function tokenKubeconfig(dir: string, user: Record<string, unknown> = { token: TOKEN }, name = 'kubeconfig'): string {
  return writeKubeconfig(join(dir, name), {
    current: 'test',
    clusters: [{ name: 'fake', server: fake.url, certs }],
    users: [{ name: 'reader', user }],
    contexts: [{ name: 'test', cluster: 'fake', user: 'reader' }],
  });
}

function onlySnapshot(cwd: string): NativeSnapshot {
  const dir = join(cwd, 'snapshots');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
  expect(files).toHaveLength(1);
  return JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as NativeSnapshot;
}

const noSnapshot = (cwd: string) => !existsSync(join(cwd, 'snapshots')) || readdirSync(join(cwd, 'snapshots')).filter((f) => !f.startsWith('.')).length === 0;

describe('hourmeter snapshot --source kubernetes', () => {
  it('lists every pod with a kubeconfig token and maps each to the documented resources and times', async () => {
    const cwd = tempDir();
    const r = await runAsync(K8S, { cwd, env: { KUBECONFIG: tokenKubeconfig(cwd) } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // namespaces, then all pods in one page of up to 500
    expect(r.stdout).toBe('wrote snapshots/2025-03-12T10:00:00Z.json: 5 pods, 1 queued jobs, 4 namespaces (2 requests)\n');
    expect(fake.requests.map((q) => [q.path, q.query])).toEqual([
      ['/api/v1/namespaces', { limit: '500' }],
      ['/api/v1/pods', { limit: '500' }],
    ]);
    expect(fake.requests.every((q) => q.bearer && q.token === 0)).toBe(true);
    const snap = onlySnapshot(cwd);
    expect(snap.captured_at).toBe('2025-03-12T10:00:00.000Z');
    // The cluster is named after the kubeconfig context by default (docs/accounting.md#clusters).
    expect(snap.source).toEqual({ kind: 'kubernetes', address: fake.url, region: null, cluster: 'test' });
    expect(snap.scope).toEqual({ requested: ['*'], namespaces: ['hub', 'jhub', 'ml-batch', 'research'], failed: [] });
    const rows = snap.allocations.map((a) => [a.namespace, a.raw!.pod, a.status, a.start, a.end, a.user, a.group, a.resources]);
    const mib = (bytes: number) => bytes / 1_048_576;
    expect(rows).toEqual([
      // 1 CPU, "1G" = 10^9 bytes
      ['hub', 'jupyter-foo', 'running', '2025-03-12T07:58:03Z', null, 'foo', 'phusers', { cpu_cores: 1, cpu_mhz: 0, memory_mib: mib(1e9), disk_mib: 0, gpu: 0 }],
      // 50m, "1073741824" bytes = 1 GiB
      ['jhub', 'jupyter-alice-example-org---7a64adf2', 'running', '2025-03-12T08:31:58Z', null, 'alice@example.org', null, { cpu_cores: 0.05, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 }],
      // max(8 + 0.1 sidecar, 2 init + 0.1) + 0.25 overhead = 8.35; max(64Gi + 128Mi, 8Gi + 128Mi) + 160Mi = 65824Mi; 2 GPUs
      ['ml-batch', 'llm-finetune-7b-worker-0', 'running', '2025-03-11T23:04:19Z', null, null, null, { cpu_cores: 8.35, cpu_mhz: 0, memory_mib: 65824, disk_mib: 0, gpu: 2 }],
      // 500m, 2Gi; ended when its container finished
      ['ml-batch', 'preprocess-data-29029080-x7k2p', 'complete', '2025-03-12T02:00:00Z', '2025-03-12T02:41:35Z', null, null, { cpu_cores: 0.5, cpu_mhz: 0, memory_mib: 2048, disk_mib: 0, gpu: 0 }],
      // unschedulable: 4 CPU, "16e9" bytes, one AMD GPU, not started
      ['research', 'bert-sweep-5f7d9c8b6d-qwz4r', 'pending', null, null, null, null, { cpu_cores: 4, cpu_mhz: 0, memory_mib: mib(16e9), disk_mib: 0, gpu: 1 }],
    ]);
    // The token is in no file and no output; users land in the user database.
    for (const f of readdirSync(join(cwd, 'snapshots')).filter((n) => n.endsWith('.json'))) expect(readFileSync(join(cwd, 'snapshots', f), 'utf8')).not.toContain(TOKEN);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    const users = JSON.parse(readFileSync(join(cwd, 'userdb', 'users.json'), 'utf8'));
    expect(Object.keys(users)).toEqual(['alice@example.org', 'foo']);
    expect(users.foo).toMatchObject({ groups: ['phusers'], first_seen: snap.captured_at });
  });

  it('reads a client certificate and key named by the kubeconfig, relative to its folder', async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'kube'));
    // (the certificates' own folder is gone after the first test: their text is kept)
    writeFileSync(join(cwd, 'kube', 'client.pem'), certs.clientCert);
    writeFileSync(join(cwd, 'kube', 'client-key.pem'), certs.clientKey);
    const kc = tokenKubeconfig(join(cwd, 'kube'), { 'client-certificate': 'client.pem', 'client-key': 'client-key.pem' });
    const r = await runAsync(K8S, { cwd, env: { KUBECONFIG: kc } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(onlySnapshot(cwd).allocations).toHaveLength(5);
    expect(fake.requests.length).toBe(2);
    expect(fake.requests.every((q) => q.clientCert && !q.bearer)).toBe(true);
  });

  it('runs an exec credential plugin with its arguments and environment', async () => {
    const cwd = tempDir();
    const plugin = join(cwd, 'credential-plugin.sh');
    // Prints an ExecCredential whose token is its first argument followed by $SUFFIX.
    writeFileSync(plugin, '#!/bin/sh\nprintf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s%s"}}\\n\' "$1" "$SUFFIX"\n');
    chmodSync(plugin, 0o755);
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, args: [TOKEN2.slice(0, 10)], env: [{ name: 'SUFFIX', value: TOKEN2.slice(10) }] };
    const r = await runAsync(K8S, { cwd, env: { KUBECONFIG: tokenKubeconfig(cwd, { exec }) } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fake.requests.every((q) => q.token === 1)).toBe(true);

    // A plugin that fails: exit 3, with what it said.
    writeFileSync(plugin, '#!/bin/sh\necho "error: the login session expired" >&2\nexit 1\n');
    const bad = await runAsync(K8S, { cwd: tempDir(), env: { KUBECONFIG: tokenKubeconfig(cwd, { exec }) } });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toBe(`hourmeter: the exec credential plugin "${plugin}" of user reader (context test of ${join(cwd, 'kubeconfig')}) failed: error: the login session expired; run it by hand to see why\n`);
  });

  it('merges the KUBECONFIG list as kubectl does, and --context picks a context from any file', async () => {
    const cwd = tempDir();
    // The first file sets current-context alpha and defines cluster "fake".
    const first = writeKubeconfig(join(cwd, 'first'), {
      current: 'alpha',
      clusters: [{ name: 'fake', server: fake.url, certs }],
      users: [{ name: 'u1', user: { token: TOKEN } }],
      contexts: [{ name: 'alpha', cluster: 'fake', user: 'u1' }],
    });
    // The second sets current-context beta and defines "fake" again, at an address where nothing listens:
    // the first definition wins, and so does the first current-context.
    const second = writeKubeconfig(join(cwd, 'second'), {
      current: 'beta',
      clusters: [{ name: 'fake', server: 'https://127.0.0.1:9', certs }],
      users: [{ name: 'u2', user: { token: TOKEN2 } }],
      contexts: [{ name: 'beta', cluster: 'fake', user: 'u2' }],
    });
    const KUBECONFIG = [first, join(cwd, 'missing'), second].join(delimiter);
    const a = await runAsync([...K8S, '--retries', '1'], { cwd: tempDir(), env: { KUBECONFIG } });
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(fake.requests.every((q) => q.token === 0)).toBe(true);
    fake.requests.length = 0;

    const b = await runAsync([...K8S, '--retries', '1', '--context', 'beta'], { cwd: tempDir(), env: { KUBECONFIG } });
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    expect(fake.requests.length).toBe(2);
    expect(fake.requests.every((q) => q.token === 1)).toBe(true);

    const none = await runAsync([...K8S, '--context', 'gamma'], { cwd: tempDir(), env: { KUBECONFIG } });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`hourmeter: --context gamma: no such context in ${first}${delimiter}${second} (contexts: alpha, beta)\n`);

    // --kubeconfig beats KUBECONFIG: the second file alone points at the dead address.
    const alone = await runAsync([...K8S, '--retries', '1', '--kubeconfig', second], { cwd: tempDir(), env: { KUBECONFIG: first } });
    expect(alone.code).toBe(3);
    expect(alone.stderr).toMatch(/listing pods: GET \/api\/v1\/pods: .*ECONNREFUSED.*\(after 1 attempts\)/);
  });

  it('uses the in-cluster service account, re-reading its token on every run', async () => {
    const rotating = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [TOKEN], pods: fixturePods() });
    try {
      const sa = tempDir();
      writeFileSync(join(sa, 'token'), TOKEN);
      writeFileSync(join(sa, 'ca.crt'), certs.caCert);
      const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(rotating.port), HOURMETER_SERVICE_ACCOUNT_DIR: sa };
      // No kubeconfig anywhere: inside a pod, the service account is the default.
      const cwd = tempDir();
      const first = await runAsync(['snapshot', '--source', 'kubernetes', '--now', '2025-03-12T10:00:00Z'], { cwd, env });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      // The kubelet rotates the token: the next run reads the new one.
      rotating.setTokens([TOKEN2]);
      writeFileSync(join(sa, 'token'), `${TOKEN2}\n`);
      const second = await runAsync(['snapshot', '--source', 'kubernetes', '--in-cluster', '--now', '2025-03-12T10:10:00Z'], { cwd, env });
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(readdirSync(join(cwd, 'snapshots')).filter((f) => f.endsWith('.json'))).toEqual(['2025-03-12T10:00:00Z.json', '2025-03-12T10:10:00Z.json']);
      expect(rotating.requests.map((q) => q.token)).toEqual([0, 0, 0, 0]);

      const missing = await runAsync(['snapshot', '--source', 'kubernetes', '--in-cluster', '--service-account-dir', join(sa, 'nope')], { cwd, env });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toBe(`hourmeter: in-cluster credentials: cannot read ${join(sa, 'nope', 'token')}; mount the pod's service account token (automountServiceAccountToken) or point --service-account-dir at its folder\n`);
    } finally {
      await rotating.close();
    }
  });

  it('restarts the pod list when its continue token expires in the middle', async () => {
    const at = '2025-03-12T10:00:00Z';
    const before = simulatedPods({ seed: 'before', count: 1234, at });
    const after = simulatedPods({ seed: 'after', count: 1201, at });
    const big = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [TOKEN], pods: before, keepRevisions: 0 });
    try {
      // The cluster changes while the second page is asked for: the revision the token reads is gone.
      big.onRequest((q) => {
        if (q.path === '/api/v1/pods' && q.query.continue !== undefined && big.resourceVersion === 1000) big.setPods(after);
      });
      const cwd = tempDir();
      const kc = writeKubeconfig(join(cwd, 'kc'), { current: 'c', clusters: [{ name: 'k', server: big.url, certs }], users: [{ name: 'u', user: { token: TOKEN } }], contexts: [{ name: 'c', cluster: 'k', user: 'u' }] });
      const r = await runAsync(K8S, { cwd, env: { KUBECONFIG: kc } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      // 1 namespace list + 1 page + the 410 + 3 pages of 500, 500 and 201.
      expect(r.stdout).toMatch(/: 1201 pods, \d+ queued jobs, 4 namespaces \(6 requests, 1 list restarted after an expired continue token\)\n$/);
      expect(big.requests.filter((q) => q.path === '/api/v1/pods').map((q) => [q.query.limit, q.query.continue !== undefined, q.status])).toEqual([
        ['500', false, 200],
        ['500', true, 410],
        ['500', false, 200],
        ['500', true, 200],
        ['500', true, 200],
      ]);
      // One consistent view: exactly the pods after the change.
      expect(onlySnapshot(cwd).allocations.map((a) => a.id).sort()).toEqual(after.map((p) => p.metadata.uid).sort());
    } finally {
      await big.close();
    }
  });
});

describe('settings errors say which setting and how to fix it', () => {
  it('no credentials at all', async () => {
    const r = await runAsync(['snapshot', '--source', 'kubernetes'], { cwd: tempDir() });
    expect(r).toMatchObject({ code: 2, stderr: 'hourmeter: no Kubernetes credentials: give --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, or run inside a pod with a service account (--in-cluster)\n' });
  });

  it('a missing --kubeconfig, a kubeconfig without current-context, a bad attribution source', async () => {
    const cwd = tempDir();
    expect(await runAsync([...K8S, '--kubeconfig', 'nope.yaml'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --kubeconfig nope.yaml: no such file; give the path of a kubeconfig file\n' });
    const kc = writeKubeconfig(join(cwd, 'kc'), { clusters: [{ name: 'k', server: fake.url, certs }], users: [{ name: 'u', user: { token: TOKEN } }], contexts: [{ name: 'c', cluster: 'k', user: 'u' }] });
    expect(await runAsync(K8S, { cwd, env: { KUBECONFIG: kc } })).toMatchObject({ code: 2, stderr: `hourmeter: ${kc} sets no current-context; give --context NAME (contexts: c)\n` });
    expect(await runAsync([...K8S, '--context', 'c', '--pod-user', 'owner'], { cwd, env: { KUBECONFIG: kc } })).toMatchObject({
      code: 2,
      stderr: 'hourmeter: --pod-user: "owner" is not an attribution source: write annotation:KEY, label:KEY or annotation:KEY#FIELD (a field of a JSON value), e.g. label:owner\n',
    });
  });

  it('flags of the other source are refused', async () => {
    const cwd = tempDir();
    expect(await runAsync([...K8S, '--token-file', 't', '--region', 'r'], { cwd })).toMatchObject({
      code: 2,
      stderr: 'hourmeter: --token-file, --region are not read with --source kubernetes: the kubeconfig or the service account says where and how to connect\n',
    });
    expect(await runAsync(['snapshot', '--kubeconfig', 'k'], { cwd })).toMatchObject({ code: 2, stderr: 'hourmeter: --kubeconfig is not read by the Nomad source: add --source kubernetes\n' });
  });

  it('a refused token: exit 3, the token never printed, no file written', async () => {
    const cwd = tempDir();
    const r = await runAsync(K8S, { cwd, env: { KUBECONFIG: tokenKubeconfig(cwd, { token: 'not-the-token' }) } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('hourmeter: warning: namespace *: listing pods: GET /api/v1/pods: HTTP 401 (Unauthorized)\n');
    expect(r.stderr).not.toContain('not-the-token');
    expect(noSnapshot(cwd)).toBe(true);
  });
});
