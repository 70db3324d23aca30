import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { changeInstants, podAt, podsAt, type PodLife } from '../../fake/kubernetes-pods.js';
import { startFakeKubernetes, type FakeKubernetes, type FakeKubernetesOptions } from '../../fake/kubernetes-server.js';
import { eventCountAt, eventIndexOf, nomadIndex } from '../../fake/nomad-model.js';
import type { FakeNomad } from '../../fake/nomad-server.js';
import type { Lifetime } from '../../src/accounting/types.js';
import type { NativeAllocation } from '../../src/snapshots/format.js';
import { readJournals, type JournalLine } from '../../src/snapshots/journal.js';
import { observeNativeTuple } from '../../src/snapshots/observe.js';
import { DEFAULT_ATTRIBUTION, mapPod } from '../../src/sources/kubernetes/map.js';
import { parseInstant } from '../../src/util/time.js';
import { BIN, tempDir, type RunResult } from './cli.js';
import { writeKubeconfig } from './k8s.js';

/**
 * What the tests of `hourmeter watch` share: the watcher as a process, its journal read
 * back, and, for Kubernetes, a simulated history of pods played on the fake API server with
 * the truth a watcher could know of it.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the CLI in `cwd` with a bare environment plus `env`; `done` settles when it exits. Kill it with `child`. */
export function startCli(cwd: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, TZ: 'UTC', LANG: 'C.UTF-8', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<RunResult>((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr })));
  return { child, done };
}

/** Every line of every journal in the folder's snapshots/, in order; a line that does not read fails the test. */
export function journal(cwd: string): JournalLine[] {
  const lines: JournalLine[] = [];
  for (const read of readJournals(join(cwd, 'snapshots'))) {
    expect(read.problems).toEqual([]);
    lines.push(...read.entries.map((e) => e.line));
  }
  return lines;
}

/** Waits (bounded, 20 s) until the journal holds `n` lines of a type. */
export async function untilJournal(cwd: string, type: JournalLine['type'], n = 1): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (existsSync(join(cwd, 'snapshots', 'journal')) && journal(cwd).filter((l) => l.type === type).length >= n) return;
    await sleep(50);
  }
  throw new Error(`no ${n} ${type} line(s) in the journal after 20 s`);
}

/**
 * Waits (bounded, 20 s) until the journal holds an `alive` line at `index` or past it. A
 * stream delivers in order, so by then every change up to `index` is journalled: the watcher
 * can be stopped without waiting out a fixed --duration.
 */
export async function untilAlive(cwd: string, index: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (existsSync(join(cwd, 'snapshots', 'journal')) && journal(cwd).some((l) => l.type === 'alive' && l.index >= index)) return;
    await sleep(50);
  }
  throw new Error(`no alive line at index ${index} or past it in the journal after 20 s`);
}

/** The raft index of the newest write the fake Nomad has published on its event stream. */
export function publishedIndex(nomad: FakeNomad): number {
  const ix = nomadIndex(nomad.cluster);
  const count = eventCountAt(ix, nomad.now);
  if (count === 0) throw new Error('the fake Nomad has published nothing yet');
  return eventIndexOf(ix, count - 1);
}

/** The time of the journal's last line that says the watch was complete (a change, a heartbeat or bookmark, a list). */
export function lastLineMs(lines: JournalLine[]): number {
  return Math.max(...lines.filter((l) => l.type === 'allocation' || l.type === 'alive' || l.type === 'resynchronised').map((l) => parseInstant(l.at)! / 1000));
}

/** Plays the history's changes in (fromMs, toMs] on the fake Kubernetes API, letting the watches deliver. */
export async function playPods(k8s: FakeKubernetes, lives: PodLife[], fromMs: number, toMs: number): Promise<void> {
  let n = 0;
  for (const t of changeInstants(lives)) {
    if (t <= fromMs || t > toMs) continue;
    k8s.setPods(podsAt(lives, t), t);
    if (++n % 5 === 0) await sleep(10);
  }
  k8s.setNow(toMs);
  await sleep(200);
}

/** A native record as a snapshot tuple, for its amounts and attribution. */
function observed(a: NativeAllocation) {
  const r = a.resources;
  const out = observeNativeTuple([a.id, a.namespace, a.job_id, a.job_name, a.user, a.group, a.component, a.node, a.status, a.start, a.end, a.modified, r.cpu_cores, r.cpu_mhz, r.memory_mib, r.disk_mib, r.gpu], 'kubernetes');
  if (!('obs' in out)) throw new Error(`not an observation: ${JSON.stringify(out)}`);
  return out.obs;
}

/**
 * A pod history's truth as a watcher could know it: every pod that existed at or after
 * `fromMs` (its first list) and was bound by `untilMs`, from PodScheduled to its container's
 * end, or to its delete when it was deleted running; those still running count up to `untilMs`.
 */
export function podTruth(lives: PodLife[], fromMs: number, untilMs: number): Lifetime[] {
  const out: Lifetime[] = [];
  for (const l of lives) {
    if ((l.deletedMs !== null && l.deletedMs <= fromMs) || l.scheduledMs > untilMs) continue;
    const { key, status: _s, phase: _p, startUs: _a, endUs: _b, ...rest } = observed(mapPod(podAt(l, l.scheduledMs)!, DEFAULT_ATTRIBUTION));
    const endMs = Math.min(l.finishedMs ?? l.deletedMs ?? Infinity, untilMs);
    const endUs = endMs * 1000;
    out.push({ key, ...rest, startUs: l.scheduledMs * 1000, endUs, lowEndUs: endUs, highEndUs: endUs, endKind: endMs === untilMs ? 'open' : 'ended' });
  }
  return out;
}

/**
 * For a test file of the Kubernetes watcher: fake API servers trusted by a test CA, started
 * with the history's pods at `now`, and the CLI pointed at them by a kubeconfig with `token`.
 * Servers and watchers are stopped after each test.
 */
export function useFakeKubernetes(defaults: { token: string; now: number }) {
  let certs: TestCertificates;
  const fakes: FakeKubernetes[] = [];
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    certs = await makeTestCertificates(tempDir());
  }, 60_000);
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await Promise.all(fakes.splice(0).map((f) => f.close()));
  });
  afterAll(async () => {
    await Promise.all(fakes.splice(0).map((f) => f.close()));
  });
  const kubeconfig = (cwd: string, k8s: FakeKubernetes, token = defaults.token): string =>
    writeKubeconfig(join(cwd, 'kubeconfig'), {
      current: 'test',
      clusters: [{ name: 'fake', server: k8s.url, certs }],
      users: [{ name: 'watcher', user: { token } }],
      contexts: [{ name: 'test', cluster: 'fake', user: 'watcher' }],
    });
  return {
    async fake(lives: PodLife[], options: Partial<FakeKubernetesOptions> = {}): Promise<FakeKubernetes> {
      const f = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [defaults.token], pods: podsAt(lives, defaults.now), now: defaults.now, bookmarkMs: 200, ...options });
      fakes.push(f);
      return f;
    },
    kubeconfig,
    /** Starts the watcher against `k8s`; `done` settles when it exits. */
    watch(cwd: string, k8s: FakeKubernetes, args: string[] = [], token = defaults.token): { child: ChildProcess; done: Promise<RunResult> } {
      const w = startCli(cwd, ['watch', '--source', 'kubernetes', '--kubeconfig', kubeconfig(cwd, k8s, token), '--max-backoff', '1s', ...args]);
      children.push(w.child);
      return w;
    },
    /** Stops `child` after the test, with the servers. */
    track(child: ChildProcess): void {
      children.push(child);
    },
  };
}
