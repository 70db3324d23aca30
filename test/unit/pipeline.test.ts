import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateLifetimes, Reconstructor } from '../../src/accounting/reconstruct.js';
import { pyDumps } from '../../src/simulator/index.js';
import { listSnapshots } from '../../src/snapshots/files.js';
import { loadHistory } from '../../src/snapshots/full-read.js';
import { observeLegacy } from '../../src/snapshots/observe.js';
import { tempDir } from '../helpers/cli.js';

/**
 * The reader sends deltas between consecutive files; the result must equal feeding each
 * whole file to the reconstruction. Odd inputs first: a record listed twice, then once.
 */

const job = (id: string, extra: Record<string, unknown> = {}) => ({
  job_ID: id, name: id, status: 'running', owner: 'u', alloc_ID: `alloc-${id}`,
  alloc_start: '2024-01-01T23:00:00.000000000Z', alloc_end: null,
  resources: { cpu_num: 1, cpu_MHz: 0, gpu_num: 0, memory_MB: 0, disk_MB: 0 }, ...extra,
});

async function both(files: [string, Record<string, unknown[]>][]) {
  const dir = tempDir();
  const ref = new Reconstructor();
  for (const [name, doc] of files) {
    writeFileSync(join(dir, name), pyDumps(doc));
    ref.add(observeLegacy(doc, name, Date.parse(name.replace('.json', 'Z')) * 1000));
  }
  const opts = { gapPolicy: 'midpoint' as const, gcWindowUs: null };
  const viaReader = estimateLifetimes((await loadHistory(await listSnapshots(dir), { strict: true, warn: () => {} })).tracks, opts);
  return { viaReader, reference: estimateLifetimes(ref.tracksWithLifetime(), opts) };
}

describe('the delta reader equals whole snapshots', () => {
  it('a record listed twice, then once: the allocation is still listed, not gone', async () => {
    const { viaReader, reference } = await both([
      ['2024-01-02T00:00:00.json', { ns: [job('a1'), job('a1')] }],
      ['2024-01-02T06:00:00.json', { ns: [job('a1')] }],
      ['2024-01-02T12:00:00.json', { ns: [job('a1')] }],
    ]);
    expect(viaReader).toEqual(reference);
    expect(viaReader).toMatchObject([{ endKind: 'open', endUs: Date.parse('2024-01-02T12:00:00Z') * 1000 }]);
  });
  it('a job whose allocation changes (rescheduled): the old one vanishes, the new one runs', async () => {
    const { viaReader, reference } = await both([
      ['2024-01-02T00:00:00.json', { ns: [job('j')] }],
      ['2024-01-02T06:00:00.json', { ns: [job('j', { alloc_ID: 'alloc-new', alloc_start: '2024-01-02T05:00:00.000000000Z' })] }],
    ]);
    expect(viaReader).toEqual(reference);
    expect(viaReader.map((l) => [l.key, l.endKind])).toEqual([
      ['nomad:alloc-j', 'vanished'],
      ['nomad:alloc-new', 'open'],
    ]);
  });
});
