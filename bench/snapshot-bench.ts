/**
 * Snapshot cost against a big cluster behind a slow API: hourmeter's paged capture versus a
 * per-job client that, like the original AI4OS script, lists jobs per namespace and then asks
 * about each job one by one (the job, then its allocations), sequentially.
 */
import { startFakeNomad } from '../fake/nomad-server.js';
import { createCluster } from '../src/simulator/index.js';
import { captureNomad, emptyMetaCache } from '../src/sources/nomad/capture.js';
import { DEFAULT_CLIENT_OPTIONS, NomadClient } from '../src/sources/nomad/client.js';
import { DEFAULT_META_KEYS } from '../src/sources/nomad/map.js';
import { resolveNomadSettings } from '../src/sources/nomad/settings.js';

export async function snapshotBench(opts: { concurrent: number; latencyMs: number }): Promise<void> {
  const cluster = createCluster({ seed: 9, days: 1, intervalMinutes: 360, targetConcurrent: opts.concurrent, fullFields: false });
  const fake = await startFakeNomad({ cluster, latencyMs: opts.latencyMs, now: cluster.snapshots[2]!.timeUs });
  const settings = resolveNomadSettings({ address: fake.url }, {});
  try {
    const client = new NomadClient(settings);
    let t0 = performance.now();
    const result = await captureNomad(
      client,
      {
        namespaces: null, excludeNamespaces: [], jobPrefixes: [], perPage: 1000, metaMode: 'auto', metaConcurrency: 8,
        mapping: { mainTask: 'main', meta: DEFAULT_META_KEYS }, now: () => new Date(), source: { kind: 'nomad', address: fake.url, region: null },
      },
      emptyMetaCache(),
    );
    const ours = { seconds: (performance.now() - t0) / 1000, requests: client.requests, allocations: result.snapshot.allocations.length };
    await client.close();

    const perJob = new NomadClient(settings, { ...DEFAULT_CLIENT_OPTIONS, connections: 1 });
    t0 = performance.now();
    let allocations = 0;
    const namespaces = (await perJob.get<{ Name: string }[]>('/v1/namespaces')).body;
    for (const ns of namespaces) {
      const jobs = (await perJob.get<{ ID: string }[]>('/v1/jobs', { namespace: ns.Name })).body;
      for (const j of jobs) {
        await perJob.get(`/v1/job/${encodeURIComponent(j.ID)}`, { namespace: ns.Name });
        allocations += (await perJob.get<unknown[]>(`/v1/job/${encodeURIComponent(j.ID)}/allocations`, { namespace: ns.Name })).body.length;
      }
    }
    const theirs = { seconds: (performance.now() - t0) / 1000, requests: perJob.requests, allocations };
    await perJob.close();

    console.log(`\nsnapshot of a ${ours.allocations}-allocation cluster, ${opts.latencyMs} ms latency per request:`);
    console.log(`  hourmeter snapshot (paged lists)   ${String(ours.requests).padStart(6)} requests  ${ours.seconds.toFixed(2).padStart(7)} s`);
    console.log(`  per-job client (AI4OS-style)       ${String(theirs.requests).padStart(6)} requests  ${theirs.seconds.toFixed(2).padStart(7)} s  (${theirs.allocations} allocations)`);
  } finally {
    await fake.close();
  }
}
