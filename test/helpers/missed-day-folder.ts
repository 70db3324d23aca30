import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cli.js';
import { hubSnapshot } from './monthly-folder.js';

/**
 * A hand-built folder for coverage (UTC): a snapshot at `first`, then one every 6 h on the
 * hour (00:00, 06:00, 12:00, 18:00) to 2024-09-05T18:00, with 2024-09-03 missed: the gap
 * from 09-02T18:00 to 09-04T00:00 is 30 h. The median interval is 6 h, so the default max
 * gap is 18 h. One allocation of alice (hub, jupyter, no group, 1 core, 1 GiB) runs from
 * midnight of the first day through every snapshot, open at the last.
 */
export function missedDayFolder(first: string): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(dir);
  const a = {
    id: 'a', namespace: 'hub', job_id: 'job-a', job_name: 'nb-a', user: 'alice', group: null, component: 'jupyter',
    node: 'n1', status: 'running', created: null, start: `${first.slice(0, 10)}T00:00:00Z`, end: null, modified: null,
    resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1024, disk_mib: 0, gpu: 0 },
  };
  const SIX_HOURS = 6 * 3_600_000;
  const times = [Date.parse(first)];
  for (let t = (Math.floor(times[0]! / SIX_HOURS) + 1) * SIX_HOURS; t <= Date.parse('2024-09-05T18:00:00Z'); t += SIX_HOURS) times.push(t);
  for (const t of times) {
    const at = new Date(t).toISOString().slice(0, 19) + 'Z';
    if (!at.startsWith('2024-09-03')) writeFileSync(join(dir, `${at}.json`), JSON.stringify(hubSnapshot(at, [a])));
  }
  return cwd;
}

/**
 * The coverage of 2024-09-02 to 2024-09-04 in such a folder, worked out by hand: 18 h
 * sampled on 09-02 and 24 h on 09-04, of 72 h; the 30 h gap between is uncovered.
 */
export const MISSED_DAY_LINE = 'no snapshot between 2024-09-02T18:00:00Z and 2024-09-04T00:00:00Z (30 h): 1.25 of 3 days are unknown, not zero';
export const MISSED_DAY_COVERAGE = {
  covered_fraction: 42 / 72,
  max_gap_hours: 18,
  stretches: [
    { start: '2024-09-02T00:00:00.000000Z', end: '2024-09-02T18:00:00.000000Z', kind: 'sampled' },
    { start: '2024-09-02T18:00:00.000000Z', end: '2024-09-04T00:00:00.000000Z', kind: 'uncovered' },
    { start: '2024-09-04T00:00:00.000000Z', end: '2024-09-05T00:00:00.000000Z', kind: 'sampled' },
  ],
  until: null,
  warning: MISSED_DAY_LINE,
};
