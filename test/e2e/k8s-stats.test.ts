import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates } from '../../fake/certs.js';
import { startFakeKubernetes } from '../../fake/kubernetes-server.js';
import { run, runAsync } from '../helpers/cli.js';
import { fixturePods, writeKubeconfig } from '../helpers/k8s.js';

/**
 * `stats --by user` and `--by group` on two Kubernetes snapshots of the fixture pods, taken by
 * the CLI from the fake API server: at 10:00 every pod is listed; by 12:00 hub/jupyter-foo has
 * been deleted (it was terminating at 09:59:42). Report day 2025-03-12, UTC.
 *
 * Worked out by hand (GC window 0 for Kubernetes, estimate: midpoint):
 * - foo (hub/jupyter-foo, group phusers): scheduled 07:58:03, running at 10:00, not listed at
 *   12:00, so it ended in (10:00, 12:00], estimated 11:00: 3 h 1 min 57 s = 10917 s.
 *   1 CPU; memory "1G" = 10^9 bytes = 10^9 / 2^30 GiB. Sure band: 7317 s (10:00) to 14517 s (12:00).
 * - alice@example.org (jhub, no group): scheduled 08:31:58, still running at 12:00, counted up
 *   to that last snapshot: 3 h 28 min 2 s = 12482 s. 50m CPU, 1 GiB.
 * - (unattributed) llm-finetune-7b-worker-0: scheduled the day before, running: the whole
 *   00:00-12:00 = 43200 s. 8.35 CPU, 2 GPUs, 65824 MiB = 64.28125 GiB.
 * - (unattributed) preprocess-data-...: 02:00:00 to its finish 02:41:35 = 2495 s. 0.5 CPU, 2 GiB.
 * - bert-sweep-...: never scheduled, nothing.
 */

const H = 3600;
const GIB_1G = 1e9 / 2 ** 30;
const foo = { cpu: 10917 / H, gpu: 0, mem: (GIB_1G * 10917) / H };
const alice = { cpu: (0.05 * 12482) / H, gpu: 0, mem: 12482 / H };
const llm = { cpu: 8.35 * 12, gpu: 2 * 12, mem: 64.28125 * 12 };
const pre = { cpu: (0.5 * 2495) / H, gpu: 0, mem: (2 * 2495) / H };
const sum = (...xs: { cpu: number; gpu: number; mem: number }[]) => ({ cpu: xs.reduce((a, x) => a + x.cpu, 0), gpu: xs.reduce((a, x) => a + x.gpu, 0), mem: xs.reduce((a, x) => a + x.mem, 0) });

const dir = mkdtempSync(join(tmpdir(), 'hourmeter-k8s-stats-'));
const cwd = join(dir, 'work');

beforeAll(async () => {
  const certs = await makeTestCertificates(join(dir, 'certs'));
  const pods = fixturePods();
  const fake = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: ['stats-token'], pods });
  try {
    const env = {
      KUBECONFIG: writeKubeconfig(join(dir, 'kubeconfig'), {
        current: 'c',
        clusters: [{ name: 'k', server: fake.url, certs }],
        users: [{ name: 'u', user: { token: 'stats-token' } }],
        contexts: [{ name: 'c', cluster: 'k', user: 'u' }],
      }),
    };
    mkdirSync(cwd);
    expect((await runAsync(['snapshot', '--source', 'kubernetes', '--now', '2025-03-12T10:00:00Z', '-q'], { cwd, env })).code).toBe(0);
    fake.setPods(pods.filter((p) => p.metadata.name !== 'jupyter-foo'));
    expect((await runAsync(['snapshot', '--source', 'kubernetes', '--now', '2025-03-12T12:00:00Z', '-q'], { cwd, env })).code).toBe(0);
  } finally {
    await fake.close();
  }
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Row {
  [key: string]: unknown;
  cpu_hours: number;
  gpu_hours: number;
  memory_gib_hours: number;
  jobs: number;
  users: number;
}

function stats(by: string): { rows: Row[]; total: Row; bounds: { low: { rows: Row[] }; high: { rows: Row[] } }; diagnostics: Record<string, unknown> } {
  const r = run(['stats', '--from', '2025-03-12', '--to', '2025-03-12', '--by', by, '-o', 'json'], { cwd });
  // Snapshots from 10:00 to 12:00 only: the rest of the day is unknown.
  expect(r.stderr).toBe('hourmeter: warning: no snapshot before 2025-03-12T10:00:00Z; no snapshot after 2025-03-12T12:00:00Z: 22 of 24 h are unknown, not zero\n');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

function expectRow(row: Row | undefined, want: { cpu: number; gpu: number; mem: number }, jobs: number, users: number): void {
  expect(row).toBeDefined();
  expect(row!.cpu_hours).toBeCloseTo(want.cpu, 9);
  expect(row!.gpu_hours).toBeCloseTo(want.gpu, 9);
  expect(row!.memory_gib_hours).toBeCloseTo(want.mem, 9);
  expect([row!.jobs, row!.users]).toEqual([jobs, users]);
}

describe('stats on Kubernetes snapshots', () => {
  it('--by user', () => {
    const j = stats('user');
    expect(j.rows.map((r) => r.user)).toEqual(['alice@example.org', 'foo', '(unattributed)']);
    expectRow(j.rows[0], alice, 1, 1);
    expectRow(j.rows[1], foo, 1, 1);
    // the unattributed row counts no user
    expectRow(j.rows[2], sum(llm, pre), 2, 0);
    expectRow(j.total, sum(alice, foo, llm, pre), 4, 2);
    // 3.0325 CPU-hours for foo, between 2.0325 and 4.0325
    expect(foo.cpu).toBe(3.0325);
    expect(j.bounds.low.rows[1]!.cpu_hours).toBeCloseTo(7317 / H, 9);
    expect(j.bounds.high.rows[1]!.cpu_hours).toBeCloseTo(14517 / H, 9);
    // The 11:00 estimate is the Kubernetes GC window of 0 at work (with Nomad's 1 h it would be 10:30).
    expect(j.diagnostics).toMatchObject({ snapshots: 2, open: 2, vanished: 1, failed_scopes: [] });
  });

  it('--by group', () => {
    const j = stats('group');
    expect(j.rows.map((r) => r.group)).toEqual(['phusers', '(unattributed)']);
    expectRow(j.rows[0], foo, 1, 1);
    // alice has no group: her usage joins the unattributed row, and she counts as its one user
    expectRow(j.rows[1], sum(alice, llm, pre), 3, 1);
    expectRow(j.total, sum(alice, foo, llm, pre), 4, 2);
  });
});
