/**
 * `hourmeter watch` against the fake Nomad, on a day of a ~2,000-allocation cluster with the
 * real history's churn (lognormal runs, median 4 h, σ 1.9; 7% fail at once):
 * - how many events a second one watcher journals when a day's changes arrive at once;
 * - journal bytes for the day;
 * - the error against the simulator's truth of the watcher alone, of 15-minute snapshots
 *   alone, and of both in one folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeNomad, type FakeNomad } from '../fake/nomad-server.js';
import { aggregate } from '../src/accounting/aggregate.js';
import { resolvePeriod } from '../src/accounting/period.js';
import { computeTruth, createCluster } from '../src/simulator/index.js';
import { readJournals } from '../src/snapshots/journal.js';
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
  rmSync(root, { recursive: true, force: true });
}
