import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Extractor, extractFromDocument } from '../../src/snapshots/extract.js';
import { pyDumps } from '../../src/simulator/index.js';

/** The fast extraction paths must agree with JSON.parse on every layout, odd ones included. */

const FIXTURES = join(import.meta.dirname, '../fixtures/ai4os/snapshots');
const job = (id: string, extra: Record<string, unknown> = {}) => ({
  job_ID: id, name: `module-${id}`, status: 'running', owner: 'o', description: 'x',
  resources: { cpu_num: 1, cpu_MHz: 2, gpu_num: 0, memory_MB: 3, disk_MB: 4 },
  alloc_ID: `a-${id}`, alloc_start: '2024-09-01T00:00:00.1Z', alloc_end: null, ...extra,
});

function agree(ex: Extractor, text: string) {
  expect(ex.extract(text)).toEqual(extractFromDocument(JSON.parse(text)));
}

describe('Extractor', () => {
  it('agrees with JSON.parse on the AI4OS fixture folder, file after file', () => {
    const ex = new Extractor();
    for (const f of readdirSync(FIXTURES).sort()) agree(ex, readFileSync(join(FIXTURES, f), 'utf8'));
  });

  const layouts: [string, unknown][] = [
    ['empty namespaces first, between and last', { a: [], b: [job('1'), job('2')], c: [], d: [job('3')], e: [] }],
    ['no records at all', { a: [], b: [] }],
    ['a namespace with quotes, commas and brackets in its name', { 'we"ird], "x": [': [job('1')], 'n,s}': [job('2')] }],
    ['a description holding the record mark and separators', { a: [job('1', { description: '}, {"job_ID": "fake", ], "b": [' }), job('2')] }],
    ['a nested object that starts with job_ID', { a: [job('1', { copy: { job_ID: 'inner', z: 1 } }), job('2')] }],
    ['records whose first key is not job_ID', { a: [{ status: 'running', job_ID: '9' }, job('2')] }],
    ['a record that is not an object', { a: [3, job('2')] }],
    ['a job id that is not a string', { a: [job('1', { job_ID: null }), job('2')] }],
    ['non-ASCII names', { 'ñamespace': [job('1', { owner: 'Zoë Ødegård' })] }],
  ];
  for (const [name, doc] of layouts) {
    it(`agrees with JSON.parse: ${name}`, () => {
      const ex = new Extractor();
      agree(ex, pyDumps(doc)); // Python's layout, the fast path
      agree(ex, pyDumps(doc)); // again, from the record cache
      agree(ex, JSON.stringify(doc)); // compact layout, the scanning path
      agree(ex, JSON.stringify(doc, null, 2) + '\n'); // indented, with a trailing newline
    });
  }

  it('sees a changed record even when its job id is the same', () => {
    const ex = new Extractor();
    ex.extract(pyDumps({ a: [job('1')] }));
    const later = ex.extract(pyDumps({ a: [job('1', { status: 'dead', alloc_end: '2024-09-02T00:00:00Z' })] }));
    expect(later.lines.join()).toContain('"dead"');
    expect(later.lines.join()).toContain('"2024-09-02T00:00:00Z"');
  });

  it('agrees on native snapshots', () => {
    const native = {
      format: 'hourmeter.snapshot', version: 1, captured_at: '2026-11-23T06:00:00Z', finished_at: '2026-11-23T06:00:01Z',
      source: { kind: 'nomad', address: null, region: null }, scope: { requested: ['*'], namespaces: ['a'], failed: [] },
      allocations: [{ id: 'x', namespace: 'a', job_id: 'j', status: 'running', start: null, raw: { tasks: { main: { id: 'nested' } } }, resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: 1, disk_mib: 0, gpu: 0 } }],
      queued: [],
    };
    const ex = new Extractor();
    agree(ex, JSON.stringify(native));
    agree(ex, JSON.stringify(native, null, 1));
  });

  it('leaves corrupt text to JSON.parse, which names the problem', () => {
    const text = pyDumps({ a: [job('1'), job('2')] });
    expect(() => new Extractor().extract(text.slice(0, -40))).toThrow(SyntaxError);
  });
});
