import { describe, expect, it } from 'vitest';
import { changeInstants, CULL_EVERY_MS, CULL_TIMEOUT_MS, jupyterHubLives, podAt, podsAt, type PodLife } from '../../fake/kubernetes-pods.js';
import { aggregate } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { run, runAsync, tempDir } from '../helpers/cli.js';
import { journal, lastLineMs, playPods, podTruth, untilJournal, useFakeKubernetes } from '../helpers/watch.js';

/**
 * A JupyterHub whose idle culler stops servers 60 to 70 minutes after their last activity,
 * played on the fake Kubernetes API, captured two ways: `hourmeter watch --source
 * kubernetes` alone, and `hourmeter snapshot --source kubernetes` every 5 minutes. The
 * watcher sees each cull to the second; the snapshots only bracket it.
 */

const TOKEN = 'k8s-culling-token-7a8b9c';
const MIN = 60_000;
const T0 = Date.parse('2026-03-02T08:00:00Z');
const END = T0 + 3 * 60 * MIN;
const DAY = '2026-03-02';

// Thirty users over the morning: servers already running at 08:00, culled or stopped during
// the three hours followed, started again later.
const LIVES = jupyterHubLives({ seed: 'k8s-culling', users: 30, fromMs: T0 - 2 * 60 * MIN, toMs: END });

const { fake, kubeconfig, watch } = useFakeKubernetes({ token: TOKEN, now: T0 });

const until = untilJournal;
const play = playPods;
const truth = podTruth;

interface Totals {
  cpu_hours: number;
  memory_gib_hours: number;
}

interface StatsJson {
  total: Totals & Record<string, number>;
  bounds: { low: { total: Totals }; high: { total: Totals } };
}

function stats(cwd: string): StatsJson {
  const r = run(['stats', '--no-index', '--from', DAY, '--to', DAY, '-o', 'json'], { cwd });
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as StatsJson;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('a JupyterHub with the idle culler: watch against 5-minute snapshots', () => {
  it('watch alone gives the true hours to the second; 5-minute snapshots only a band around them', async () => {
    // The history has what the comparison needs: culls and user stops inside the window.
    const ended = LIVES.filter((l) => l.deletedMs! > T0 && l.deletedMs! <= END);
    const culled = ended.filter((l) => l.finishedMs! - l.scheduledMs > CULL_TIMEOUT_MS);
    expect(ended.length).toBeGreaterThanOrEqual(10);
    expect(culled.length).toBeGreaterThanOrEqual(5);
    expect(LIVES.filter((l) => l.createdMs > T0 && l.createdMs < END).length).toBeGreaterThanOrEqual(5);
    // Gracefully deleted: the container ends 1-2 s after the cull, the pod 1 s after that;
    // no 5-minute snapshot sees it ended.
    for (const l of LIVES) expect(l.deletedMs! - l.finishedMs!).toBe(1000);
    expect(ended.filter((l) => Math.floor(l.finishedMs! / (5 * MIN)) !== Math.floor(l.deletedMs! / (5 * MIN)))).toEqual([]);
    expect(CULL_EVERY_MS).toBe(10 * MIN);

    const watched = tempDir();
    const sampled = tempDir();
    const live = await fake(LIVES);
    const w = watch(watched, live, ['--duration', '15s']);
    await until(watched, 'resynchronised');

    // The snapshots against a second fake that shows the pods at each 5-minute instant;
    // meanwhile the first one plays every change to the watcher.
    const cron = await fake(LIVES);
    const config = kubeconfig(sampled, cron);
    const snapshots = (async () => {
      for (let t = T0; t <= END; t += 5 * MIN) {
        cron.setPods(podsAt(LIVES, t), t);
        const r = await runAsync(['snapshot', '--source', 'kubernetes', '--kubeconfig', config, '--now', iso(t), '-q'], { cwd: sampled });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
    })();
    await play(live, LIVES, T0, END);
    await snapshots;
    expect((await w.done).code).toBe(0);

    const lines = journal(watched);
    expect(lines.filter((l) => l.type === 'resynchronised')).toHaveLength(1);
    expect(lines.filter((l) => l.type === 'allocation' && l.event === 'DELETED')).toHaveLength(ended.length);
    // The watcher's clock is the last time the server showed (the last change), run on by its own.
    const followedTo = lastLineMs(lines);
    expect(followedTo).toBeGreaterThanOrEqual(Math.max(...changeInstants(LIVES).filter((t) => t <= END)));

    // Watch alone: every cull to the second, and nothing left unsure.
    const period = resolvePeriod(DAY, DAY, 'UTC');
    const watchedTruth = aggregate(truth(LIVES, T0, followedTo), period, []).total;
    const fromWatch = stats(watched);
    expect(fromWatch.total).toEqual(watchedTruth);
    expect(fromWatch.bounds.low.total).toEqual(watchedTruth);
    expect(fromWatch.bounds.high.total).toEqual(watchedTruth);

    // The snapshots' truth: from the first capture to the last.
    const exact = aggregate(truth(LIVES, T0, END), period, []).total;

    // 5-minute snapshots: each cull falls between two captures; the truth lies in the band,
    // the estimate misses it, by less than the band's width.
    const fromSnapshots = stats(sampled);
    for (const unit of ['cpu_hours', 'memory_gib_hours'] as const) {
      const { low, high } = { low: fromSnapshots.bounds.low.total[unit], high: fromSnapshots.bounds.high.total[unit] };
      const error = Math.abs(fromSnapshots.total[unit] - exact[unit]);
      expect(low).toBeLessThanOrEqual(exact[unit]);
      expect(high).toBeGreaterThanOrEqual(exact[unit]);
      expect(high - low).toBeGreaterThan(0);
      expect(error).toBeGreaterThan(0);
      expect(error).toBeLessThan(high - low);
    }
    // The band by hand: each pod ends somewhere between the last capture that saw it running
    // and the next one (the captures never see a graceful delete's ended container).
    const captures = (l: PodLife) => {
      const seen: number[] = [];
      for (let t = T0; t <= END; t += 5 * MIN) if (podAt(l, t)?.status?.phase === 'Running') seen.push(t);
      return seen;
    };
    const bandEnd = (side: 'low' | 'high') =>
      truth(LIVES, T0, END).flatMap((lt) => {
        const seen = captures(LIVES.find((l) => lt.key.endsWith(l.uid))!);
        if (seen.length === 0) return [];
        const last = seen.at(-1)!;
        const endMs = last === END ? END : side === 'low' ? last : last + 5 * MIN;
        return [{ ...lt, endUs: endMs * 1000, lowEndUs: endMs * 1000, highEndUs: endMs * 1000 }];
      });
    expect(fromSnapshots.bounds.low.total).toEqual(aggregate(bandEnd('low'), period, []).total);
    expect(fromSnapshots.bounds.high.total).toEqual(aggregate(bandEnd('high'), period, []).total);
    // The same pods, counted once each.
    expect(fromSnapshots.total.allocations).toBe(exact.allocations);
  }, 90_000);
});
