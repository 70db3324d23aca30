import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { startFakeKubernetes, type FakeKubernetes } from '../../fake/kubernetes-server.js';
import { runAsync, tempDir } from '../helpers/cli.js';
import { fixturePods, writeKubeconfig } from '../helpers/k8s.js';

/** `hourmeter k8s unattributed` against the fake API server serving the shared fixtures. */

const TOKEN = 'k8s-helper-token-77aa';
let certs: TestCertificates;
let fake: FakeKubernetes;
let env: Record<string, string>;

// Kept for the whole file: the folders of tempDir() are removed after each test.
const dir = mkdtempSync(join(tmpdir(), 'hourmeter-k8s-'));

beforeAll(async () => {
  certs = await makeTestCertificates(dir);
  fake = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [TOKEN], pods: fixturePods() });
  env = {
    KUBECONFIG: writeKubeconfig(join(dir, 'kubeconfig'), {
      current: 'test',
      clusters: [{ name: 'fake', server: fake.url, certs }],
      users: [{ name: 'reader', user: { token: TOKEN } }],
      contexts: [{ name: 'test', cluster: 'fake', user: 'reader' }],
    }),
  };
}, 60_000);
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('hourmeter k8s unattributed', () => {
  it('lists the running pods with no user and the commands that would attribute them, by default through PrimeHub\'s annotation', async () => {
    const r = await runAsync(['k8s', 'unattributed'], { cwd: tempDir(), env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Three pods hold resources (the Job pod has completed, the sweep is unschedulable); two have a
    // user from PrimeHub's and JupyterHub's annotations. The training pod has neither: 8.35 CPU,
    // 65824 MiB = 64.28 GiB, 2 GPUs.
    expect(r.stdout).toBe(
      [
        '# 1 of 3 running pods have no user (read from annotation:primehub.io/usage#user, annotation:hub.jupyter.org/username).',
        '# Review each command and replace <user> and <group> before running it; hourmeter changes nothing.',
        '# A pod made by a controller loses its annotations when it is replaced: set them in the pod template too.',
        '',
        '# ml-batch/llm-finetune-7b-worker-0 (PyTorchJob llm-finetune-7b) on gpu-a100-node-03 since 2025-03-11T23:04:19Z: 8.35 CPU, 64.28 GiB, 2 GPU',
        '# hints: label team=nlp, label owner=carol',
        `kubectl -n ml-batch annotate pod llm-finetune-7b-worker-0 'primehub.io/usage={"user":"<user>","group":"<group>"}'`,
        '',
      ].join('\n'),
    );
  });

  it('sets the configured label sources instead, and prints JSON for machines', async () => {
    const args = ['k8s', 'unattributed', '--pod-user', 'label:owner', '--pod-group', 'label:team'];
    const r = await runAsync(args, { cwd: tempDir(), env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        '# 2 of 3 running pods have no user (read from label:owner).',
        '# Review each command and replace <user> and <group> before running it; hourmeter changes nothing.',
        '# A pod made by a controller loses its annotations when it is replaced: set them in the pod template too.',
        '',
        '# hub/jupyter-foo on gke-primehub-cpu-pool-7f3c2a1b-x9kq since 2025-03-12T07:58:03Z: 1 CPU, 0.93 GiB',
        '# hints: label hub.jupyter.org/username=foo, label primehub.io/group=escaped-phusers, label primehub.io/user=escaped-foo, annotation hub.jupyter.org/username=foo',
        "kubectl -n hub label pod jupyter-foo 'owner=<user>'",
        "kubectl -n hub label pod jupyter-foo 'team=<group>'",
        '',
        '# jhub/jupyter-alice-example-org---7a64adf2 on aks-user-18742263-vmss000004 since 2025-03-12T08:31:58Z: 0.05 CPU, 1 GiB',
        '# hints: label hub.jupyter.org/username=alice-example-org---7a64adf2, annotation hub.jupyter.org/username=alice@example.org',
        "kubectl -n jhub label pod jupyter-alice-example-org---7a64adf2 'owner=<user>'",
        "kubectl -n jhub label pod jupyter-alice-example-org---7a64adf2 'team=<group>'",
        '',
      ].join('\n'),
    );
    const j = JSON.parse((await runAsync([...args, '--namespace', 'jhub', '-o', 'json'], { cwd: tempDir(), env })).stdout);
    expect(j).toEqual({
      checked: 1,
      pods: [
        {
          namespace: 'jhub',
          pod: 'jupyter-alice-example-org---7a64adf2',
          uid: '4c9fdc6b-db48-49ee-a895-e49a4617f6dd',
          node: 'aks-user-18742263-vmss000004',
          start: '2025-03-12T08:31:58.000000Z',
          controller: null,
          resources: { cpu_cores: 0.05, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
          group: null,
          hints: ['label hub.jupyter.org/username=alice-example-org---7a64adf2', 'annotation hub.jupyter.org/username=alice@example.org'],
          commands: ["kubectl -n jhub label pod jupyter-alice-example-org---7a64adf2 'owner=<user>'", "kubectl -n jhub label pod jupyter-alice-example-org---7a64adf2 'team=<group>'"],
        },
      ],
    });
  });

  it('says so when every running pod has a user', async () => {
    const r = await runAsync(['k8s', 'unattributed', '--namespace', 'hub', '--namespace', 'jhub'], { cwd: tempDir(), env });
    expect(r).toMatchObject({ code: 0, stderr: '', stdout: '# every running pod has a user (2 running pods checked; users are read from annotation:primehub.io/usage#user, annotation:hub.jupyter.org/username)\n' });
  });
});
