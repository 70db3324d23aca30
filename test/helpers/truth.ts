import { expect } from 'vitest';
import { aggregate, type Hours } from '../../src/accounting/aggregate.js';
import { resolvePeriod } from '../../src/accounting/period.js';
import { computeTruth, type Cluster } from '../../src/simulator/index.js';

type Resource = 'cpu_hours' | 'gpu_hours' | 'memory_gib_hours' | 'disk_gib_hours';

/**
 * Checks `stats --by namespace -o json` output against the simulator's full truth for the
 * same UTC days: every namespace holding at least `share` of a resource's total is within
 * `tolerance` (relative). Returns how many figures were checked, so a test can insist on enough.
 */
export function expectNearTruth(statsJson: string, cluster: Cluster, days: { from: string; to: string }, o: { resources: readonly Resource[]; tolerance: number; share: number }): number {
  const got = JSON.parse(statsJson) as { rows: ({ namespace: string } & Hours)[] };
  const truth = aggregate(computeTruth(cluster, { format: 'native' }).all, resolvePeriod(days.from, days.to, 'UTC'), ['namespace']);
  let checked = 0;
  for (const row of truth.rows as ({ namespace: string } & Hours)[]) {
    for (const resource of o.resources) {
      if (row[resource] < o.share * truth.total[resource]) continue;
      const estimate = got.rows.find((x) => x.namespace === row.namespace)?.[resource] ?? 0;
      expect(Math.abs(estimate - row[resource]) / row[resource], `${row.namespace} ${resource}`).toBeLessThanOrEqual(o.tolerance);
      checked++;
    }
  }
  return checked;
}
