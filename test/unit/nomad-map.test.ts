import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNomadJson } from '../../src/sources/nomad/json.js';
import { DEFAULT_META_KEYS, footprint, mapAllocation, mapQueuedJob } from '../../src/sources/nomad/map.js';
import type { NomadAllocStub, NomadJobStub } from '../../src/sources/nomad/types.js';
import { parseBool, resolveNomadSettings } from '../../src/sources/nomad/settings.js';

const FIX = join(import.meta.dirname, '../fixtures/nomad');
const allocs = parseNomadJson(readFileSync(join(FIX, 'nomad-allocations-list.json'), 'utf8')) as NomadAllocStub[];
const jobs = parseNomadJson(readFileSync(join(FIX, 'nomad-jobs-list.json'), 'utf8')) as NomadJobStub[];
const byId = (prefix: string) => allocs.find((a) => a.ID.startsWith(prefix))!;
const opts = { mainTask: 'main', meta: DEFAULT_META_KEYS };
const meta = { owner: 'u1', owner_name: 'Ana', owner_email: 'ana@example.org', group: 'vision' };

describe('Nomad JSON', () => {
  it('keeps Unix-nanosecond times exact as decimal strings', () => {
    expect(byId('8b73ee70').CreateTime).toBe('1741431912704418263');
    expect(byId('8b73ee70').ModifyTime).toBe('1741763565880127340');
    expect(jobs[0]!.SubmitTime).toBe('1741594503301667520');
  });
  it('does not touch such text inside strings', () => {
    expect(parseNomadJson('{"a":"x \\"CreateTime\\":1741431912704418263","CreateTime":1741431912704418263}')).toEqual({ a: 'x "CreateTime":1741431912704418263', CreateTime: '1741431912704418263' });
  });
});

describe('footprint: the largest lifecycle phase, plus reserved cores', () => {
  it('main 4 cores = 10400 MHz, 16000 MB plus a 50 MHz / 2000 MB prestart sidecar', () => {
    expect(footprint(byId('1ebe6e82'))).toEqual({ cpu_cores: 4, cpu_mhz: 10450, memory_mib: 18000, disk_mib: 20000, gpu: 1 });
  });
  it('counts GPUs from devices of type gpu, and every reserved core', () => {
    expect(footprint(byId('8b73ee70'))).toEqual({ cpu_cores: 8, cpu_mhz: 18050, memory_mib: 67536, disk_mib: 51200, gpu: 2 });
  });
  it('takes the larger phase when an ephemeral prestart task outweighs the main phase', () => {
    const a: NomadAllocStub = {
      ID: 'x', JobID: 'j', ClientStatus: 'running',
      AllocatedResources: {
        Tasks: {
          init: { Cpu: { CpuShares: 4000, ReservedCores: null }, Memory: { MemoryMB: 32000 } },
          main: { Cpu: { CpuShares: 1000, ReservedCores: [1] }, Memory: { MemoryMB: 2000 } },
          side: { Cpu: { CpuShares: 100 }, Memory: { MemoryMB: 500 } },
          after: { Cpu: { CpuShares: 300 }, Memory: { MemoryMB: 100 } },
          cleanup: { Cpu: { CpuShares: 5000 }, Memory: { MemoryMB: 50 } },
        },
        TaskLifecycles: { init: { Hook: 'prestart', Sidecar: false }, main: null, side: { Hook: 'prestart', Sidecar: true }, after: { Hook: 'poststart', Sidecar: false }, cleanup: { Hook: 'poststop' } },
        Shared: { DiskMB: 300 },
      },
    };
    // prestart: init + side = 4100 MHz, 32500 MB; main: main + side + after = 1400, 2600; poststop: 5000, 50.
    expect(footprint(a)).toEqual({ cpu_cores: 1, cpu_mhz: 5000, memory_mib: 32500, disk_mib: 300, gpu: 0 });
  });
});

describe('allocation records', () => {
  it('a disconnected (unknown) GPU allocation: start from the main task, still open', () => {
    const r = mapAllocation(byId('8b73ee70'), 'module-e5b0a9d8', meta, opts);
    expect(r).toMatchObject({
      id: '8b73ee70-a5bf-becd-6890-f0035e53657d', namespace: 'imagine', job_id: 'e5b0a9d8-3c71-4f26-b8e4-59a0c1d2e3f4', job_name: 'module-e5b0a9d8',
      user: 'u1', group: 'vision', component: null, node: 'tubitak-gpu-wn-02', status: 'unknown',
      created: '2025-03-08T11:05:12.704418Z', start: '2025-03-08T11:07:30.118802466Z', end: null, modified: '2025-03-12T07:12:45.880127Z',
    });
    expect(r.raw?.meta).toEqual(meta);
    expect(r.raw?.create_time).toBe('1741431912704418263');
    expect((r.raw?.task_states as Record<string, object>).main).not.toHaveProperty('Events');
  });
  it('a lost allocation ends at ModifyTime; without a main task the earliest task stands for it', () => {
    const r = mapAllocation(byId('6be96acb'), null, null, opts);
    expect(r).toMatchObject({ status: 'lost', start: '2025-03-09T16:21:02.317655091Z', end: '2025-03-12T09:41:07.553301Z', user: null, resources: { cpu_cores: 0, cpu_mhz: 2000, memory_mib: 4096, disk_mib: 300, gpu: 0 } });
  });
  it('a complete allocation ends at the main task finish', () => {
    expect(mapAllocation(byId('bd0b8642'), null, null, opts)).toMatchObject({ status: 'complete', start: '2025-03-11T14:02:48.660290118Z', end: '2025-03-11T17:40:05.318826047Z' });
  });
  it('a failed, restarted allocation reports its last start and its finish', () => {
    expect(mapAllocation(byId('617d6aeb'), null, null, opts)).toMatchObject({ status: 'failed', start: '2025-03-11T21:47:20.389904127Z', end: '2025-03-11T21:51:55.91266483Z' });
  });
  it('a pending allocation has no start yet', () => {
    expect(mapAllocation(byId('932dfb3e'), null, null, opts)).toMatchObject({ status: 'pending', start: null, end: null });
  });
  it('reads Go zero time as unset', () => {
    const a = structuredClone(byId('bd0b8642'));
    a.TaskStates!.main!.FinishedAt = '0001-01-01T00:00:00Z';
    expect(mapAllocation(a, null, null, opts).end).toBeNull();
  });
  it('uses a configured main task name', () => {
    expect(mapAllocation(byId('1ebe6e82'), null, null, { ...opts, mainTask: 'storage_mount' }).start).toBe('2025-03-10T08:15:21.113408871Z');
  });
});

describe('queued jobs', () => {
  it('are the jobs with allocations waiting for placement', () => {
    const j: NomadJobStub = { ID: 'q', Name: 'batch-q', Namespace: 'ns', SubmitTime: '1741594503301667520', JobSummary: { Summary: { g: { Queued: 2 } } } };
    expect(mapQueuedJob(j, { owner: 'u9' }, DEFAULT_META_KEYS)).toEqual({ namespace: 'ns', job_id: 'q', job_name: 'batch-q', user: 'u9', group: null, component: null, submitted: '2025-03-10T08:15:03.301667Z', queued: 2, resources: null });
    expect(mapQueuedJob(jobs[0]!, null, DEFAULT_META_KEYS)).toBeNull();
  });
});

describe('connection settings', () => {
  it('a flag beats the environment, which beats the default', () => {
    expect(resolveNomadSettings({}, {}).address).toBe('http://127.0.0.1:4646');
    expect(resolveNomadSettings({}, { NOMAD_ADDR: 'https://n:4646/' }).address).toBe('https://n:4646');
    expect(resolveNomadSettings({ address: 'http://flag:1' }, { NOMAD_ADDR: 'https://n:4646' }).address).toBe('http://flag:1');
    expect(resolveNomadSettings({}, { NOMAD_TOKEN: ' s3cret\n', NOMAD_REGION: 'eu' })).toMatchObject({ token: 's3cret', region: 'eu' });
  });
  it('reads NOMAD_SKIP_VERIFY as Go booleans, and wants a client key with a client certificate', () => {
    expect(parseBool('1', 'X')).toBe(true);
    expect(parseBool('false', 'X')).toBe(false);
    expect(() => parseBool('yes', 'NOMAD_SKIP_VERIFY')).toThrow(/not a boolean/);
    expect(() => resolveNomadSettings({}, { NOMAD_CLIENT_CERT: '/x.pem' })).toThrow(/needs its key/);
    expect(() => resolveNomadSettings({ address: 'nomad:4646' }, {})).toThrow(/not an HTTP address/);
  });
});
