import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { aggregate, type Hours } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { estimateLifetimes } from '../../src/accounting/reconstruct.js';
import { startFakeNomad } from '../../fake/nomad-server.js';
import { createCluster, computeTruth } from '../../src/simulator/index.js';
import { captureNomad, emptyMetaCache } from '../../src/sources/nomad/capture.js';
import { DEFAULT_CLIENT_OPTIONS, NomadClient } from '../../src/sources/nomad/client.js';
import { DEFAULT_META_KEYS } from '../../src/sources/nomad/map.js';
import { resolveNomadSettings } from '../../src/sources/nomad/settings.js';
import { listSnapshots } from '../../src/snapshots/files.js';
import { loadHistory } from '../../src/snapshots/full-read.js';
import { windowDiagnostics, windowFiles } from '../../src/snapshots/catalogue.js';
import { writeNewFile } from '../../src/snapshots/write.js';
import { inLanes, runAsync, tempDir } from '../helpers/cli.js';

/**
 * The whole pipeline against the simulator's ground truth: a fake Nomad serves the cluster
 * at each simulated time, `snapshot` captures it every 15 minutes, and `stats` reads the
 * folder. With 15-minute snapshots every allocation is seen, so the estimate must be
 * within 0.1% of the full truth.
 */

const RESOURCES = ['cpu_hours', 'gpu_hours', 'memory_gib_hours', 'disk_gib_hours', 'cpu_mhz_hours'] as const;

function expectWithin(estimate: { rows: Hours[] }, truth: { rows: Hours[]; total: Hours }, tolerance: number): void {
  const est = new Map((estimate.rows as ({ namespace: string } & Hours)[]).map((r) => [r.namespace, r]));
  let checked = 0;
  for (const row of truth.rows as ({ namespace: string } & Hours)[]) {
    for (const r of RESOURCES) {
      if (row[r] < 0.01 * truth.total[r]) continue;
      const got = est.get(row.namespace)?.[r] ?? 0;
      expect(Math.abs(got - row[r]) / row[r], `${row.namespace} ${r}: ${got} vs truth ${row[r]}`).toBeLessThanOrEqual(tolerance);
      checked++;
    }
  }
  expect(checked).toBeGreaterThanOrEqual(10);
}

async function truthAndStats(dir: string, cluster: ReturnType<typeof createCluster>, from: string, to: string) {
  const period = resolvePeriod(from, to, 'UTC');
  const history = await loadHistory(await listSnapshots(dir), { strict: true, warn: () => {} });
  const estimate = aggregate(estimateLifetimes(history.tracks, { gapPolicy: 'midpoint', gcWindowUs: null }), period, ['namespace']);
  const truth = aggregate(computeTruth(cluster, { format: 'native' }).all, period, ['namespace']);
  return { estimate, truth, snapshots: windowDiagnostics(windowFiles(history.files, period)).diagnostics.snapshots };
}

describe('snapshot → stats against the simulator truth', () => {
  // One day: 96 runs of the CLI over some 280 allocations (the 30 days below run in-process).
  it('a simulated day of 15-minute snapshots taken by the CLI: within 0.1% of the full truth', async () => {
    const cluster = createCluster({ seed: 21, days: 1, intervalMinutes: 15, targetConcurrent: 30 });
    // Two runs at a time (the folder's lock orders their writes), each lane against its own
    // server of the cluster: a server shows one instant at a time.
    const fakes = [await startFakeNomad({ cluster, token: 't0k3n' }), await startFakeNomad({ cluster, token: 't0k3n' })];
    try {
      const cwd = tempDir();
      await inLanes(cluster.snapshots, fakes.length, async (s, lane) => {
        const fake = fakes[lane]!;
        fake.setNow(s.timeUs);
        // Two servers of one cluster: it is named, as a cluster reached at several addresses is (docs/accounting.md#clusters).
        const r = await runAsync(['snapshot', '--quiet', '--cluster', 'sim', '--now', new Date(s.timeUs / 1000).toISOString()], { cwd, env: { NOMAD_ADDR: fake.url, NOMAD_TOKEN: 't0k3n' } });
        expect(r.code, r.stderr).toBe(0);
      });
      const { estimate, truth, snapshots } = await truthAndStats(join(cwd, 'snapshots'), cluster, '2024-09-01', '2024-09-01');
      expect(snapshots).toBe(96);
      expectWithin(estimate, truth, 0.001);
      // And the CLI's own report says the same.
      const cli = JSON.parse((await runAsync(['stats', '--from', '2024-09-01', '--to', '2024-09-01', '-o', 'json'], { cwd })).stdout);
      expect(cli.total.cpu_hours).toBe(estimate.total.cpu_hours);
    } finally {
      await Promise.all(fakes.map((f) => f.close()));
    }
  }, 600_000);

  it('30 simulated days through the same capture function, in-process: within 0.1% of the full truth', async () => {
    const cluster = createCluster({ seed: 22, days: 30, intervalMinutes: 15, targetConcurrent: 30 });
    const fake = await startFakeNomad({ cluster });
    const client = new NomadClient(resolveNomadSettings({ address: fake.url }, {}), { ...DEFAULT_CLIENT_OPTIONS, connections: 2 });
    try {
      const dir = tempDir();
      let cache = emptyMetaCache();
      for (const s of cluster.snapshots) {
        fake.setNow(s.timeUs);
        const at = new Date(s.timeUs / 1000);
        const result = await captureNomad(
          client,
          {
            namespaces: null, excludeNamespaces: [], jobPrefixes: [], perPage: 500, metaMode: 'auto', metaConcurrency: 4,
            mapping: { mainTask: 'main', meta: DEFAULT_META_KEYS }, now: () => at, source: { kind: 'nomad', address: fake.url, region: null },
          },
          cache,
        );
        expect(result.complete).toBe(true);
        cache = result.cache;
        writeNewFile(join(dir, `${at.toISOString().slice(0, 19)}Z.json`), JSON.stringify(result.snapshot));
      }
      const { estimate, truth } = await truthAndStats(dir, cluster, '2024-09-01', '2024-09-30');
      expectWithin(estimate, truth, 0.001);
    } finally {
      await client.close();
      await fake.close();
    }
  }, 600_000);
});
