import { describe, expect, it } from 'vitest';
import { detectKind, FormatError, observeLegacy, observeNative } from '../../src/snapshots/observe.js';
import type { NativeSnapshot } from '../../src/snapshots/format.js';
import { parseSnapshotName } from '../../src/snapshots/files.js';

const legacyJob = (over: Record<string, unknown> = {}) => ({
  job_ID: 'job-1',
  name: 'module-job-1',
  status: 'running',
  owner: 'alice@egi.eu',
  alloc_ID: 'alloc-1',
  alloc_start: '2024-09-01T01:00:00.123456789Z',
  alloc_end: null,
  resources: { cpu_num: 4, cpu_MHz: 11200, gpu_num: 1, memory_MB: 4000, disk_MB: 30000 },
  ...over,
});

describe('legacy AI4OS records', () => {
  it('map to observations keyed by allocation id, times truncated to µs', () => {
    const s = observeLegacy({ ai4eosc: [legacyJob()], imagine: [] }, 'f.json', 1);
    expect([...s.covered]).toEqual(['ai4eosc', 'imagine']);
    expect(s.observations).toEqual([
      {
        key: 'nomad:alloc-1', namespace: 'ai4eosc', jobId: 'job-1', jobName: 'module-job-1', user: 'alice@egi.eu', group: null, component: null, node: null,
        status: 'running', phase: 'holding', startUs: Date.UTC(2024, 8, 1, 1) * 1000 + 123456, endUs: null,
        amounts: { cpuMilli: 4000, cpuMhz: 11200, memoryBytes: 4000 * 1048576, diskBytes: 30000 * 1048576, gpu: 1 },
      },
    ]);
  });
  it('fall back to the job id without an allocation, and count queued jobs apart', () => {
    const s = observeLegacy({ ns: [legacyJob({ alloc_ID: null, status: 'starting', alloc_start: null }), legacyJob({ job_ID: 'q', status: 'queued', alloc_ID: null })] }, 'f.json', 1);
    expect(s.observations.map((o) => [o.key, o.phase])).toEqual([['nomad:job-1', 'none']]);
    expect(s.queued).toEqual([{ namespace: 'ns', jobId: 'q', user: 'alice@egi.eu', group: null, queued: 1 }]);
  });
  it('read null and Go zero time as unset: running without a start holds nothing', () => {
    const s = observeLegacy({ ns: [legacyJob({ alloc_start: '0001-01-01T00:00:00Z' }), legacyJob({ alloc_ID: 'a2', status: 'dead', alloc_end: '0001-01-01T00:00:00Z' })] }, 'f.json', 1);
    expect(s.observations.map((o) => [o.phase, o.startUs === null, o.endUs])).toEqual([
      ['none', true, null],
      ['terminal', false, null],
    ]);
  });
  it('skip records missing fields or with bad times, with a reason', () => {
    const s = observeLegacy({ ns: [{ status: 'running' }, legacyJob({ alloc_start: 'yesterday' }), legacyJob({ job_ID: 'job-2', alloc_ID: 'alloc-2', resources: { cpu_num: 1 } })] }, 'f.json', 1);
    expect(s.observations).toEqual([]);
    expect(s.skips.map((k) => k.reason)).toEqual(['record missing fields', 'bad time in alloc_start', 'record missing fields']);
  });
});

const nativeDoc = (allocations: unknown[]): NativeSnapshot =>
  ({
    format: 'hourmeter.snapshot', version: 1, captured_at: '2026-11-23T06:00:00.5Z', finished_at: '2026-11-23T06:00:02Z',
    source: { kind: 'nomad', address: null, region: null },
    scope: { requested: ['*'], namespaces: ['a'], failed: [{ namespace: 'b', reason: '403 Forbidden' }] },
    allocations, queued: [],
  }) as NativeSnapshot;

describe('native records', () => {
  it('use the capture time of the content and cover only the captured namespaces', () => {
    const s = observeNative(nativeDoc([]), 'f', 0);
    expect(s.timeUs).toBe(Date.UTC(2026, 10, 23, 6) * 1000 + 500000);
    expect([...s.covered]).toEqual(['a']);
    expect(s.failedScopes).toEqual([{ namespace: 'b', reason: '403 Forbidden' }]);
  });
  it('map fractional Kubernetes cores and MiB to integer base units; end only when terminal', () => {
    const rec = { id: 'u1', namespace: 'a', job_id: 'j', job_name: null, user: null, group: 'g', component: null, node: 'n1', status: 'running', created: null, start: '2026-11-23T05:00:00Z', end: '2026-11-23T05:30:00Z', modified: null, resources: { cpu_cores: 8.35, cpu_mhz: 0, memory_mib: 65824, disk_mib: 0.5, gpu: 2 } };
    const [o] = observeNative(nativeDoc([rec]), 'f', 0).observations;
    expect(o!.amounts).toEqual({ cpuMilli: 8350, cpuMhz: 0, memoryBytes: 65824 * 1048576, diskBytes: 524288, gpu: 2 });
    expect(o!.endUs).toBeNull();
  });
});

describe('a lost native allocation', () => {
  it('ends at its modified time when the writer left end unset', () => {
    const rec = { id: 'l1', namespace: 'a', job_id: 'j', status: 'lost', start: '2026-11-23T01:00:00Z', end: null, modified: '2026-11-23T03:30:00Z', resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 0, disk_mib: 0, gpu: 0 } };
    const [o] = observeNative(nativeDoc([rec]), 'f', 0).observations;
    expect(o!.phase).toBe('terminal');
    expect(o!.endUs).toBe(Date.UTC(2026, 10, 23, 3, 30) * 1000);
  });
  it('keeps an explicit end', () => {
    const rec = { id: 'l1', namespace: 'a', job_id: 'j', status: 'lost', start: '2026-11-23T01:00:00Z', end: '2026-11-23T02:00:00Z', modified: '2026-11-23T03:30:00Z', resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 0, disk_mib: 0, gpu: 0 } };
    expect(observeNative(nativeDoc([rec]), 'f', 0).observations[0]!.endUs).toBe(Date.UTC(2026, 10, 23, 2) * 1000);
  });
});

describe('format detection', () => {
  it('tells native from legacy and refuses the rest', () => {
    expect(detectKind({ format: 'hourmeter.snapshot', version: 1 })).toBe('native');
    expect(detectKind({ ns: [] })).toBe('legacy');
    expect(() => detectKind([1])).toThrow(FormatError);
    expect(() => detectKind({ ns: 3 })).toThrow(/neither a native hourmeter snapshot/);
    expect(() => detectKind({ format: 'hourmeter.snapshot', version: 2 })).toThrow(/version 2/);
  });
  it('reads capture times from file names', () => {
    expect(parseSnapshotName('2026-11-23T06:00:00Z.json')).toEqual({ timeUs: Date.UTC(2026, 10, 23, 6) * 1000, namedAs: 'native', gzip: false });
    expect(parseSnapshotName('2024-09-01T00:01:01.json.gz')).toEqual({ timeUs: Date.UTC(2024, 8, 1, 0, 1, 1) * 1000, namedAs: 'legacy', gzip: true });
    expect(parseSnapshotName('user-db.json')).toBeNull();
    expect(parseSnapshotName('2024-02-30T00:00:00Z.json')).toBeNull();
  });
});

describe('amounts outside the plausible maxima', () => {
  const native = (id: string, resources: Record<string, unknown>) => ({
    id, namespace: 'a', job_id: 'j', status: 'running', start: '2026-11-23T05:00:00Z', end: null, modified: null,
    resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 0, disk_mib: 0, gpu: 0, ...resources },
  });
  it('skip the record, naming the field, its value and the limit', () => {
    const s = observeNative(nativeDoc([native('z1', { cpu_cores: 10_001 }), native('z2', { cpu_mhz: -1 }), native('z3', { gpu: Infinity }), native('z4', { disk_mib: '5' })]), 'f', 0);
    expect(s.observations).toEqual([]);
    expect(s.skips.map((k) => [k.reason, k.detail])).toEqual([
      ['implausible amount', 'allocation z1: resources.cpu_cores is 10001, above the maximum of 10,000 cores'],
      ['implausible amount', 'allocation z2: resources.cpu_mhz is -1, below zero'],
      ['implausible amount', 'allocation z3: resources.gpu is Infinity, not a finite number'],
      ['record missing fields', 'allocation z4: resources.disk_mib is not a number'],
    ]);
  });
  it('name the legacy field', () => {
    const s = observeLegacy({ ns: [legacyJob({ resources: { cpu_num: 4, cpu_MHz: 11200, gpu_num: 1, memory_MB: 1e300, disk_MB: 0 } })] }, 'f.json', 1);
    expect(s.skips.map((k) => k.detail)).toEqual(['job job-1 in ns: resources.memory_MB is 1e+300, above the maximum of 67,108,864 MiB (64 TiB)']);
  });
  it('read amounts at the maxima as exact integers in base units', () => {
    const [o] = observeNative(nativeDoc([native('m', { cpu_cores: 10_000, cpu_mhz: 1e8, memory_mib: 2 ** 26, disk_mib: 2 ** 30, gpu: 1024 })]), 'f', 0).observations;
    expect(o!.amounts).toEqual({ cpuMilli: 10_000_000, cpuMhz: 100_000_000, memoryBytes: 2 ** 46, diskBytes: 2 ** 50, gpu: 1024 });
    expect(Object.values(o!.amounts).every(Number.isSafeInteger)).toBe(true);
  });
});

describe('records that contradict themselves or each other', () => {
  const rec = (id: string, over: Record<string, unknown> = {}) => ({
    id, namespace: 'a', job_id: 'j', status: 'running', start: '2026-11-23T05:00:00Z', end: null, modified: null,
    resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 0, disk_mib: 0, gpu: 0 }, ...over,
  });
  it('one id listed twice with different content: the first listing is used, the conflict reported', () => {
    const s = observeNative(nativeDoc([rec('x', { status: 'complete', end: '2026-11-23T05:30:00Z' }), rec('y'), rec('x')]), 'f', 0);
    expect(s.observations.map((o) => [o.key, o.phase])).toEqual([['nomad:x', 'terminal'], ['nomad:y', 'holding']]);
    expect(s.skips).toEqual([{ reason: 'conflicting records', file: 'f', detail: 'allocation x is listed 2 times with different content; the first listing is used' }]);
  });
  it('an AI4OS job listed again with another allocation is two allocations, not a conflict', () => {
    const s = observeLegacy({ ns: [legacyJob(), legacyJob({ alloc_ID: 'alloc-2' }), legacyJob({ status: 'dead', alloc_end: '2024-09-01T02:00:00Z' })] }, 'f.json', 1);
    expect(s.observations.map((o) => [o.key, o.phase])).toEqual([['nomad:alloc-1', 'holding'], ['nomad:alloc-2', 'holding']]);
    expect(s.skips.map((k) => k.detail)).toEqual(['job job-1 in ns is listed 2 times with different content; the first listing is used']);
  });
  it('a terminal record that ends before it starts is skipped, naming both fields; a running one ignores its end', () => {
    const s = observeNative(nativeDoc([
      rec('x', { status: 'failed', end: '2026-11-23T04:00:00Z' }),
      rec('y', { status: 'lost', modified: '2026-11-23T04:30:00Z' }),
      rec('z', { end: '2026-11-23T04:00:00Z' }),
    ]), 'f', 0);
    expect(s.observations.map((o) => o.key)).toEqual(['nomad:z']);
    expect(s.skips.map((k) => [k.reason, k.detail])).toEqual([
      ['end before start', 'allocation x: end 2026-11-23T04:00:00Z is before start 2026-11-23T05:00:00Z'],
      ['end before start', 'allocation y: modified 2026-11-23T04:30:00Z is before start 2026-11-23T05:00:00Z'],
    ]);
  });
});
