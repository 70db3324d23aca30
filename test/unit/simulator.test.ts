import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clusterStateAt,
  computeTruth,
  createCluster,
  createSerializer,
  gcWindowUs,
  latestPerJob,
  pyDumps,
  renderLegacy,
  renderNative,
  rfc3339Nano,
  snapshotFileName,
  snapshotTimes,
  StateCursor,
  trueInterval,
  writeHistory,
  type Cluster,
  type SimAlloc,
} from '../../src/simulator/index.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/ai4os/snapshots');
const MIN = 60_000_000;

/** RFC 3339 -> µs, truncating nanoseconds (what hourmeter's readers do). */
function us(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!m) throw new Error(`not RFC 3339: ${text}`);
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 6);
  return Date.parse(`${m[1]}Z`) * 1000 + Number(frac);
}

function allSerialized(cluster: Cluster, format: 'native' | 'legacy'): string[] {
  const cursor = new StateCursor(cluster, gcWindowUs(cluster, { format }));
  const ser = createSerializer(format, cluster);
  return snapshotTimes(cluster).map((s) => ser.serialize(cursor.at(s.timeUs)));
}

const temps: string[] = [];
afterEach(async () => {
  while (temps.length > 0) await rm(temps.pop() as string, { recursive: true, force: true });
});

describe('determinism', () => {
  it('same seed gives identical snapshots, another seed does not', () => {
    const opts = { seed: 11, days: 3, targetConcurrent: 40 };
    const a = allSerialized(createCluster(opts), 'native');
    const b = allSerialized(createCluster(opts), 'native');
    const c = allSerialized(createCluster({ ...opts, seed: 12 }), 'native');
    expect(a).toHaveLength(12);
    expect(b).toEqual(a);
    expect(c).toHaveLength(12);
    expect(c[0]).not.toEqual(a[0]);
    expect(allSerialized(createCluster(opts), 'legacy')).toEqual(allSerialized(createCluster(opts), 'legacy'));
  });

  it('schedules snapshots every interval with 0-120 s of jitter', () => {
    const cluster = createCluster({ seed: 1, days: 2, start: '2024-09-01T00:00:00Z' });
    const times = snapshotTimes(cluster);
    expect(times).toHaveLength(8);
    times.forEach((s, k) => {
      expect(s.scheduledUs).toBe(Date.parse('2024-09-01T00:00:00Z') * 1000 + k * 360 * MIN);
      expect(s.timeUs - s.scheduledUs).toBeGreaterThanOrEqual(0);
      expect(s.timeUs - s.scheduledUs).toBeLessThanOrEqual(120_000_000);
      expect(s.timeUs % 1_000_000).toBe(0);
    });
    expect(cluster.horizonUs).toBe(times[7]?.timeUs);
  });
});

describe('native snapshots', () => {
  const cluster = createCluster({ seed: 4, days: 5, targetConcurrent: 80, restartFraction: 0 });
  const truth = computeTruth(cluster, { format: 'native' });
  const byKey = new Map(truth.all.map((l) => [l.key, l]));

  it('lists a running allocation with the start and resources of its truth', () => {
    const t = snapshotTimes(cluster)[6]?.timeUs ?? 0;
    const snap = renderNative(cluster, clusterStateAt(cluster, t));
    expect(snap.format).toBe('hourmeter.snapshot');
    expect(snap.scope).toEqual({ requested: ['*'], namespaces: ['ai4eosc', 'imagine', 'ai4life'], failed: [] });
    expect(snap.source).toEqual({ kind: 'simulator', address: null, region: 'global' });
    const running = snap.allocations.filter((a) => a.status === 'running');
    expect(running.length).toBeGreaterThan(40);
    for (const rec of running) {
      const life = byKey.get(`nomad:${rec.id}`);
      expect(life).toBeDefined();
      if (!life || rec.start === null) throw new Error('missing');
      expect(us(rec.start)).toBe(life.startUs);
      expect(life.startUs).toBeLessThanOrEqual(t);
      expect(life.endUs).toBeGreaterThan(t);
      expect(rec.end).toBeNull();
      expect(life.amounts).toEqual({
        cpuMilli: rec.resources.cpu_cores * 1000,
        cpuMhz: rec.resources.cpu_mhz,
        memoryBytes: rec.resources.memory_mib * 1_048_576,
        diskBytes: rec.resources.disk_mib * 1_048_576,
        gpu: rec.resources.gpu,
      });
      // Footprint = main phase + prestart sidecar (50 MHz, 2000 MB).
      const tasks = rec.raw?.tasks as Record<string, { Cpu: { CpuShares: number }; Memory: { MemoryMB: number } }>;
      expect(rec.resources.memory_mib).toBe((tasks.main?.Memory.MemoryMB ?? 0) + 2000);
      expect(rec.resources.cpu_mhz).toBe((tasks.main?.Cpu.CpuShares ?? 0) + 50);
      expect(tasks.storage_mount?.Memory.MemoryMB).toBe(2000);
      expect(rec.raw?.lifecycles).toEqual({ main: null, storage_mount: { Hook: 'prestart', Sidecar: true } });
      expect(rec.user).toMatch(/^[0-9a-f]{64}@egi\.eu$/);
      expect(rec.raw?.meta?.owner).toBe(rec.user);
      expect(rec.job_name).toBe(`${rec.component === 'tool' ? rec.job_name?.split('-').slice(0, 2).join('-') : rec.component}-${rec.job_id}`);
    }
  });

  it('writes 9-digit fractions with non-zero nanoseconds', () => {
    const snap = renderNative(cluster, clusterStateAt(cluster, snapshotTimes(cluster)[3]?.timeUs ?? 0));
    for (const rec of snap.allocations) {
      for (const v of [rec.created, rec.start, rec.modified]) {
        if (v === null) continue;
        expect(v).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
        expect(v.slice(-4, -1)).not.toBe('000');
      }
    }
    expect(rfc3339Nano(Date.parse('2024-09-01T10:00:00.123456Z') * 1000 + 456)).toMatch(/^2024-09-01T10:00:00\.123456\d{3}Z$/);
  });

  it('a restarted allocation reports a later start than its truth start', () => {
    const c = createCluster({ seed: 8, days: 4, targetConcurrent: 60, restartFraction: 1 });
    const lives = new Map(computeTruth(c).all.map((l) => [l.key, l]));
    let checked = 0;
    for (const s of snapshotTimes(c)) {
      for (const rec of renderNative(c, clusterStateAt(c, s.timeUs)).allocations) {
        const life = lives.get(`nomad:${rec.id}`);
        if (rec.status !== 'running' || !life || rec.start === null || us(rec.start) === life.startUs) continue;
        expect(us(rec.start)).toBeGreaterThan(life.startUs);
        expect(us(rec.start)).toBeLessThanOrEqual(s.timeUs);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('a lost allocation ends at its ModifyTime, in the record and in the truth', () => {
    const c = createCluster({
      seed: 2,
      days: 6,
      targetConcurrent: 80,
      disconnectsPerWeek: 30,
      reconnectProbability: 0,
      lostAfterMinutes: 360,
    });
    const lives = new Map(computeTruth(c).all.map((l) => [l.key, l]));
    let lost = 0;
    let unknown = 0;
    for (const s of snapshotTimes(c)) {
      for (const rec of renderNative(c, clusterStateAt(c, s.timeUs)).allocations) {
        if (rec.status === 'unknown') unknown++;
        if (rec.status !== 'lost' || rec.start === null) continue;
        lost++;
        expect(rec.end).toBe(rec.modified);
        const alloc = c.allocations.find((a) => a.id === rec.id) as SimAlloc;
        expect(alloc.endUs).toBeNull();
        expect(alloc.unknown.at(-1)?.toUs).toBe(us(rec.modified ?? ''));
        // Lost after exactly lostAfter of disconnection.
        const u = alloc.unknown.at(-1);
        expect(u && u.toUs - u.fromUs).toBe(360 * MIN);
        expect(lives.get(`nomad:${rec.id}`)?.endUs).toBe(us(rec.modified ?? ''));
      }
    }
    expect(lost).toBeGreaterThan(0);
    expect(unknown).toBeGreaterThan(0);
  });

  it('garbage-collects a terminal allocation after the GC window', () => {
    const done = cluster.allocations.find((a) => a.finalStatus === 'complete' && a.terminalUs > cluster.startUs) as SimAlloc;
    expect(done).toBeDefined();
    expect(gcWindowUs(cluster, { format: 'native' })).toBe(60 * MIN);
    expect(gcWindowUs(cluster, { format: 'legacy' })).toBe(240 * MIN);
    const listed = (t: number, format: 'native' | 'legacy'): boolean =>
      clusterStateAt(cluster, t, { format }).allocations.some((v) => v.id === done.id);
    expect(listed(done.terminalUs - 1, 'native')).toBe(true);
    const v = clusterStateAt(cluster, done.terminalUs).allocations.find((x) => x.id === done.id);
    expect(v?.status).toBe('complete');
    expect(v?.finishedAtUs).toBe(done.endUs);
    expect(listed(done.terminalUs + 60 * MIN - 1, 'native')).toBe(true);
    expect(listed(done.terminalUs + 60 * MIN, 'native')).toBe(false);
    expect(listed(done.terminalUs + 240 * MIN - 1, 'legacy')).toBe(true);
    expect(listed(done.terminalUs + 240 * MIN, 'legacy')).toBe(false);
    expect(listed(done.terminalUs + 10 * MIN, 'native') && !listed(done.terminalUs + 10 * MIN + 1, 'native')).toBe(false);
    expect(clusterStateAt(cluster, done.terminalUs + 5 * MIN, { gcMinutes: 5 }).allocations.some((x) => x.id === done.id)).toBe(false);
  });

  it('puts jobs waiting for placement in queued, without an allocation', () => {
    const c = createCluster({ seed: 5, days: 3, targetConcurrent: 60, queueProbabilityCpu: 1, queueProbabilityGpu: 1 });
    const job = c.jobs.find((j) => j.submitUs > c.startUs) ?? c.jobs[0];
    if (!job) throw new Error('no job');
    const first = job.allocs[0] as SimAlloc;
    expect(first.createUs - job.submitUs).toBeGreaterThanOrEqual(2 * MIN);
    const mid = job.submitUs + 1;
    const state = clusterStateAt(c, mid);
    expect(state.queued.map((j) => j.id)).toContain(job.id);
    expect(state.allocations.some((v) => v.jobId === job.id)).toBe(false);
    const snap = renderNative(c, state);
    expect(snap.queued.find((q) => q.job_id === job.id)).toMatchObject({ queued: 1, namespace: job.namespace, user: job.user.id });
    expect(clusterStateAt(c, first.createUs).queued.some((j) => j.id === job.id)).toBe(false);
  });
});

describe('legacy snapshots', () => {
  it('have every namespace key and the fixture field set', async () => {
    const c = createCluster({
      seed: 9,
      days: 4,
      targetConcurrent: 60,
      namespaces: ['ai4eosc', 'imagine', 'ai4life', 'idle'],
      namespaceWeights: [0.6, 0.3, 0.1, 0],
      disconnectsPerWeek: 20,
      reconnectProbability: 1,
    });
    const fixture = JSON.parse(await readFile(join(FIXTURES, '2024-09-01T00:01:01.json'), 'utf8')) as Record<string, Record<string, unknown>[]>;
    const fixtureKeys = Object.keys(fixture.ai4eosc?.[0] ?? {});
    expect(fixtureKeys).toHaveLength(17);
    const statuses = new Set<string>();
    for (const s of snapshotTimes(c)) {
      const snap = renderLegacy(c, clusterStateAt(c, s.timeUs, { format: 'legacy' }));
      expect(Object.keys(snap)).toEqual(['ai4eosc', 'imagine', 'ai4life', 'idle']);
      expect(snap.idle).toEqual([]);
      for (const jobs of Object.values(snap)) {
        for (const job of jobs) {
          statuses.add(job.status);
          const expected = job.status === 'down' ? [...fixtureKeys.slice(0, 15), 'error_msg', ...fixtureKeys.slice(15)] : fixtureKeys;
          expect(Object.keys(job)).toEqual(expected);
          expect(job.name).toBe(`${job.name?.slice(0, -37)}-${job.job_ID}`);
          if (job.status === 'dead' && job.alloc_start) expect(job.alloc_end).not.toBeNull();
          if (job.alloc_start) expect(job.alloc_start).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,9}Z$/);
        }
        const ids = jobs.map((j) => j.job_ID);
        expect([...ids].sort()).toEqual(ids);
      }
    }
    expect([...statuses].filter((x) => !['queued', 'starting'].includes(x)).sort()).toEqual(['dead', 'down', 'running']);
    expect([...statuses].every((x) => ['queued', 'starting', 'running', 'down', 'dead'].includes(x))).toBe(true);

    // Image pulls are short next to the snapshot interval, so look at one directly.
    const alloc = c.allocations.find((a) => a.createUs > c.startUs && a.startUs !== null) as SimAlloc;
    const starting = renderLegacy(c, clusterStateAt(c, alloc.createUs, { format: 'legacy' }))[alloc.job.namespace]?.find(
      (r) => r.job_ID === alloc.job.id,
    );
    expect(starting).toMatchObject({ status: 'starting', alloc_ID: alloc.id, alloc_start: null, alloc_end: null });
    expect(starting?.datacenter).toBe(alloc.node.datacenter);
    const queuedJob = c.jobs.find((j) => j.submitUs > c.startUs) ?? c.jobs[0];
    if (!queuedJob) throw new Error('no job');
    const queued = renderLegacy(c, clusterStateAt(c, queuedJob.submitUs, { format: 'legacy' }))[queuedJob.namespace]?.find(
      (r) => r.job_ID === queuedJob.id,
    );
    expect(queued).toMatchObject({ status: 'queued', alloc_ID: null, datacenter: null, alloc_start: null, alloc_end: null });
    expect(queued?.resources.cpu_MHz).toBe(0);
  });

  it('shows one record per job: a rescheduled job shows its latest allocation', () => {
    const c = createCluster({ seed: 6, days: 5, targetConcurrent: 60, rescheduleFraction: 1 });
    const job = c.jobs.find((j) => j.allocs.length === 2 && (j.allocs[1]?.createUs ?? 0) > c.startUs);
    if (!job) throw new Error('no rescheduled job');
    const [a1, a2] = job.allocs as [SimAlloc, SimAlloc];
    expect(a1.finalStatus).toBe('failed');
    expect(a2.node).not.toBe(a1.node);
    expect(a2.createUs).toBeGreaterThanOrEqual(a1.terminalUs + 30_000_000);
    const t = a2.createUs;
    const state = clusterStateAt(c, t, { format: 'legacy' });
    expect(state.allocations.filter((v) => v.jobId === job.id).map((v) => v.id)).toEqual([a1.id, a2.id]);
    expect(latestPerJob(state).filter((v) => v.jobId === job.id).map((v) => v.id)).toEqual([a2.id]);
    const recs = renderLegacy(c, state)[job.namespace]?.filter((r) => r.job_ID === job.id);
    expect(recs?.map((r) => [r.alloc_ID, r.status])).toEqual([[a2.id, 'starting']]);
    // Each allocation is its own truth interval.
    expect(trueInterval(a1)).toEqual({ startUs: a1.startUs, endUs: a1.endUs });
    expect(trueInterval(a2)?.startUs).toBe(a2.startUs);
  });

  it('serialises as Python json.dumps does (the fixtures round-trip byte for byte)', async () => {
    const names = (await readdir(FIXTURES)).slice(0, 5);
    for (const name of names) {
      const text = await readFile(join(FIXTURES, name), 'utf8');
      expect(pyDumps(JSON.parse(text))).toBe(text);
    }
    expect(pyDumps({ a: ['é', 1, null, {}, []], b: 'x,\ny' })).toBe('{"a": ["\\u00e9", 1, null, {}, []], "b": "x,\\ny"}');
  });

  it('fast serialisers match the rendered objects', () => {
    const c = createCluster({ seed: 3, days: 3, targetConcurrent: 60, disconnectsPerWeek: 20 });
    for (const format of ['native', 'legacy'] as const) {
      const cursor = new StateCursor(c, gcWindowUs(c, { format }));
      const ser = createSerializer(format, c);
      for (const s of snapshotTimes(c)) {
        const state = cursor.at(s.timeUs);
        const expected =
          format === 'native' ? `${JSON.stringify(renderNative(c, state))}\n` : pyDumps(renderLegacy(c, state));
        expect(ser.serialize(state)).toBe(expected);
      }
    }
  });
});

describe('writeHistory', () => {
  it('writes only the snapshots that are not missed, and the truth elsewhere', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-'));
    temps.push(dir);
    const truthPath = join(dir, 'truth', 'ground-truth.json');
    const snapDir = join(dir, 'snapshots');
    const result = await writeHistory(snapDir, {
      format: 'legacy',
      seed: 21,
      days: 3,
      targetConcurrent: 30,
      missed: { probability: 0.2, ranges: [{ from: '2024-09-02T00:00:00Z', to: '2024-09-03T00:00:00Z' }] },
      truthPath,
    });
    const schedule = snapshotTimes(result.cluster);
    expect(schedule).toHaveLength(12);
    const written = schedule.filter((s) => !s.missed);
    expect(schedule.slice(4, 8).every((s) => s.missed)).toBe(true);
    expect(written.length).toBeLessThanOrEqual(8);
    expect(written.length).toBeGreaterThan(3);
    const files = (await readdir(snapDir)).sort();
    expect(files).toEqual(written.map((s) => snapshotFileName('legacy', s.timeUs)));
    expect(files.every((f) => /^2024-09-0[1-3]T\d{2}:\d{2}:\d{2}\.json$/.test(f))).toBe(true);
    expect(result.files).toBe(written.length);
    let bytes = 0;
    for (const f of files) {
      const text = await readFile(join(snapDir, f), 'utf8');
      bytes += Buffer.byteLength(text);
      expect(Object.keys(JSON.parse(text) as object)).toEqual(['ai4eosc', 'imagine', 'ai4life']);
    }
    expect(result.bytes).toBe(bytes);
    const saved = JSON.parse(await readFile(truthPath, 'utf8')) as { horizonUs: number; lifetimes: { observable: boolean }[] };
    expect(saved.horizonUs).toBe(result.cluster.horizonUs);
    expect(saved.lifetimes).toHaveLength(result.truth.all.length);
    expect(saved.lifetimes.filter((l) => l.observable)).toHaveLength(result.truth.observable.length);
    // Missed snapshots do not count for observability.
    expect(result.truth.observable.length).toBeLessThan(computeTruth(result.cluster, { format: 'legacy' }).all.length);
    expect(computeTruth(result.cluster, { format: 'legacy' }).observable).toHaveLength(result.truth.observable.length);
  });

  it('names native files with Z', () => {
    expect(snapshotFileName('native', Date.parse('2024-09-01T00:01:01Z') * 1000)).toBe('2024-09-01T00:01:01Z.json');
    expect(snapshotFileName('legacy', Date.parse('2024-09-01T00:01:01Z') * 1000)).toBe('2024-09-01T00:01:01.json');
  });
});

/** The mean number of allocations holding resources at the scheduled snapshot times, from the truth. */
function meanHolding(c: ReturnType<typeof createCluster>): number {
  const truth = computeTruth(c);
  const times = snapshotTimes(c);
  let sum = 0;
  for (const s of times) sum += truth.all.filter((l) => l.startUs <= s.timeUs && s.timeUs < l.endUs).length;
  return sum / times.length;
}

describe('truth', () => {
  it('keeps the mean number of holding allocations near the target', () => {
    const mean = meanHolding(createCluster({ seed: 1, days: 60, targetConcurrent: 200 }));
    expect(mean).toBeGreaterThan(160);
    expect(mean).toBeLessThan(240);
  });

  it('clips to the horizon and marks what the written snapshots could see', () => {
    const c = createCluster({ seed: 14, days: 5, targetConcurrent: 60 });
    const truth = computeTruth(c, { format: 'native' });
    expect(truth.horizonUs).toBe(c.horizonUs);
    for (const l of truth.all) {
      expect(l.endUs).toBeLessThanOrEqual(c.horizonUs);
      expect(l.startUs).toBeLessThan(l.endUs);
      expect(l.lowEndUs).toBe(l.endUs);
      expect(l.highEndUs).toBe(l.endUs);
      expect(l.endKind === 'open').toBe(l.endUs === c.horizonUs);
    }
    const open = truth.all.filter((l) => l.endKind === 'open');
    const last = renderNative(c, clusterStateAt(c, c.horizonUs));
    const holding = last.allocations.filter((a) => a.status === 'running' || a.status === 'unknown');
    expect(open.map((l) => l.key).sort()).toEqual(holding.map((a) => `nomad:${a.id}`).sort());
    // Allocations shorter than the gap between snapshots and the GC window go unseen.
    expect(truth.observable.length).toBeGreaterThan(0);
    expect(truth.observable.length).toBeLessThan(truth.all.filter((l) => l.endUs > c.startUs).length);
    expect(truth.observable.every((l) => l.observable)).toBe(true);
    const unseen = truth.all.find((l) => !l.observable && l.startUs > c.startUs);
    expect(unseen).toBeDefined();
    for (const s of snapshotTimes(c)) {
      const ids = clusterStateAt(c, s.timeUs).allocations.filter((v) => v.startedAtUs !== null).map((v) => `nomad:${v.id}`);
      expect(ids).not.toContain(unseen?.key);
    }
    // Allocations that never started hold nothing.
    const never = createCluster({ seed: 14, days: 5, targetConcurrent: 60, pullFailFraction: 1 });
    expect(computeTruth(never).all.filter((l) => l.startUs > never.startUs)).toEqual([]);
  });

  it('keeps, as seen, each observable allocation from the first start a snapshot listed', () => {
    // The demo's cluster: hourly snapshots; 53eeef91 ran 19:25:17.235105–19:54:07.075106 between the 19:01
    // and 20:01 snapshots, and its task restarted in place at 19:37:47, so the one snapshot
    // that saw it (20:01:40, listing it complete) shows StartedAt 19:37:54.304978948.
    const c = createCluster({ seed: 7, days: 2, intervalMinutes: 60, targetConcurrent: 40 });
    const truth = computeTruth(c, { format: 'native' });
    const key = 'nomad:53eeef91-378a-0e08-0b74-25df955873bc';
    const actual = truth.all.find((l) => l.key === key);
    expect(actual?.startUs).toBe(us('2024-09-02T19:25:17.235105Z'));
    expect(actual?.seenStartUs).toBe(us('2024-09-02T19:37:54.304978Z'));
    const seen = truth.seen.find((l) => l.key === key);
    expect(seen?.startUs).toBe(us('2024-09-02T19:37:54.304978Z'));
    expect(seen?.endUs).toBe(us('2024-09-02T19:54:07.075106Z'));
    expect(clusterStateAt(c, us('2024-09-02T20:01:40Z')).allocations.find((v) => `nomad:${v.id}` === key)?.startedAtUs).toBe(
      us('2024-09-02T19:37:54.304978Z'),
    );
    // Seen keeps the observable allocations and changes nothing but such starts.
    expect(truth.seen.map((l) => l.key)).toEqual(truth.observable.map((l) => l.key));
    const moved = truth.seen.filter((l, i) => l.startUs !== truth.observable[i]?.startUs);
    expect(moved.map((l) => l.key).sort()).toEqual([key, 'nomad:ebc77068-1eb9-040a-9ad2-9231cb86c516']);
    expect(truth.seen.every((l, i) => l.endUs === truth.observable[i]?.endUs)).toBe(true);
  });
});

describe('planned run times', () => {
  // No disconnections, reschedules or failed pulls, so each job has one allocation that runs
  // exactly its planned time (end - start).
  const plain = { disconnectsPerWeek: 0, rescheduleFraction: 0, pullFailFraction: 0 } as const;
  const runMinutes = (c: Cluster) =>
    c.jobs.map((j) => {
      const a = j.allocs[0] as SimAlloc;
      return { minutes: ((a.endUs as number) - (a.startUs as number)) / MIN, failed: a.finalStatus === 'failed' };
    });

  it('lognormal: median, floor and cap as asked, early failures at their share', () => {
    const week = 7 * 24 * 60;
    const c = createCluster({
      ...plain,
      seed: 5,
      days: 14,
      targetConcurrent: 1000,
      durationDistribution: 'lognormal',
      medianDurationMinutes: 240,
      durationSigma: 1.9,
      minDurationMinutes: 10,
      maxDurationMinutes: week,
      earlyFailFraction: 0.07,
    });
    const runs = runMinutes(c);
    expect(runs.length).toBeGreaterThan(30_000);
    // Early failures run 1-2 minutes and fail; every other run is at least the 10-minute floor.
    const early = runs.filter((r) => r.minutes < 10);
    expect(early.every((r) => r.failed && r.minutes >= 1 && r.minutes <= 2)).toBe(true);
    expect(early.length / runs.length).toBeGreaterThan(0.065);
    expect(early.length / runs.length).toBeLessThan(0.075);
    const rest = runs.filter((r) => r.minutes >= 10).map((r) => r.minutes).sort((a, b) => a - b);
    const median = rest[Math.floor(rest.length / 2)] as number;
    expect(median).toBeGreaterThan(240 * 0.97);
    expect(median).toBeLessThan(240 * 1.03);
    // P(X < 10 min) = Φ(ln(10/240) / 1.9) = Φ(-1.673) = 4.7%, clamped to the floor;
    // P(X > 1 week) = 1 - Φ(ln(10080/240) / 1.9) = 1 - Φ(1.967) = 2.5%, clamped to the cap.
    const share = (x: number) => rest.filter((m) => m === x).length / rest.length;
    expect(share(10)).toBeGreaterThan(0.042);
    expect(share(10)).toBeLessThan(0.052);
    expect(share(week)).toBeGreaterThan(0.021);
    expect(share(week)).toBeLessThan(0.029);
    expect(rest[rest.length - 1]).toBe(week);
  });

  it('lognormal with early failures keeps the mean number of holding allocations near the target', () => {
    const mean = meanHolding(createCluster({ seed: 2, days: 30, targetConcurrent: 300, durationDistribution: 'lognormal', earlyFailFraction: 0.07 }));
    expect(mean).toBeGreaterThan(270);
    expect(mean).toBeLessThan(330);
  });

  it('log-uniform by default: runs spread between the bounds, no early failures', () => {
    const c = createCluster({ ...plain, seed: 5, days: 14, targetConcurrent: 600 });
    const runs = runMinutes(c).map((r) => r.minutes);
    expect(runs.length).toBeGreaterThan(5_000);
    expect(runs.every((m) => m >= 10 && m <= 21 * 24 * 60)).toBe(true);
    // Log-uniform on [10 min, 21 days]: the median is the geometric mean, sqrt(10 x 30240) = 550 min.
    const sorted = [...runs].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    expect(median).toBeGreaterThan(550 * 0.9);
    expect(median).toBeLessThan(550 * 1.1);
  });

  it('rejects an unknown distribution and a share outside 0..1', () => {
    expect(() => createCluster({ durationDistribution: 'normal' as 'lognormal' })).toThrow(/durationDistribution must be "log-uniform" or "lognormal"/);
    expect(() => createCluster({ earlyFailFraction: 1.5 })).toThrow(/earlyFailFraction must be between 0 and 1/);
  });
});
