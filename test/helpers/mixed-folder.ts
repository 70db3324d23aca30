import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tempDir } from './cli.js';

/**
 * A folder that moves from AI4OS files to native ones, with a gzip file, a sub-folder and a
 * failed scope. Hand-computed: allocation A (2 cores, 1 GPU) runs 2024-09-01 01:00 → 10:00,
 * seen first in an AI4OS file and then in native files; B (4 cores) runs in namespace
 * "beta" from 02:00 and is still running when the capture of "beta" fails at 12:00.
 */

const legacy = {
  alpha: [
    {
      job_ID: 'job-a', name: 'module-job-a', status: 'running', owner: 'alice', alloc_ID: 'alloc-a',
      alloc_start: '2024-09-01T01:00:00.000000000Z', alloc_end: null,
      resources: { cpu_num: 2, cpu_MHz: 5000, gpu_num: 1, memory_MB: 4096, disk_MB: 1024 },
    },
  ],
  beta: [],
};

const res = (cores: number, gpu: number) => ({ cpu_cores: cores, cpu_mhz: cores * 2500, memory_mib: 4096, disk_mib: 1024, gpu });
const alloc = (id: string, ns: string, user: string, status: string, start: string, end: string | null, cores: number, gpu: number) => ({
  id, namespace: ns, job_id: `job-${id.slice(-1)}`, job_name: null, user, group: ns === 'alpha' ? 'physics' : 'chemistry', component: null,
  node: 'n1', status, created: null, start, end, modified: null, resources: res(cores, gpu),
});
const native = (at: string, namespaces: string[], failed: { namespace: string; reason: string }[], allocations: unknown[]) => ({
  format: 'hourmeter.snapshot', version: 1, captured_at: at, finished_at: at,
  source: { kind: 'nomad', address: 'https://nomad.example:4646', region: 'global' },
  scope: { requested: ['*'], namespaces, failed }, allocations, queued: [],
});

export function mixedFolder(): string {
  const cwd = tempDir();
  const dir = join(cwd, 'snapshots');
  mkdirSync(join(dir, '2024'), { recursive: true });
  writeFileSync(join(dir, '2024-09-01T00:00:00.json'), JSON.stringify({ alpha: [], beta: [] }));
  writeFileSync(join(dir, '2024-09-01T03:00:00.json'), JSON.stringify(legacy));
  writeFileSync(
    join(dir, '2024', '2024-09-01T06:00:00Z.json.gz'),
    gzipSync(JSON.stringify(native('2024-09-01T06:00:00Z', ['alpha', 'beta'], [], [
      alloc('alloc-a', 'alpha', 'alice', 'running', '2024-09-01T01:00:00Z', null, 2, 1),
      alloc('alloc-b', 'beta', 'bob', 'running', '2024-09-01T02:00:00Z', null, 4, 0),
    ]))),
  );
  writeFileSync(
    join(dir, '2024-09-01T12:00:00Z.json'),
    JSON.stringify(native('2024-09-01T12:00:00Z', ['alpha'], [{ namespace: 'beta', reason: 'HTTP 403: permission denied' }], [
      alloc('alloc-a', 'alpha', 'alice', 'complete', '2024-09-01T01:00:00Z', '2024-09-01T10:00:00Z', 2, 1),
    ])),
  );
  return cwd;
}

