import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changeInstants, podsAt, simulatedPodLives } from '../../fake/kubernetes-pods.js';
import { aggregate } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import type { NativeAllocation } from '../../src/snapshots/format.js';
import type { JournalLine } from '../../src/snapshots/journal.js';
import { parseInstant } from '../../src/util/time.js';
import { run, startServe, tempDir } from '../helpers/cli.js';
import { journal, lastLineMs, playPods, podTruth, untilAlive, untilJournal, useFakeKubernetes } from '../helpers/watch.js';

/**
 * `hourmeter watch --source kubernetes` as a process, against the fake Kubernetes API server
 * on 127.0.0.1 playing a simulated history of pods: what it journals, and what reports make
 * of it, through expired resourceVersions, stalls and kill -9.
 */

const TOKEN = 'k8s-watch-token-5e6f7a';
const MIN = 60_000;
const T0 = Date.parse('2026-03-02T08:00:00Z');
const DAY = '2026-03-02';

const { fake, watch, track } = useFakeKubernetes({ token: TOKEN, now: T0 });

const until = untilJournal;
const play = playPods;
const truth = podTruth;

interface StatsJson {
  rows: unknown[];
  total: Record<string, number>;
  bounds: { low: { total: Record<string, number> }; high: { total: Record<string, number> } };
  coverage: { stretches: { start: string; end: string; kind: string }[]; warning: string | null };
}

function stats(cwd: string, extra: string[] = []): StatsJson {
  const r = run(['stats', '--no-index', '--from', DAY, '--to', DAY, '-o', 'json', ...extra], { cwd });
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as StatsJson;
}

// Four hours of JupyterHub servers and batch pods: some live seconds, some complete (and are
// deleted later, or kept), some are deleted while running, some still run at the end.
const LIVES = simulatedPodLives({ seed: 'k8s-watch', count: 120, fromMs: T0 - 30 * MIN, toMs: T0 + 4 * 60 * MIN });
const END = T0 + 4 * 60 * MIN;

describe('hourmeter watch --source kubernetes', () => {
  it('a history captured by watch alone: stats gives the true hours of every pod, to the second', async () => {
    const short = LIVES.filter((l) => l.finishedMs !== null && l.finishedMs - l.scheduledMs < 60_000 && l.scheduledMs > T0);
    const deletedRunning = LIVES.filter((l) => l.finishedMs === null && l.deletedMs !== null && l.deletedMs > T0);
    const completed = LIVES.filter((l) => l.finishedMs !== null && l.finishedMs > T0);
    expect(short.length).toBeGreaterThan(3);
    expect(deletedRunning.length).toBeGreaterThan(20);
    expect(completed.length).toBeGreaterThan(20);

    const k8s = await fake(LIVES);
    const cwd = tempDir();
    const w = watch(cwd, k8s, ['--duration', '60s']);
    await until(cwd, 'resynchronised');
    await play(k8s, LIVES, T0, END);
    // Stopped once a bookmark at the last change's resourceVersion is journalled.
    await untilAlive(cwd, k8s.resourceVersion);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);

    const lines = journal(cwd);
    // One list, and nothing lost after it.
    expect(lines.filter((l) => l.type === 'resynchronised')).toHaveLength(1);
    expect(lines.filter((l) => l.type === 'disconnected').map((l) => (l as { reason: string }).reason)).toEqual(['stopped']);
    const deletes = lines.filter((l): l is Extract<JournalLine, { type: 'allocation' }> => l.type === 'allocation' && l.event === 'DELETED');
    expect(deletes.length).toBe(LIVES.filter((l) => l.deletedMs !== null && l.deletedMs > T0 && l.deletedMs <= END).length);

    const expected = aggregate(truth(LIVES, T0, lastLineMs(lines)), resolvePeriod(DAY, DAY, 'UTC'), ['namespace']);
    const report = stats(cwd);
    expect(report.rows).toEqual(expected.rows);
    expect(report.total).toEqual(expected.total);
    // Nothing vanished unseen: the band is closed.
    expect(report.bounds.low.total).toEqual(expected.total);
    expect(report.bounds.high.total).toEqual(expected.total);
    // Coverage: followed from the list to the last line; only the rest of the day is unknown.
    expect(report.coverage.stretches.filter((c) => c.kind === 'watched').map((c) => [parseInstant(c.start)! / 1000, parseInstant(c.end)! / 1000])).toEqual([[parseInstant(lines.find((l) => l.type === 'resynchronised')!.at)! / 1000, lastLineMs(lines)]]);
    // The index reads the journal too: the same report, byte for byte.
    const args = ['stats', '--from', DAY, '--to', DAY, '--by', 'namespace,user', '-o', 'json'];
    expect(run(args, { cwd }).stdout).toBe(run([...args, '--no-index'], { cwd }).stdout);
  }, 90_000);

  // Two days: the watcher follows the first, loses its resourceVersion in the second.
  const D1 = Date.parse('2026-03-02T20:00:00Z');
  const CUT = Date.parse('2026-03-03T01:00:00Z');
  const BACK = Date.parse('2026-03-03T03:00:00Z');
  const D2_END = Date.parse('2026-03-03T05:00:00Z');
  const GAP_LIVES = simulatedPodLives({ seed: 'k8s-gap', count: 160, fromMs: D1 - 30 * MIN, toMs: D2_END });

  for (const as of ['status', 'event'] as const) {
    it(`an expired resourceVersion on reconnect (410 as ${as === 'status' ? 'an HTTP status' : 'an ERROR event in a 200 stream'}): exact outside the gap, the truth inside the band, the gap shown`, async () => {
      const k8s = await fake(GAP_LIVES, { now: D1, pods: podsAt(GAP_LIVES, D1), keepRevisions: 5, expiredAs: as });
      const cwd = tempDir();
      const w = watch(cwd, k8s, ['--duration', '60s']);
      await until(cwd, 'resynchronised');
      await play(k8s, GAP_LIVES, D1, CUT);
      // The network is cut; meanwhile the cluster moves on by far more revisions than the
      // server keeps, so the watch cannot go on from where it was.
      k8s.dropWatches();
      for (const t of changeInstants(GAP_LIVES)) if (t > CUT && t <= BACK) k8s.setPods(podsAt(GAP_LIVES, t), t);
      k8s.setNow(BACK);
      await until(cwd, 'resynchronised', 2);
      await play(k8s, GAP_LIVES, BACK, D2_END);
      w.child.kill('SIGTERM');
      expect((await w.done).code).toBe(0);

      const lines = journal(cwd);
      const reasons = lines.filter((l): l is Extract<JournalLine, { type: 'disconnected' }> => l.type === 'disconnected').map((l) => l.reason);
      expect(reasons).toEqual([
        as === 'status' ? expect.stringMatching(/^resourceVersion \d+ has expired \(HTTP 410 Gone\)$/) : expect.stringMatching(/^resourceVersion \d+ has expired \(an ERROR event with code 410: too old resource version/),
        'stopped',
      ]);
      // What the watcher could know: pods in its lines or in one of its two lists.
      const seen = new Set<string>();
      for (const l of lines) {
        if (l.type === 'allocation') seen.add(l.allocation.id);
        if (l.type === 'resynchronised') for (const a of (JSON.parse(readFileSync(join(cwd, 'snapshots', l.snapshot), 'utf8')) as { allocations: NativeAllocation[] }).allocations) seen.add(a.id);
      }
      const known = truth(GAP_LIVES.filter((l) => seen.has(l.uid)), D1, lastLineMs(lines));
      expect(GAP_LIVES.filter((l) => !seen.has(l.uid) && l.createdMs > CUT && l.deletedMs !== null && l.deletedMs < BACK).length).toBeGreaterThan(0);
      const day = (d: string) => {
        const r = run(['stats', '--no-index', '--from', d, '--to', d, '--max-gap', '1h', '-o', 'json'], { cwd });
        expect(r.code).toBe(0);
        return JSON.parse(r.stdout) as StatsJson;
      };
      // The first day was followed throughout: exact, the band closed.
      const first = day('2026-03-02');
      const exact = aggregate(known, resolvePeriod('2026-03-02', '2026-03-02', 'UTC'), ['namespace']);
      expect(first.rows).toEqual(exact.rows);
      expect(first.bounds.low.total).toEqual(exact.total);
      expect(first.bounds.high.total).toEqual(exact.total);
      // The second: the pods deleted unseen in the gap end inside the band, around the truth.
      const second = day('2026-03-03');
      const truth2 = aggregate(known, resolvePeriod('2026-03-03', '2026-03-03', 'UTC'), []).total;
      for (const k of ['cpu_hours', 'memory_gib_hours'] as const) {
        expect(second.bounds.low.total[k]).toBeLessThan(truth2[k]!);
        expect(second.bounds.high.total[k]).toBeGreaterThan(truth2[k]!);
      }
      // And the gap is shown: watched, then the lost stretch uncovered, then watched again.
      expect(second.coverage.stretches.map((c) => c.kind)).toEqual(['watched', 'uncovered', 'watched', 'uncovered']);
      const [, gap] = second.coverage.stretches;
      expect(parseInstant(gap!.start)! / 1000).toBeGreaterThanOrEqual(CUT - 60_000);
      expect(parseInstant(gap!.end)! / 1000).toBe(parseInstant(lines.filter((l) => l.type === 'resynchronised')[1]!.at)! / 1000);
      // The index gives the same report.
      expect(JSON.parse(run(['stats', '--from', '2026-03-03', '--to', '2026-03-03', '--max-gap', '1h', '-o', 'json'], { cwd }).stdout)).toEqual(second);

      // serve's /metrics and check read this journal as they read a Nomad watcher's: two lists,
      // one gap (the stop is none); watches opened: the first, the one after the list again,
      // and with the ERROR event the reopened watch that carried it.
      const source = `kubernetes-127.0.0.1-${k8s.port}`;
      const server = await startServe(cwd, []);
      track(server.child);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const changes = lines.filter((l) => l.type === 'allocation').length;
      expect(text.split('\n').filter((l) => l.startsWith('hourmeter_watch_') && !l.startsWith('hourmeter_watch_last'))).toEqual([
        `hourmeter_watch_events_total{source="${source}"} ${changes}`,
        `hourmeter_watch_connections_total{source="${source}"} ${as === 'status' ? 2 : 3}`,
        `hourmeter_watch_resyncs_total{source="${source}"} 2`,
        `hourmeter_watch_gaps_total{source="${source}"} 1`,
      ]);
      const lastMs = Math.max(...lines.map((l) => parseInstant(l.at)! / 1000).filter((ms) => ms < D2_END + 60 * MIN));
      const at = (ms: number) => new Date(ms).toISOString();
      expect(run(['check', '--now', at(lastMs + 4 * MIN)], { cwd }).stdout).toMatch(new RegExp(`watcher ${source.replace(/\./g, '\\.')} heard 4m ago, disconnected\n$`));
      const silent = run(['check', '--now', at(lastMs + 6 * MIN)], { cwd });
      expect([silent.code, silent.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^hourmeter: check failed: watcher ${source.replace(/\./g, '\\.')} silent for 6m since `))]);
    }, 120_000);
  }

  it('a stalled watch is opened again from its resourceVersion once the limit passes, without a list and without losing a change', async () => {
    // The server keeps every revision: going on from the last one seen is always possible.
    const k8s = await fake(LIVES, { keepRevisions: 10_000 });
    const cwd = tempDir();
    const w = watch(cwd, k8s, ['--duration', '30s', '--stall', '2s']);
    await until(cwd, 'resynchronised');
    const MID = T0 + 2 * 60 * MIN;
    await play(k8s, LIVES, T0, MID);
    await until(cwd, 'alive', 1);
    // Connected, but nothing more arrives: no events, no bookmarks.
    expect(k8s.stallWatches()).toBe(1);
    // Changes made while it stalls reach it after the restart, from the resourceVersion it had.
    for (const t of changeInstants(LIVES)) if (t > MID && t <= MID + 30 * MIN) k8s.setPods(podsAt(LIVES, t), t);
    await until(cwd, 'connected', 2);
    await play(k8s, LIVES, MID + 30 * MIN, END);
    w.child.kill('SIGTERM');
    const r = await w.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^hourmeter: warning: watch: the watch of all pods stalled: no event or bookmark for 2 s; watching again from resourceVersion \d+$/m);

    const lines = journal(cwd);
    expect(lines.filter((l) => l.type === 'resynchronised')).toHaveLength(1);
    expect(lines.filter((l) => l.type === 'disconnected').map((l) => (l as { reason: string }).reason)).toEqual(['stopped']);
    // The second watch went on from the last version the first one saw.
    const watches = k8s.requests.filter((q) => q.query.watch === '1');
    expect(watches).toHaveLength(2);
    const second = lines.map((l) => l.type).lastIndexOf('connected');
    const before = lines.slice(0, second).filter((l) => l.type === 'alive' || l.type === 'allocation');
    expect(watches[1]!.query.resourceVersion).toBe(String((before.at(-1) as { index: number }).index));
    // Nothing was lost: still exact.
    const expected = aggregate(truth(LIVES, T0, lastLineMs(lines)), resolvePeriod(DAY, DAY, 'UTC'), ['namespace']);
    const report = stats(cwd);
    expect(report.rows).toEqual(expected.rows);
    expect(report.bounds.low.total).toEqual(expected.total);
    expect(report.bounds.high.total).toEqual(expected.total);
  }, 90_000);

  it('killed with -9 again and again, its journal always reads back and each start lists again', async () => {
    const k8s = await fake(LIVES);
    const cwd = tempDir();
    const rounds = 20;
    const step = (END - T0) / rounds;
    for (let i = 0; i < rounds; i++) {
      const w = watch(cwd, k8s);
      await until(cwd, 'resynchronised', i + 1);
      await play(k8s, LIVES, T0 + i * step, T0 + (i + 1) * step);
      w.child.kill('SIGKILL');
      await w.done;
    }
    const lines = journal(cwd);
    expect(lines.filter((l) => l.type === 'resynchronised').length).toBe(rounds);
    expect(lines.filter((l) => l.type === 'journal').length).toBeGreaterThanOrEqual(rounds);
    // Every list is a snapshot file that reads, and a report over them all runs clean.
    const report = run(['stats', '--no-index', '--from', DAY, '--to', DAY, '-o', 'json'], { cwd });
    expect(report.code).toBe(0);
    expect((JSON.parse(report.stdout) as { skipped?: unknown[] }).skipped ?? []).toEqual([]);
  }, 180_000);

  it('refused credentials end it at once with exit 3, naming the RBAC it needs and never the token', async () => {
    const k8s = await fake(LIVES);
    const cwd = tempDir();
    const r = await watch(cwd, k8s, ['--duration', '20s'], 'not-the-token').done;
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^hourmeter: the credentials of .* were refused: the user needs the RBAC verbs get, list and watch on pods/);
    expect(r.stderr).not.toContain('not-the-token');
    expect(k8s.requests.filter((q) => q.query.watch === '1')).toHaveLength(0);
  }, 30_000);

  it('with --namespace, one watch per namespace, each from its own list, and the others left out', async () => {
    const k8s = await fake(LIVES);
    const cwd = tempDir();
    const w = watch(cwd, k8s, ['--duration', '60s', '--namespace', 'jhub']);
    await until(cwd, 'resynchronised');
    await play(k8s, LIVES, T0, T0 + 60 * MIN);
    await untilAlive(cwd, k8s.resourceVersion);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);
    const watches = k8s.requests.filter((q) => q.query.watch === '1');
    expect(watches.map((q) => q.path)).toEqual(['/api/v1/namespaces/jhub/pods']);
    expect(watches[0]!.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: '120' });
    const lines = journal(cwd);
    const changed = new Set(lines.flatMap((l) => (l.type === 'allocation' ? [l.allocation.namespace] : [])));
    expect([...changed]).toEqual(['jhub']);
    expect(lines.find((l) => l.type === 'resynchronised')).toMatchObject({ namespaces: ['jhub'] });
  }, 30_000);
});
