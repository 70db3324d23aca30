import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { startFakeKubernetes, type FakeKubernetes } from '../../fake/kubernetes-server.js';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import type { NativeSnapshot } from '../../src/snapshots/format.js';
import { runAsync, tempDir } from '../helpers/cli.js';
import { fixturePods, writeKubeconfig } from '../helpers/k8s.js';

/**
 * `hourmeter snapshot` against fake Nomad and Kubernetes API servers on 127.0.0.1 that
 * misbehave: credentials in addresses, page tokens that repeat, junk 200s, empty namespace
 * lists, Retry-After, servers that never answer. Every run is bounded by a short --timeout.
 */

const TOKEN = 'c0ffee00-secret-token-4d1a';
const K8S_TOKEN = 'k8s-reader-token-0a1b2c';
const cluster = createCluster({ seed: 5, days: 2, intervalMinutes: 60, targetConcurrent: 40 });
const at = (i: number) => cluster.snapshots[i]!.timeUs;
const NOW = new Date(at(10) / 1000).toISOString();

let nomad: FakeNomad;
let k8s: FakeKubernetes;
let certs: TestCertificates;
beforeAll(async () => {
  nomad = await startFakeNomad({ cluster, token: TOKEN, now: at(10) });
  certs = await makeTestCertificates(tempDir());
  k8s = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [K8S_TOKEN], pods: fixturePods() });
}, 60_000);
afterAll(async () => {
  await nomad.close();
  await k8s.close();
});
afterEach(() => {
  nomad.faults.clear();
  k8s.faults.clear();
  k8s.requests.length = 0;
});

const env = (extra: Record<string, string> = {}) => ({ NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN, ...extra });
const snapshot = (...args: string[]) => ['snapshot', '--now', NOW, '--timeout', '20s', ...args];

function snapshotsIn(cwd: string): string[] {
  const dir = join(cwd, 'snapshots');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')).sort() : [];
}

function onlySnapshot(cwd: string): NativeSnapshot {
  const files = snapshotsIn(cwd);
  expect(files).toHaveLength(1);
  return JSON.parse(readFileSync(join(cwd, 'snapshots', files[0]!), 'utf8')) as NativeSnapshot;
}

function kubeconfig(dir: string, server = k8s.url): string {
  return writeKubeconfig(join(dir, 'kubeconfig'), {
    current: 'test',
    clusters: [{ name: 'fake', server, certs }],
    users: [{ name: 'reader', user: { token: K8S_TOKEN } }],
    contexts: [{ name: 'test', cluster: 'fake', user: 'reader' }],
  });
}
const K8S = (...args: string[]) => ['snapshot', '--source', 'kubernetes', '--now', '2025-03-12T10:00:00Z', '--timeout', '20s', ...args];

/** Requests the fake Nomad received since `before` on `path`. */
const nomadRequestsTo = (before: number, path: string) => nomad.requests.slice(before).filter((q) => q.path === path).length;

describe('credentials in an address', () => {
  it('refuses a user name and password in --address or NOMAD_ADDR, naming where it came from, without quoting it', async () => {
    const withPassword = nomad.url.replace('http://', 'http://alice:hunter2@');
    const cwd = tempDir();
    const flag = await runAsync(snapshot('--address', withPassword), { cwd, env: env() });
    expect(flag).toMatchObject({
      code: 2,
      stderr: 'hourmeter: --address holds a user name or password (user:pass@host); remove it and give an ACL token instead (NOMAD_TOKEN or --token-file)\n',
    });
    const variable = await runAsync(snapshot(), { cwd, env: env({ NOMAD_ADDR: withPassword }) });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toContain('hourmeter: NOMAD_ADDR holds a user name or password');
    expect(variable.stderr).not.toContain('hunter2');
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('refuses a kubeconfig server URL with user info, without quoting it', async () => {
    const cwd = tempDir();
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kubeconfig(cwd, k8s.url.replace('https://', 'https://alice:hunter2@')) } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `hourmeter: context test of ${join(cwd, 'kubeconfig')}: the server URL of cluster fake holds a user name or password (user:pass@host); remove it and authenticate with a token or client certificate of the user instead\n`,
    );
    expect(snapshotsIn(cwd)).toEqual([]);
  });
});

describe('one deadline per capture', () => {
  it('gives up on a server that never answers at --timeout, exit 3, writing nothing', async () => {
    const cwd = tempDir();
    nomad.faults.enqueue({ kind: 'hang', match: '/v1/allocations', times: 10 });
    const started = Date.now();
    const r = await runAsync([...snapshot(), '--timeout', '1s'], { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `hourmeter: the capture did not finish within 1s (--timeout); no snapshot written: the API server at ${nomad.url} is slow or does not answer; check it, or raise --timeout\n`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('gives up on a Kubernetes API server that never answers', async () => {
    const cwd = tempDir();
    k8s.faults.enqueue({ kind: 'hang', match: '/api/v1/pods', times: 10 });
    const r = await runAsync([...K8S(), '--timeout', '1s'], { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('hourmeter: the capture did not finish within 1s (--timeout); no snapshot written');
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('refuses a --timeout that is not a duration', async () => {
    const r = await runAsync([...snapshot(), '--timeout', 'soon'], { cwd: tempDir(), env: env() });
    expect(r).toMatchObject({ code: 2, stderr: 'hourmeter: --timeout "soon" is not a duration: use e.g. 90s or 2m\n' });
  });
});

describe('Retry-After', () => {
  for (const [form, retry] of [
    ['seconds', { retryAfter: '2' }],
    // An HTTP date has whole seconds: 3 s after the answer is at least 2 s after it.
    ['an HTTP date', { retryAfterDateSeconds: 3 }],
  ] as const) {
    it(`waits as long as a 429 or 503 asks (${form}) before trying again`, async () => {
      const cwd = tempDir();
      nomad.faults.enqueue({ kind: 'status', status: 503, ...retry, match: '/v1/namespaces' });
      const before = nomad.requests.length;
      const r = await runAsync(snapshot(), { cwd, env: env() });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const tries = nomad.requests.slice(before).filter((q) => q.path === '/v1/namespaces');
      expect(tries.map((q) => q.status)).toEqual([503, 200]);
      expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(2000);
    });
  }

  it('waits as a Kubernetes 429 asks', async () => {
    const cwd = tempDir();
    k8s.faults.enqueue({ kind: 'status', status: 429, retryAfterSeconds: 2, match: '/api/v1/pods' });
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(0);
    const tries = k8s.requests.filter((q) => q.path === '/api/v1/pods');
    expect(tries.map((q) => q.status)).toEqual([429, 200]);
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(2000);
  });
});

describe('repeating page tokens', () => {
  it('stops a Nomad listing whose next-page token comes back, records its scope as failed, and writes what succeeded (exit 3)', async () => {
    const cwd = tempDir();
    nomad.faults.enqueue({ kind: 'repeat-token', match: '/v1/jobs', times: 1000 });
    const before = nomad.requests.length;
    const r = await runAsync(snapshot('--per-page', '3'), { cwd, env: env() });
    expect(r.code).toBe(3);
    // The first page hands out a token, the second hands the same one back: stopped there.
    expect(nomadRequestsTo(before, '/v1/jobs')).toBe(2);
    const reason = 'listing jobs (owners are unknown for this snapshot): GET /v1/jobs: the server handed out a next-page token it had handed out before (page 2); the listing would never end, so it was stopped';
    expect(r.stderr).toContain(`hourmeter: warning: namespace *: ${reason}\n`);
    const snap = onlySnapshot(cwd);
    expect(snap.scope.failed).toEqual([{ namespace: '*', reason }]);
    expect(snap.scope.namespaces.length).toBeGreaterThan(0);
    expect(snap.allocations.length).toBeGreaterThan(0);
  });

  it('stops a Kubernetes list whose continue token comes back; the other namespace is still captured (exit 3)', async () => {
    const cwd = tempDir();
    k8s.faults.enqueue({ kind: 'repeat-token', match: '/api/v1/namespaces/ml-batch/pods', times: 1000 });
    const r = await runAsync(K8S('--namespace', 'ml-batch', '--namespace', 'hub', '--per-page', '1'), { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(3);
    expect(k8s.requests.filter((q) => q.path === '/api/v1/namespaces/ml-batch/pods')).toHaveLength(2);
    const snap = onlySnapshot(cwd);
    expect(snap.scope.namespaces).toEqual(['hub']);
    expect(snap.scope.failed).toEqual([
      {
        namespace: 'ml-batch',
        reason: 'listing pods: GET /api/v1/namespaces/ml-batch/pods: the server handed out a next-page token it had handed out before (page 2); the listing would never end, so it was stopped',
      },
    ]);
    expect(snap.allocations.map((a) => a.raw && (a.raw as { pod: string }).pod)).toEqual(['jupyter-foo']);
  });
});

const JUNK = 'that is not what the API sends (is another service or a proxy answering at that address?)';
const HTML = '<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>';

describe('malformed 200s', () => {
  it('fails on an HTML page at once, without retrying it, and writes nothing (exit 3)', async () => {
    const cwd = tempDir();
    nomad.faults.enqueue({ kind: 'body', body: HTML, contentType: 'text/html', match: '/v1/namespaces', times: 10 });
    const before = nomad.requests.length;
    const r = await runAsync(snapshot(), { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`hourmeter: warning: namespace *: listing namespaces: GET /v1/namespaces: the reply is an HTML page, not JSON; ${JUNK}\n`);
    expect(nomadRequestsTo(before, '/v1/namespaces')).toBe(1);
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('fails the allocation listing when its records have no ID, in every namespace (exit 3, nothing written)', async () => {
    const cwd = tempDir();
    nomad.faults.enqueue({ kind: 'body', body: JSON.stringify([{ Namespace: 'default', JobID: 'x', ClientStatus: 'running' }]), match: '/v1/allocations', times: 100 });
    const r = await runAsync(snapshot('--namespace', 'default'), { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`hourmeter: warning: namespace default: listing allocations: GET /v1/allocations: record 1 has no ID; ${JUNK}\n`);
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  for (const [what, body, why] of [
    ['job records without a status', JSON.stringify([{ ID: 'train', Namespace: 'default' }]), 'record 1 has no Status'],
    ['a string instead of a list', JSON.stringify('no jobs today'), 'the reply is a string, not a list'],
  ] as const) {
    it(`records the job listing as failed on ${what}, and keeps the allocations (exit 3)`, async () => {
      const cwd = tempDir();
      nomad.faults.enqueue({ kind: 'body', body, match: '/v1/jobs', times: 10 });
      const r = await runAsync(snapshot(), { cwd, env: env() });
      expect(r.code).toBe(3);
      const snap = onlySnapshot(cwd);
      expect(snap.scope.failed).toEqual([{ namespace: '*', reason: `listing jobs (owners are unknown for this snapshot): GET /v1/jobs: ${why}; ${JUNK}` }]);
      expect(snap.allocations.length).toBeGreaterThan(0);
    });
  }

  it('fails a Kubernetes pod list whose pods have no uid (exit 3, nothing written)', async () => {
    const cwd = tempDir();
    const body = JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [{ metadata: { name: 'p', namespace: 'hub' } }] });
    k8s.faults.enqueue({ kind: 'body', body, match: '/api/v1/pods', times: 10 });
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`hourmeter: warning: namespace *: listing pods: GET /api/v1/pods: record 1 has no metadata.uid; ${JUNK}\n`);
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('fails a Kubernetes list that is an HTML page, without retrying it', async () => {
    const cwd = tempDir();
    k8s.faults.enqueue({ kind: 'body', body: HTML, contentType: 'text/html', match: '/api/v1/pods', times: 10 });
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`listing pods: GET /api/v1/pods: the reply is an HTML page, not JSON; ${JUNK}\n`);
    expect(k8s.requests.filter((q) => q.path === '/api/v1/pods')).toHaveLength(1);
  });
});

describe('an empty namespace list', () => {
  it('is an error from Nomad, which always has default (exit 3, nothing written)', async () => {
    const cwd = tempDir();
    nomad.faults.enqueue({ kind: 'body', body: '[]', match: '/v1/namespaces' });
    const r = await runAsync(snapshot(), { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      `hourmeter: warning: namespace *: listing namespaces: GET /v1/namespaces: the server listed no namespace, not even default (a token without any namespace capability gets 403, not an empty list); ${JUNK}\n`,
    );
    expect(snapshotsIn(cwd)).toEqual([]);
  });

  it('is an error from Kubernetes: the scope fails, the pods are still captured (exit 3)', async () => {
    const cwd = tempDir();
    k8s.faults.enqueue({ kind: 'body', body: JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }), match: '/api/v1/namespaces' });
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kubeconfig(cwd) } });
    expect(r.code).toBe(3);
    const snap = onlySnapshot(cwd);
    expect(snap.scope.failed).toEqual([{ namespace: '*', reason: `listing namespaces: GET /api/v1/namespaces: the server listed no namespace, not even default; ${JUNK}` }]);
    expect(snap.scope.namespaces).toEqual(['hub', 'jhub', 'ml-batch', 'research']);
  });
});

describe('messages that say how to fix the problem', () => {
  it('names NOMAD_TOKEN, --token-file and the ACL capabilities when the token is refused', async () => {
    const r = await runAsync(snapshot(), { cwd: tempDir(), env: env({ NOMAD_TOKEN: 'wrong' }) });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(
      'hourmeter: no snapshot written: nothing could be captured (1 failure above); the ACL token (NOMAD_TOKEN or --token-file) was refused: its policy must grant the namespace capabilities list-jobs and read-job on every namespace to capture (e.g. namespace "*" { policy = "read" })',
    );
  });

  it('names the RBAC verbs when Kubernetes refuses the credentials', async () => {
    const cwd = tempDir();
    const kc = writeKubeconfig(join(cwd, 'kubeconfig'), {
      current: 'test',
      clusters: [{ name: 'fake', server: k8s.url, certs }],
      users: [{ name: 'reader', user: { token: 'not-the-token' } }],
      contexts: [{ name: 'test', cluster: 'fake', user: 'reader' }],
    });
    const r = await runAsync(K8S(), { cwd, env: { KUBECONFIG: kc } });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`; the credentials of context test of ${kc} were refused: the user needs the RBAC verb list on pods (cluster-wide, or in each --namespace) and list on namespaces\n`);
  });

  it('names NOMAD_ADDR and --address when nothing answers there', async () => {
    const closed = await startFakeNomad({ cluster, token: TOKEN, now: at(10) });
    const url = closed.url;
    await closed.close();
    const r = await runAsync([...snapshot(), '--retries', '1'], { cwd: tempDir(), env: env({ NOMAD_ADDR: url }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`[ECONNREFUSED]`);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(`hourmeter: no snapshot written: nothing could be captured (1 failure above); nothing answered at ${url}: check NOMAD_ADDR or --address`);
  });

  it('names NOMAD_CACERT when the server certificate is not trusted', async () => {
    const tls = await startFakeNomad({ cluster, token: TOKEN, now: at(10), tls: { key: certs.serverKey, cert: certs.serverCert } });
    try {
      const r = await runAsync([...snapshot(), '--retries', '1'], { cwd: tempDir(), env: env({ NOMAD_ADDR: tls.url }) });
      expect(r.code).toBe(3);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/; the server's certificate could not be verified: give the CA that signed it with NOMAD_CACERT or --ca-cert$/);
    } finally {
      await tls.close();
    }
  });

  it('says a missing --token-file should hold a token, not a PEM file', async () => {
    const r = await runAsync(snapshot('--token-file', 'no-such-token'), { cwd: tempDir(), env: env() });
    expect(r).toMatchObject({ code: 2, stderr: "hourmeter: --token-file no-such-token: ENOENT; give a readable file holding the ACL token's secret ID\n" });
  });
});

describe('hourmeter serve', () => {
  it('says in one line that the port is taken, naming it and --port', async () => {
    const r = await runAsync(['serve', '--port', String(nomad.port)], { cwd: tempDir() });
    expect(r).toMatchObject({ code: 3, stderr: `hourmeter: cannot listen on 127.0.0.1:${nomad.port}: the port is already in use; stop what holds it, or give another --port\n` });
  });
});
