import { describe, expect, it } from 'vitest';
import { Ai4osDecoder, ai4osSnapshotOf } from '../../src/snapshots/ai4os-input.js';
import { DeltaEncoder, extractFromDocument, Extractor, type WireSnapshot } from '../../src/snapshots/extract.js';
import { amountProblem, gunzipCap, RESOURCE_MAXIMA } from '../../src/snapshots/limits.js';

describe('plausible amounts', () => {
  it('refuse non-finite, negative and above-maximum values, and accept the maximum itself', () => {
    expect(amountProblem('cpu_cores', Infinity)).toBe('is Infinity, not a finite number');
    expect(amountProblem('cpu_cores', NaN)).toBe('is NaN, not a finite number');
    expect(amountProblem('memory_mib', -0.5)).toBe('is -0.5, below zero');
    expect(amountProblem('gpu', 1025)).toBe('is 1025, above the maximum of 1,024 GPUs');
    for (const [resource, max] of Object.entries(RESOURCE_MAXIMA)) expect(amountProblem(resource as keyof typeof RESOURCE_MAXIMA, max)).toBeNull();
    expect(amountProblem('disk_mib', 0)).toBeNull();
  });
  it('keep an overlong number (1e999) as Infinity in the record tuple, not as a missing field', () => {
    const text = '{"ns": [{"job_ID": "j", "status": "running", "resources": {"cpu_num": 1e999, "cpu_MHz": 0, "gpu_num": 0, "memory_MB": 0, "disk_MB": 0}}]}';
    const [line] = new Extractor().extract(text).lines;
    expect(line!.endsWith(',1e999,0,0,0,0]')).toBe(true);
  });
});

describe('the AI4OS method', () => {
  const job = (id: string, resources: Record<string, unknown>) => ({ job_ID: id, status: 'running', owner: 'u', alloc_start: '2024-09-01T00:00:00.000000000Z', alloc_end: null, resources });
  it('leaves out a job with an implausible amount and says why; a missing amount counts as 0, as in the original', () => {
    const doc = { ns: [job('ok', { cpu_num: 2 }), job('big', { cpu_num: 1, cpu_MHz: 1e9 })] };
    const wire = new DeltaEncoder().encode(extractFromDocument(doc)) as WireSnapshot & { kind: 'legacy' };
    const { snapshot, skips } = new Ai4osDecoder().decode(wire);
    expect(snapshot.get('ns')).toEqual([['running', 'ok', 'u', '2024-09-01T00:00:00.000000000Z', null, 2, 0, 0, 0, 0]]);
    expect(skips).toEqual([{ reason: 'implausible amount', detail: 'job big in ns: resources.cpu_MHz is 1000000000, above the maximum of 100,000,000 MHz' }]);
    expect(ai4osSnapshotOf(doc).get('ns')).toHaveLength(1);
  });
});

describe('the gzip cap', () => {
  it('is 200 times the compressed size, at least 16 MiB, at most 512 MiB', () => {
    expect(gunzipCap(1000)).toBe(16 * 2 ** 20);
    expect(gunzipCap(1_000_000)).toBe(200_000_000);
    expect(gunzipCap(10 * 2 ** 20)).toBe(512 * 2 ** 20);
  });
});
