/**
 * `hourmeter watch` against the fake Nomad, on a day of a ~2,000-allocation cluster with the
 * real history's churn (lognormal runs, median 4 h, σ 1.9; 7% fail at once):
 * - how many events a second one watcher journals when a day's changes arrive at once;
 * - journal bytes for the day;
 * - the error against the simulator's truth of the watcher alone, of 15-minute snapshots
 *   alone, and of both in one folder;
 * then `hourmeter watch --source kubernetes` against the fake Kubernetes API on a day of a
 * 300-user JupyterHub whose idle culler stops servers (jupyterHubLives): the error against
 * the truth of the watcher alone and of 5-minute snapshots (written in-process: 288 CLI runs
 * would take minutes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestCertificates } from '../fake/certs.js';
import { changeInstants, jupyterHubLives, podAt, podsAt, type PodLife } from '../fake/kubernetes-pods.js';
import { startFakeKubernetes, type FakeKubernetes } from '../fake/kubernetes-server.js';
import { startFakeNomad, type FakeNomad } from '../fake/nomad-server.js';
import { aggregate } from '../src/accounting/aggregate.js';
import { resolvePeriod } from '../src/accounting/period.js';
import type { Lifetime } from '../src/accounting/types.js';
import { computeTruth, createCluster } from '../src/simulator/index.js';
import { readJournals } from '../src/snapshots/journal.js';
import { observeNativeTuple } from '../src/snapshots/observe.js';
import { folderCaptures, writeSnapshotDocument } from '../src/snapshots/captures.js';
import { DEFAULT_CLIENT_OPTIONS } from '../src/sources/http.js';
import { captureKubernetes } from '../src/sources/kubernetes/capture.js';
import { KubernetesClient } from '../src/sources/kubernetes/client.js';
import { DEFAULT_ATTRIBUTION, mapPod } from '../src/sources/kubernetes/map.js';
import { parseInstant } from '../src/util/time.js';
import { BENCH, BIN, pad } from './harness.js';

const MIN = 60_000_000;
const DAY = 24 * 60 * MIN;

const cluster = () =>
  createCluster({
    // Two days, so that the truth of the first is not cut at the simulator's horizon.
    seed: 7, days: 2, intervalMinutes: 15, targetConcurrent: 2000, durationDistribution: 'lognormal',
    medianDurationMinutes: 240, durationSigma: 1.9, earlyFailFraction: 0.07,
  });

function startWatch(dir: string, nomad: FakeNomad): { child: ChildProcess; done: Promise<number> } {
  const child = spawn(process.execPath, [BIN, 'watch', '--quiet', '--snapshots', dir, '--heartbeat', '5s'], {
    env: { ...process.env, NOMAD_ADDR: nomad.url },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, done: new Promise((resolve) => child.on('close', (code) => resolve(code ?? -1))) };
}

/** Allocation lines and resync markers journaled so far, and the journal's bytes. */
function journaled(dir: string): { changes: number; resyncs: number; bytes: number } {
  let changes = 0;
  let resyncs = 0;
  let bytes = 0;
  for (const read of readJournals(dir)) {
    bytes += statSync(read.file).size;
    for (const e of read.entries) {
      if (e.line.type === 'allocation') changes++;
      else if (e.line.type === 'resynchronised') resyncs++;
    }
  }
  return { changes, resyncs, bytes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilResynced(dir: string): Promise<void> {
  for (let i = 0; i < 600 && journaled(dir).resyncs === 0; i++) await sleep(100);
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' }).on('close', (c) => resolve(c ?? -1)));
}

export async function watchBench(): Promise<void> {
  const root = join(BENCH, 'watch');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const c = cluster();
  const day = new Date(c.startUs / 1000).toISOString().slice(0, 10);
  console.log(`watch: a simulated day of ~2,000 allocations at once (real churn), fake Nomad on 127.0.0.1`);

  // 1. Throughput: the whole day's changes published at once; the watcher takes them as fast as it can.
  {
    const nomad = await startFakeNomad({ cluster: c, now: c.startUs, heartbeatMs: 1000 });
    const dir = join(root, 'burst');
    const w = startWatch(dir, nomad);
    await untilResynced(dir);
    const t0 = performance.now();
    nomad.setNow(c.startUs + DAY);
    let last = -1;
    let stableSince = performance.now();
    let doneAt = t0;
    // Until the journal stops growing for 3 s (flushed every second), at most 5 minutes.
    while (performance.now() - stableSince < 3000 && performance.now() - t0 < 300_000) {
      await sleep(100);
      const n = journaled(dir).changes;
      if (n !== last) {
        last = n;
        stableSince = performance.now();
        doneAt = stableSince;
      }
    }
    w.child.kill('SIGTERM');
    await w.done;
    await nomad.close();
    const seconds = (doneAt - t0) / 1000;
    console.log(`  ${pad('events journaled when a day arrives at once')}${last} allocation changes in ${seconds.toFixed(1)} s: ${(last / seconds).toFixed(0)} events/s (to the nearest 0.1 s of polling)`);
  }

  // 2. A day in 15-minute steps, the watcher beside cron's snapshots (each in its own folder).
  const nomad = await startFakeNomad({ cluster: c, now: c.startUs, heartbeatMs: 1000 });
  const watched = join(root, 'watched');
  const sampled = join(root, 'sampled');
  const both = join(root, 'both');
  mkdirSync(sampled, { recursive: true });
  const w = startWatch(watched, nomad);
  await untilResynced(watched);
  for (let t = c.startUs + 15 * MIN; t <= c.startUs + DAY; t += 15 * MIN) {
    nomad.setNow(t);
    await runCli(['snapshot', '--quiet', '--snapshots', sampled, '--now', new Date(t / 1000).toISOString()], { NOMAD_ADDR: nomad.url });
  }
  await sleep(2500);
  w.child.kill('SIGTERM');
  await w.done;
  await nomad.close();
  const j = journaled(watched);
  console.log(`  ${pad('journal for the day')}${(j.bytes / 1e6).toFixed(1)} MB, ${j.changes} allocation changes (${(j.bytes / Math.max(1, j.changes)).toFixed(0)} bytes a change)`);

  mkdirSync(both, { recursive: true });
  for (const from of [watched, sampled]) {
    for (const f of readdirSync(from, { recursive: true }) as string[]) {
      const src = join(from, f);
      if (statSync(src).isDirectory()) mkdirSync(join(both, f), { recursive: true });
      else copyFileSync(src, join(both, f));
    }
  }
  const truth = aggregate(computeTruth(c, { format: 'native' }).all, resolvePeriod(day, day, 'UTC'), []).total;
  for (const [label, dir] of [['watch alone', watched], ['15-minute snapshots alone', sampled], ['both in one folder', both]] as const) {
    const out = await new Promise<string>((resolve) => {
      let text = '';
      const p = spawn(process.execPath, [BIN, 'stats', '--no-index', '--snapshots', dir, '--from', day, '--to', day, '-o', 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
      p.stdout.on('data', (b: Buffer) => (text += b.toString()));
      p.on('close', () => resolve(text));
    });
    const r = JSON.parse(out) as { total: { cpu_hours: number; allocations: number }; bounds: { low: { total: { cpu_hours: number } }; high: { total: { cpu_hours: number } } } };
    const err = (x: number) => `${(((x - truth.cpu_hours) / truth.cpu_hours) * 100).toFixed(3)}%`;
    console.log(
      `  ${pad(`error against the truth, ${label}`)}CPU-hours ${err(r.total.cpu_hours)} (band ${err(r.bounds.low.total.cpu_hours)} to ${err(r.bounds.high.total.cpu_hours)}), ` +
        `${r.total.allocations} of ${truth.allocations} allocations`,
    );
  }
  await kubernetesBench(root);
  rmSync(root, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------
// Kubernetes: a day of a JupyterHub whose idle culler stops servers.

const K8S_TOKEN = 'bench-k8s-token';
const MS_MIN = 60_000;

interface Totals {
  cpu_hours: number;
  memory_gib_hours: number;
  allocations: number;
}

/**
 * The day's truth from `fromMs`: each pod that existed then or later and was bound by
 * `untilMs`, from PodScheduled to its container's end, cut at `untilMs`.
 */
function podTruth(lives: PodLife[], fromMs: number, untilMs: number): Lifetime[] {
  const out: Lifetime[] = [];
  for (const l of lives) {
    if ((l.deletedMs !== null && l.deletedMs <= fromMs) || l.scheduledMs > untilMs) continue;
    const a = mapPod(podAt(l, l.scheduledMs)!, DEFAULT_ATTRIBUTION);
    const r = a.resources;
    const seen = observeNativeTuple([a.id, a.namespace, a.job_id, a.job_name, a.user, a.group, a.component, a.node, a.status, a.start, a.end, a.modified, r.cpu_cores, r.cpu_mhz, r.memory_mib, r.disk_mib, r.gpu], 'kubernetes');
    if (!('obs' in seen)) throw new Error(`not an observation: ${a.id}`);
    const { key, status: _s, phase: _p, startUs: _a, endUs: _b, ...rest } = seen.obs;
    const endMs = Math.min(l.finishedMs ?? l.deletedMs ?? Infinity, untilMs);
    const endUs = endMs * 1000;
    out.push({ key, ...rest, startUs: l.scheduledMs * 1000, endUs, lowEndUs: endUs, highEndUs: endUs, endKind: endMs === untilMs ? 'open' : 'ended' });
  }
  return out;
}

async function statsOf(dir: string, day: string): Promise<{ total: Totals; bounds: { low: { total: Totals }; high: { total: Totals } } }> {
  const out = await new Promise<string>((resolve) => {
    let text = '';
    const p = spawn(process.execPath, [BIN, 'stats', '--no-index', '--snapshots', dir, '--from', day, '--to', day, '-o', 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    p.stdout.on('data', (b: Buffer) => (text += b.toString()));
    p.on('close', () => resolve(text));
  });
  return JSON.parse(out) as { total: Totals; bounds: { low: { total: Totals }; high: { total: Totals } } };
}

async function kubernetesBench(root: string): Promise<void> {
  const day = '2026-03-02';
  const T0 = Date.parse(`${day}T00:00:00Z`);
  const END = T0 + 24 * 60 * MS_MIN;
  // Servers from the evening before too, so that some run through midnight.
  const lives = jupyterHubLives({ seed: 'bench-jupyterhub', users: 300, fromMs: T0 - 12 * 60 * MS_MIN, toMs: END });
  console.log(`watch --source kubernetes: a day of a 300-user JupyterHub with the idle culler (${lives.length} servers; culled 60-70 min after the last activity), fake Kubernetes on 127.0.0.1`);
  const certs = await makeTestCertificates(join(root, 'certs'));
  const start = async (): Promise<FakeKubernetes> =>
    startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [K8S_TOKEN], pods: podsAt(lives, T0), now: T0, bookmarkMs: 1000 });

  // Watch alone: every change of the day played in order.
  const live = await start();
  const watched = join(root, 'k8s-watched');
  mkdirSync(watched, { recursive: true });
  const kubeconfig = join(root, 'kubeconfig');
  // JSON is YAML: the kubeconfig needs no YAML writer.
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'bench',
      clusters: [{ name: 'fake', cluster: { server: live.url, 'certificate-authority-data': Buffer.from(certs.caCert).toString('base64') } }],
      users: [{ name: 'bench', user: { token: K8S_TOKEN } }],
      contexts: [{ name: 'bench', context: { cluster: 'fake', user: 'bench' } }],
    }),
  );
  const child = spawn(process.execPath, [BIN, 'watch', '--source', 'kubernetes', '--kubeconfig', kubeconfig, '--quiet', '--snapshots', watched], { stdio: ['ignore', 'ignore', 'inherit'] });
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  await untilResynced(watched);
  let n = 0;
  for (const t of changeInstants(lives)) {
    if (t <= T0 || t > END) continue;
    live.setPods(podsAt(lives, t), t);
    if (++n % 5 === 0) await sleep(5);
  }
  live.setNow(END);
  // The watch delivers within the bookmark interval; journals are flushed every second.
  await sleep(3000);
  child.kill('SIGTERM');
  await done;
  await live.close();
  let followedToMs = -Infinity;
  for (const read of readJournals(watched)) {
    for (const e of read.entries) if (e.line.type === 'allocation' || e.line.type === 'alive') followedToMs = Math.max(followedToMs, parseInstant(e.line.at)! / 1000);
  }

  // 5-minute snapshots, captured in-process against a fake that shows the pods at each instant.
  const cron = await start();
  const sampled = join(root, 'k8s-sampled');
  mkdirSync(sampled, { recursive: true });
  const client = new KubernetesClient(
    { server: cron.url, origin: 'the bench', tls: { ca: certs.caCert, cert: null, key: null, serverName: null, skipVerify: false }, headers: { authorization: `Bearer ${K8S_TOKEN}` } },
    DEFAULT_CLIENT_OPTIONS,
  );
  let captures = 0;
  for (let t = T0; t <= END; t += 5 * MS_MIN) {
    cron.setPods(podsAt(lives, t), t);
    const { snapshot } = await captureKubernetes(client, {
      namespaces: null, excludeNamespaces: [], labelSelector: null, fieldSelector: null, limit: 500,
      attribution: DEFAULT_ATTRIBUTION, now: () => new Date(t), source: { kind: 'kubernetes', address: cron.url, region: null },
    });
    await writeSnapshotDocument(folderCaptures(sampled, () => {}), snapshot, { gzip: false });
    captures++;
  }
  await client.close(false);
  await cron.close();

  const period = resolvePeriod(day, day, 'UTC');
  const truthFor = (untilMs: number) => aggregate(podTruth(lives, T0, untilMs), period, []).total;
  const hours = (x: number) => x.toFixed(2);
  const error = (x: number, truth: number) => `${x - truth >= 0 ? '+' : ''}${hours(x - truth)} (${(((x - truth) / truth) * 100).toFixed(3)}%)`;
  const width = (low: number, high: number, truth: number) => `${hours(high - low)} (${(((high - low) / truth) * 100).toFixed(3)}%)`;
  // The watcher knows the day up to its last line (its clock runs on from the last time the
  // server showed); the snapshots up to their last capture.
  for (const [label, dir, untilMs] of [
    ['watch alone', watched, followedToMs],
    ['5-minute snapshots alone', sampled, END],
  ] as const) {
    const truth = truthFor(untilMs);
    const r = await statsOf(dir, day);
    console.log(`  ${pad(`error against the truth, ${label}`)}${r.total.allocations} of ${truth.allocations} pods, truth up to ${new Date(untilMs).toISOString().slice(0, 19)}Z${dir === sampled ? ` (${captures} captures)` : ''}`);
    for (const [unit, name] of [['cpu_hours', 'CPU-hours'], ['memory_gib_hours', 'memory GiB-hours']] as const) {
      const [low, high] = [r.bounds.low.total[unit], r.bounds.high.total[unit]];
      console.log(
        `  ${pad(`  ${name} (truth ${hours(truth[unit])})`)}estimate ${error(r.total[unit], truth[unit])}, ` +
          `band ${error(low, truth[unit])} to ${error(high, truth[unit])}, width ${width(low, high, truth[unit])}`,
      );
    }
  }
}
