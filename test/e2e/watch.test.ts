import { spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { aggregate } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import type { Lifetime } from '../../src/accounting/types.js';
import { computeTruth, createCluster } from '../../src/simulator/index.js';
import type { NativeAllocation } from '../../src/snapshots/format.js';
import type { JournalLine } from '../../src/snapshots/journal.js';
import { parseInstant } from '../../src/util/time.js';
import { run, startServe, tempDir, type RunResult } from '../helpers/cli.js';
import { journal, publishedIndex, sleep, startCli, untilAlive, untilJournal } from '../helpers/watch.js';

/**
 * `hourmeter watch` as a process, against the fake Nomad's event stream on 127.0.0.1: what
 * it journals, and how it lives through drops, refusals, SIGTERM and kill -9.
 */

const TOKEN = 'b0a710ad-watch-token-77e1';
const MIN = 60_000_000;
// Short runs, many restarts and reschedules: about 50 starts and 50 ends in six hours.
const cluster = createCluster({ seed: 31, days: 1, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 20, medianDurationMinutes: 30, restartFraction: 0.3, rescheduleFraction: 0.2 });
const T0 = cluster.startUs + 2 * 60 * MIN;

const fakes: FakeNomad[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(opts: { token?: string } = {}): Promise<FakeNomad> {
  const f = await startFakeNomad({ cluster, token: opts.token ?? TOKEN, now: T0, heartbeatMs: 200 });
  fakes.push(f);
  return f;
}

/** Starts the watcher; `done` settles when it exits. */
function watch(cwd: string, nomad: FakeNomad, args: string[] = [], token = TOKEN): { child: ChildProcess; done: Promise<RunResult> } {
  const w = startCli(cwd, ['watch', '--heartbeat', '1s', '--max-backoff', '1s', ...args], { NOMAD_ADDR: nomad.url, NOMAD_TOKEN: token });
  children.push(w.child);
  return w;
}

/** Runs another command in the folder while the watcher runs (the test process serves the fake's requests meanwhile). */
const runAsyncIn = (cwd: string, args: string[], env: Record<string, string>): Promise<RunResult> => startCli(cwd, args, env).done;

const until = untilJournal;

/** Moves the simulated clock forward in steps, letting the stream deliver. */
async function play(nomad: FakeNomad, fromUs: number, toUs: number, stepUs = 10 * MIN): Promise<void> {
  for (let t = fromUs + stepUs; t <= toUs; t += stepUs) {
    nomad.setNow(t);
    await sleep(15);
  }
}

/**
 * The simulator's truth as a watcher could know it: the allocations its first list showed
 * (a task restarted in place before it shows its latest start only) and every one it heard
 * of after, those still holding counted up to its last line (or `untilUs`, if later).
 */
function knowable(c: ReturnType<typeof createCluster>, cwd: string, untilUs = -Infinity): Lifetime[] {
  const lines = journal(cwd);
  const resync = lines.find((l) => l.type === 'resynchronised') as Extract<JournalLine, { type: 'resynchronised' }>;
  const listed = JSON.parse(readFileSync(join(cwd, 'snapshots', resync.snapshot), 'utf8')) as { allocations: NativeAllocation[] };
  const seen = new Set([...listed.allocations.map((a) => a.id), ...allocationLines(lines).map((l) => l.allocation.id)]);
  const listedStart = new Map(listed.allocations.filter((a) => a.start !== null).map((a) => [`nomad:${a.id}`, parseInstant(a.start)!]));
  const lastUs = Math.max(untilUs, ...lines.filter((l) => l.type === 'allocation' || l.type === 'alive' || l.type === 'resynchronised').map((l) => parseInstant(l.at)!));
  return computeTruth(c, { format: 'native' }).all
    .filter((l) => seen.has(l.key.slice('nomad:'.length)))
    .map((l) => {
      const endUs = Math.min(l.endUs, lastUs);
      return { ...l, startUs: Math.max(l.startUs, listedStart.get(l.key) ?? l.startUs), endUs, lowEndUs: endUs, highEndUs: endUs, endKind: l.endUs > lastUs ? 'open' : 'ended' };
    });
}

const allocationLines = (lines: JournalLine[]) => lines.filter((l): l is Extract<JournalLine, { type: 'allocation' }> => l.type === 'allocation');

describe('hourmeter watch', () => {
  it('a history captured by watch alone: stats gives the true hours of every allocation it saw, to the microsecond', async () => {
    // Runs of minutes, early failures, restarts in place, reschedules and lost nodes.
    const busy = createCluster({
      seed: 41, days: 1, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 20, medianDurationMinutes: 20,
      earlyFailFraction: 0.2, restartFraction: 0.3, rescheduleFraction: 0.2, disconnectsPerWeek: 60, reconnectProbability: 0.3,
    });
    const start = busy.startUs + 60 * MIN;
    const nomad = await startFakeNomad({ cluster: busy, token: TOKEN, now: start, heartbeatMs: 200 });
    fakes.push(nomad);
    const cwd = tempDir();
    const w = watch(cwd, nomad, ['--duration', '60s']);
    await until(cwd, 'resynchronised');
    await play(nomad, start, start + 12 * 60 * MIN, 5 * MIN);
    // Stopped once a heartbeat after the last change is journalled.
    await untilAlive(cwd, publishedIndex(nomad));
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);

    const truth = knowable(busy, cwd);
    expect(truth.filter((l) => l.endKind === 'ended').length).toBeGreaterThan(100);
    const day = new Date(start / 1000).toISOString().slice(0, 10);
    const expected = aggregate(truth, resolvePeriod(day, day, 'UTC'), ['namespace']);
    const r = run(['stats', '--no-index', '--from', day, '--to', day, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { rows: unknown[]; total: unknown; bounds: { low: { total: unknown }; high: { total: unknown } } };
    expect(report.rows).toEqual(expected.rows);
    expect(report.total).toEqual(expected.total);
    // Nothing vanished: no band.
    expect(report.bounds.low.total).toEqual(expected.total);
    expect(report.bounds.high.total).toEqual(expected.total);
    // The index reads the journal too: the same report, byte for byte.
    for (const by of [[], ['--by', 'namespace,user']]) {
      const args = ['stats', '--from', day, '--to', day, ...by, '-o', 'json'];
      const indexed = run(args, { cwd });
      expect(indexed.code).toBe(0);
      expect(indexed.stdout).toBe(run([...args, '--no-index'], { cwd }).stdout);
    }
  }, 90_000);

  it('across a disconnection that overflows the buffer: exact before it, the truth inside the band across it, and the gap shown', async () => {
    const busy = createCluster({ seed: 43, days: 2, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 20, medianDurationMinutes: 40 });
    const day1 = busy.startUs;
    const start = day1 + 60 * MIN;
    const nomad = await startFakeNomad({ cluster: busy, token: TOKEN, now: start, heartbeatMs: 200, eventBufferSize: 20 });
    fakes.push(nomad);
    const cwd = tempDir();
    const w = watch(cwd, nomad, ['--duration', '60s']);
    await until(cwd, 'resynchronised');
    // Followed through the first day, into the second.
    const cut = day1 + 27 * 60 * MIN;
    await play(nomad, start, cut, 5 * MIN);
    // The stream goes quiet; three hours pass on the cluster, far more than the buffer holds.
    nomad.silenceStreams();
    const back = cut + 3 * 60 * MIN;
    nomad.setNow(back);
    await until(cwd, 'resynchronised', 2);
    await play(nomad, back, back + 3 * 60 * MIN, 5 * MIN);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);

    const lines = journal(cwd);
    const resyncs = lines.filter((l): l is Extract<JournalLine, { type: 'resynchronised' }> => l.type === 'resynchronised');
    expect(resyncs.length).toBe(2);
    const seen = new Set(allocationLines(lines).map((l) => l.allocation.id));
    for (const r of resyncs) for (const a of (JSON.parse(readFileSync(join(cwd, 'snapshots', r.snapshot), 'utf8')) as { allocations: NativeAllocation[] }).allocations) seen.add(a.id);
    const lastUs = Math.max(...lines.filter((l) => l.type === 'allocation' || l.type === 'alive' || l.type === 'resynchronised').map((l) => parseInstant(l.at)!));
    const truth = computeTruth(busy, { format: 'native' }).all
      .filter((l) => seen.has(l.key.slice('nomad:'.length)))
      .map((l) => ({ ...l, endUs: Math.min(l.endUs, lastUs), lowEndUs: Math.min(l.endUs, lastUs), highEndUs: Math.min(l.endUs, lastUs) }));
    const stats = (day: string) => {
      const r = run(['stats', '--no-index', '--from', day, '--to', day, '--max-gap', '1h', '-o', 'json'], { cwd });
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as { total: Record<string, number>; bounds: { low: { total: Record<string, number> }; high: { total: Record<string, number> } }; coverage: { stretches: { start: string; end: string; kind: string }[]; warning: string | null } };
    };
    const dayOf = (us: number) => new Date(us / 1000).toISOString().slice(0, 10);
    // The first day was followed throughout: every figure exact (the band is closed).
    const first = stats(dayOf(day1));
    const exact = aggregate(truth, resolvePeriod(dayOf(day1), dayOf(day1), 'UTC'), []).total;
    expect(first.total.cpu_hours).toBe(exact.cpu_hours);
    expect(first.total.memory_gib_hours).toBe(exact.memory_gib_hours);
    expect(first.total.allocations).toBe(exact.allocations);
    expect(first.bounds.low.total.cpu_hours).toBe(exact.cpu_hours);
    expect(first.bounds.high.total.cpu_hours).toBe(exact.cpu_hours);
    // The second day: what ended unseen during the silence lies in the band around the truth.
    const second = stats(dayOf(back));
    const truth2 = aggregate(truth, resolvePeriod(dayOf(back), dayOf(back), 'UTC'), []).total;
    expect(second.bounds.low.total.cpu_hours).toBeLessThan(truth2.cpu_hours);
    expect(second.bounds.high.total.cpu_hours).toBeGreaterThan(truth2.cpu_hours);
    // And the gap is shown: watched, then the silence uncovered, then watched again.
    expect(second.coverage.stretches.map((s) => s.kind)).toEqual(['watched', 'uncovered', 'watched', 'uncovered']);
    expect(second.coverage.warning).toMatch(/^no snapshot between /);
    // The index gives the same report, stretches included.
    const viaIndex = run(['stats', '--from', dayOf(back), '--to', dayOf(back), '--max-gap', '1h', '-o', 'json'], { cwd });
    expect(JSON.parse(viaIndex.stdout)).toEqual(second);
  }, 120_000);

  it('watch and 15-minute snapshots on one folder: nothing counted twice, and as exact as the watcher alone', async () => {
    const busy = createCluster({ seed: 47, days: 1, intervalMinutes: 60, durationDistribution: 'lognormal', targetConcurrent: 15, medianDurationMinutes: 30, restartFraction: 0.2, rescheduleFraction: 0.1 });
    const start = busy.startUs + 60 * MIN;
    const nomad = await startFakeNomad({ cluster: busy, token: TOKEN, now: start, heartbeatMs: 200 });
    fakes.push(nomad);
    const cwd = tempDir();
    const w = watch(cwd, nomad, ['--duration', '120s']);
    await until(cwd, 'resynchronised');
    // Cron's snapshots every 15 minutes of the cluster's time, beside the watcher.
    const env = { NOMAD_ADDR: nomad.url, NOMAD_TOKEN: TOKEN };
    const cron: string[] = [];
    for (let t = start + 15 * MIN; t <= start + 8 * 60 * MIN; t += 15 * MIN) {
      await play(nomad, t - 15 * MIN, t, 5 * MIN);
      const iso = new Date(t / 1000).toISOString();
      const r = await runAsyncIn(cwd, ['snapshot', '--quiet', '--now', iso], env);
      expect(r.code).toBe(0);
      cron.push(`${iso.slice(0, 19)}Z.json`);
    }
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);

    // Allocations still holding count up to the latest line or snapshot.
    const truth = knowable(busy, cwd, parseInstant(cron.at(-1)!.replace('.json', ''))!);
    const day = new Date(start / 1000).toISOString().slice(0, 10);
    const expected = aggregate(truth, resolvePeriod(day, day, 'UTC'), ['namespace']);
    const report = (folder: string) => {
      const r = run(['stats', '--no-index', '--snapshots', folder, '--from', day, '--to', day, '-o', 'json'], { cwd });
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as { rows: unknown[]; total: Record<string, number>; bounds: { low: { total: Record<string, number> }; high: { total: Record<string, number> } } };
    };
    // Both together: the watcher's exact figures, each allocation once.
    const both = report(join(cwd, 'snapshots'));
    expect(both.rows).toEqual(expected.rows);
    expect(both.total).toEqual(expected.total);
    expect(both.bounds.low.total).toEqual(expected.total);
    // The snapshots alone only bound what ended between them.
    const alone = join(cwd, 'cron-only');
    mkdirSync(alone);
    for (const f of cron) copyFileSync(join(cwd, 'snapshots', f), join(alone, f));
    const sampled = report(alone);
    // Alone, the snapshots miss what started and ended between two of them (and the watcher's first quarter hour).
    expect([sampled.total.allocations, sampled.total.cpu_hours! < expected.total.cpu_hours]).toEqual([55, true]);
    expect(expected.total.allocations).toBe(57);
  }, 180_000);

  it('lists the cluster as a snapshot, then journals every change after its index with the times the payloads give', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const w = watch(cwd, nomad, ['--duration', '60s']);
    await until(cwd, 'resynchronised');
    const T1 = T0 + 6 * 60 * MIN;
    await play(nomad, T0, T1);
    await untilAlive(cwd, publishedIndex(nomad));
    w.child.kill('SIGTERM');
    const r = await w.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);

    const lines = journal(cwd);
    expect(lines.map((l) => l.type).slice(0, 3)).toEqual(['journal', 'connected', 'resynchronised']);
    const resync = lines[2] as Extract<JournalLine, { type: 'resynchronised' }>;
    expect(readdirSync(join(cwd, 'snapshots'))).toContain(resync.snapshot);
    expect(lines[lines.length - 1]).toMatchObject({ type: 'disconnected', reason: 'stopped' });

    const changes = allocationLines(lines);
    expect(changes.every((l) => l.index > resync.index)).toBe(true);
    // Every allocation that started or ended in the window, with its start and end to the µs.
    const inWindow = (us: number | null) => us !== null && us > T0 && us <= T1;
    const started = cluster.allocations.filter((a) => inWindow(a.startUs));
    const ended = cluster.allocations.filter((a) => a.finalStatus !== 'lost' && inWindow(a.terminalUs) && a.endUs !== null);
    expect([started.length, ended.length]).toEqual([47, 52]);
    const byId = new Map<string, NativeAllocation[]>();
    for (const l of changes) byId.set(l.allocation.id, [...(byId.get(l.allocation.id) ?? []), l.allocation]);
    for (const a of started) expect(byId.get(a.id)?.some((rec) => rec.start !== null && parseInstant(rec.start) === a.startUs)).toBe(true);
    for (const a of ended) {
      const last = byId.get(a.id)!.at(-1)!;
      expect([last.status, last.end === null ? null : parseInstant(last.end)]).toEqual([a.finalStatus, a.endUs]);
    }
    // A line's time is its payload's ModifyTime: the end of an ended allocation's last line.
    for (const a of ended) {
      const last = changes.filter((l) => l.allocation.id === a.id).at(-1)!;
      expect(parseInstant(last.at)).toBe(a.terminalUs);
    }
    expect(r.stdout).toBe(`watched ${nomad.url}: ${changes.length} allocation changes, 1 lists, 0 drops\n`);
  }, 60_000);

  it('after a server restart, a network cut or a silent stream, lists again and takes the stream from the new list', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const w = watch(cwd, nomad, ['--duration', '20s']);
    await until(cwd, 'resynchronised');
    await play(nomad, T0, T0 + 60 * MIN);
    nomad.restart();
    await until(cwd, 'resynchronised', 2);
    nomad.dropStreams();
    await until(cwd, 'resynchronised', 3);
    nomad.silenceStreams();
    await until(cwd, 'resynchronised', 4);
    w.child.kill('SIGTERM');
    const r = await w.done;
    expect(r.code).toBe(0);
    const lines = journal(cwd).filter((l) => l.type !== 'allocation' && l.type !== 'alive');
    expect(lines.map((l) => l.type)).toEqual([
      'journal', 'connected', 'resynchronised', 'disconnected', 'connected', 'resynchronised', 'disconnected',
      'connected', 'resynchronised', 'disconnected', 'connected', 'resynchronised', 'disconnected',
    ]);
    const reasons = lines.filter((l): l is Extract<JournalLine, { type: 'disconnected' }> => l.type === 'disconnected').map((l) => l.reason);
    expect(reasons[2]).toBe('no heartbeat for 2 s');
    expect(reasons[3]).toBe('stopped');
    // Four lists, four snapshots.
    const snapshots = readdirSync(join(cwd, 'snapshots')).filter((f) => f.endsWith('.json'));
    expect(snapshots.length).toBe(4);
    expect(r.stderr.match(/stream dropped/g)?.length).toBe(3);

    // serve's /metrics counts what the journal says: 4 streams, 4 lists, 3 gaps (the stop is none).
    const events = allocationLines(journal(cwd)).length;
    const server = await startServe(cwd, []);
    children.push(server.child);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const source = `nomad-127.0.0.1-${new URL(nomad.url).port}`;
    expect(text.split('\n').filter((l) => l.startsWith('hourmeter_watch_') && !l.startsWith('hourmeter_watch_last'))).toEqual([
      `hourmeter_watch_events_total{source="${source}"} ${events}`,
      `hourmeter_watch_connections_total{source="${source}"} 4`,
      `hourmeter_watch_resyncs_total{source="${source}"} 4`,
      `hourmeter_watch_gaps_total{source="${source}"} 3`,
    ]);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // promtool is installed by .ci/run; optional on a workstation.
    if (!promtool.error || process.env.CI) {
      expect(promtool.error).toBeUndefined();
      expect(promtool.stdout + promtool.stderr).toBe('');
    }
  }, 60_000);

  it('one watcher per cluster: a second one waits --lock-wait for the first, then exits 3 naming it', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const first = watch(cwd, nomad, ['--duration', '20s']);
    await until(cwd, 'resynchronised');
    const second = await watch(cwd, nomad, ['--lock-wait', '1s']).done;
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(new RegExp(`^hourmeter: .*journal/nomad-127\\.0\\.0\\.1-${new URL(nomad.url).port}.*pid ${first.child.pid}`));
    first.child.kill('SIGTERM');
    expect((await first.done).code).toBe(0);
  }, 60_000);

  it('--namespace narrows the journal as it narrows the list', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const w = watch(cwd, nomad, ['--duration', '5s', '--namespace', 'imagine']);
    await until(cwd, 'resynchronised');
    await play(nomad, T0, T0 + 4 * 60 * MIN);
    expect((await w.done).code).toBe(0);
    const lines = journal(cwd);
    expect(lines.find((l) => l.type === 'resynchronised')).toMatchObject({ namespaces: ['imagine'] });
    const namespaces = new Set(allocationLines(lines).map((l) => l.allocation.namespace));
    expect([...namespaces]).toEqual(['imagine']);
  }, 60_000);

  it('a refused token ends it at once, exit 3, without spinning', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const r = await watch(cwd, nomad, ['--duration', '20s'], 'not-the-token').done;
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^hourmeter: the Nomad server at http:\/\/127\.0\.0\.1:\d+ refused the credentials; the ACL token .* was refused/);
    expect(r.stderr).not.toContain('not-the-token');
    expect(nomad.requests.filter((q) => q.path === '/v1/event/stream').length).toBe(1);
  }, 30_000);

  it('killed with -9 again and again, its journal always reads back and each start lists again', async () => {
    const cwd = tempDir();
    const nomad = await fake();
    const rounds = 20;
    let t = T0;
    for (let i = 0; i < rounds; i++) {
      const w = watch(cwd, nomad);
      await until(cwd, 'resynchronised', i + 1);
      await play(nomad, t, t + 20 * MIN, 5 * MIN);
      t += 20 * MIN;
      w.child.kill('SIGKILL');
      await w.done;
    }
    const lines = journal(cwd);
    expect(lines.filter((l) => l.type === 'resynchronised').length).toBe(rounds);
    expect(lines.filter((l) => l.type === 'journal').length).toBeGreaterThanOrEqual(rounds);
  }, 120_000);
});
