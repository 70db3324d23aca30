import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020Module, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NativeAllocation, NativeQueuedJob, NativeResources, NativeSnapshot } from '../../src/snapshots/format.js';

// ajv and ajv-formats are CommonJS: under NodeNext a default import is `module.exports`,
// whose `.default` is the class / plugin (it is also the export itself at run time).
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

const docsDir = fileURLToPath(new URL('../../docs/', import.meta.url));
const markdown = readFileSync(`${docsDir}snapshot-format.md`, 'utf8');
const schema = JSON.parse(readFileSync(`${docsDir}snapshot-v1.schema.json`, 'utf8')) as Record<string, any>;

/** Every ```json block of the doc, parsed. */
function jsonBlocks(md: string): unknown[] {
  return [...md.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map((m) => JSON.parse(m[1]!) as unknown);
}

/** The native example of the doc: the one ```json block with a `format` key. */
function docExample(): NativeSnapshot {
  const natives = jsonBlocks(markdown).filter(
    (b): b is NativeSnapshot => typeof b === 'object' && b !== null && 'format' in b,
  );
  expect(natives).toHaveLength(1);
  return natives[0]!;
}

let validate: ValidateFunction;

beforeAll(() => {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  validate = ajv.compile(schema);
});

function errorsOf(doc: unknown): Pick<ErrorObject, 'instancePath' | 'keyword' | 'params'>[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(({ instancePath, keyword, params }) => ({ instancePath, keyword, params }));
}

/** A deep copy of the doc's example, changed by `mutate`. */
function mutated(mutate: (doc: any) => void): unknown {
  const doc = structuredClone(docExample()) as any;
  mutate(doc);
  return doc;
}

describe('docs/snapshot-format.md example', () => {
  it('validates against docs/snapshot-v1.schema.json', () => {
    expect(errorsOf(docExample())).toEqual([]);
  });

  it('shows one running GPU allocation, one completed allocation and one queued job', () => {
    const doc = docExample();
    expect(doc.format).toBe('hourmeter.snapshot');
    expect(doc.version).toBe(1);
    expect(doc.allocations.map((a) => a.status)).toEqual(['running', 'complete']);
    expect(doc.allocations[0]!.resources.gpu).toBeGreaterThan(0);
    expect(doc.allocations[0]!.end).toBeNull();
    expect(doc.allocations[1]!.end).not.toBeNull();
    expect(doc.queued).toHaveLength(1);
    // Records belong to covered namespaces only.
    for (const r of [...doc.allocations, ...doc.queued]) expect(doc.scope.namespaces).toContain(r.namespace);
  });

  it('the legacy example is an AI4OS {namespace: [job, ...]} object', () => {
    const legacy = jsonBlocks(markdown).filter((b) => typeof b === 'object' && b !== null && !('format' in b));
    expect(legacy).toHaveLength(1);
    const doc = legacy[0] as Record<string, unknown[]>;
    expect(Object.keys(doc)).toEqual(['ai4eosc', 'imagine', 'ai4life']);
    expect(doc.ai4eosc![0]).toMatchObject({ status: 'running', resources: { cpu_num: 4, gpu_num: 0 } });
    // A legacy file is not a native one.
    expect(errorsOf(doc)).toContainEqual({ instancePath: '', keyword: 'required', params: { missingProperty: 'format' } });
  });
});

describe('schema lists exactly the fields of src/snapshots/format.ts', () => {
  // `satisfies` makes the type checker fail when format.ts gains or loses a field;
  // the value says whether the field is required.
  const top = {
    format: true, version: true, captured_at: true, finished_at: true, source: true, scope: true, allocations: true, queued: true,
  } satisfies Record<keyof NativeSnapshot, boolean>;
  const allocation = {
    id: true, namespace: true, job_id: true, job_name: true, user: true, group: true, component: true, node: true,
    status: true, created: true, start: true, end: true, modified: true, resources: true, raw: false,
  } satisfies Record<keyof NativeAllocation, boolean>;
  const queued = {
    namespace: true, job_id: true, job_name: true, user: true, group: true, component: true, submitted: true, queued: true, resources: true,
  } satisfies Record<keyof NativeQueuedJob, boolean>;
  const resources = { cpu_cores: true, cpu_mhz: true, memory_mib: true, disk_mib: true, gpu: true } satisfies Record<keyof NativeResources, boolean>;

  const cases: [string, Record<string, any>, Record<string, boolean>][] = [
    ['top level', schema, top],
    ['allocation', schema.$defs.allocation, allocation],
    ['queued job', schema.$defs.queuedJob, queued],
    ['resources', schema.$defs.resources, resources],
  ];
  it.each(cases)('%s', (_name, node, fields) => {
    expect(Object.keys(node.properties).sort()).toEqual(Object.keys(fields).sort());
    expect([...node.required].sort()).toEqual(Object.keys(fields).filter((k) => fields[k]).sort());
  });
});

describe('schema rejects', () => {
  it('a missing captured_at', () => {
    expect(errorsOf(mutated((d) => delete d.captured_at))).toEqual([
      { instancePath: '', keyword: 'required', params: { missingProperty: 'captured_at' } },
    ]);
  });

  it('version 2', () => {
    expect(errorsOf(mutated((d) => (d.version = 2)))).toEqual([
      { instancePath: '/version', keyword: 'const', params: { allowedValue: 1 } },
    ]);
  });

  it('another format name', () => {
    expect(errorsOf(mutated((d) => (d.format = 'ai4os')))).toEqual([
      { instancePath: '/format', keyword: 'const', params: { allowedValue: 'hourmeter.snapshot' } },
    ]);
  });

  it('a negative gpu count', () => {
    expect(errorsOf(mutated((d) => (d.allocations[0].resources.gpu = -1)))).toEqual([
      { instancePath: '/allocations/0/resources/gpu', keyword: 'minimum', params: { comparison: '>=', limit: 0 } },
    ]);
  });

  it('a negative resource in a queued job', () => {
    expect(errorsOf(mutated((d) => (d.queued[0].resources.memory_mib = -512)))).toContainEqual({
      instancePath: '/queued/0/resources/memory_mib',
      keyword: 'minimum',
      params: { comparison: '>=', limit: 0 },
    });
  });

  it.each(['yesterday', '2026-11-23', '2026-13-01T00:00:00Z', '2026-11-23T06:00:00'])('start %j (not an RFC 3339 date-time)', (bad) => {
    expect(errorsOf(mutated((d) => (d.allocations[0].start = bad)))).toEqual([
      { instancePath: '/allocations/0/start', keyword: 'format', params: { format: 'date-time' } },
    ]);
  });

  it('start as a number (Unix nanoseconds)', () => {
    expect(errorsOf(mutated((d) => (d.allocations[0].start = 1763799464902117503)))).toEqual([
      { instancePath: '/allocations/0/start', keyword: 'type', params: { type: ['string', 'null'] } },
    ]);
  });

  it('captured_at null (not nullable)', () => {
    expect(errorsOf(mutated((d) => (d.captured_at = null)))).toEqual([
      { instancePath: '/captured_at', keyword: 'type', params: { type: 'string' } },
    ]);
  });

  it('a nullable field left out instead of null', () => {
    expect(errorsOf(mutated((d) => delete d.allocations[1].end))).toEqual([
      { instancePath: '/allocations/1', keyword: 'required', params: { missingProperty: 'end' } },
    ]);
  });

  it('an empty allocation id', () => {
    expect(errorsOf(mutated((d) => (d.allocations[0].id = '')))).toEqual([
      { instancePath: '/allocations/0/id', keyword: 'minLength', params: { limit: 1 } },
    ]);
  });

  it('a fractional queued count', () => {
    expect(errorsOf(mutated((d) => (d.queued[0].queued = 1.5)))).toEqual([
      { instancePath: '/queued/0/queued', keyword: 'type', params: { type: 'integer' } },
    ]);
  });
});

describe('schema accepts', () => {
  it('a status it does not know (newer sources may add values)', () => {
    expect(errorsOf(mutated((d) => (d.allocations[0].status = 'preempted')))).toEqual([]);
  });

  it('additional fields everywhere (additive changes keep version 1)', () => {
    const doc = mutated((d) => {
      d.written_by = 'hourmeter 0.2.0';
      d.source.datacenter = 'ifca';
      d.allocations[1].task_group = 'usergroup';
      d.allocations[1].resources.gpu_model = 'Tesla V100';
      d.queued[0].priority = 50;
    });
    expect(errorsOf(doc)).toEqual([]);
  });

  it('a record without raw, and raw with any content and meta null', () => {
    expect(errorsOf(mutated((d) => delete d.allocations[0].raw))).toEqual([]);
    expect(errorsOf(mutated((d) => (d.allocations[0].raw = { meta: null, events: [1, 2], tasks: 'x' })))).toEqual([]);
  });

  it('raw.meta that is not an object', () => {
    expect(errorsOf(mutated((d) => (d.allocations[0].raw.meta = 'owner=alice')))).toEqual([
      { instancePath: '/allocations/0/raw/meta', keyword: 'type', params: { type: ['object', 'null'] } },
    ]);
  });

  it('a pending allocation with every time null and queued resources null', () => {
    const doc = mutated((d) => {
      Object.assign(d.allocations[0], { status: 'pending', node: null, created: null, start: null, end: null, modified: null });
      d.queued[0].resources = null;
      d.queued[0].submitted = null;
    });
    expect(errorsOf(doc)).toEqual([]);
  });

  it('nanosecond fractions, numeric offsets and fractional cores', () => {
    const doc = mutated((d) => {
      d.allocations[0].start = '2026-11-22T09:17:44.902117503+01:00';
      d.allocations[0].resources.cpu_cores = 0.25;
    });
    expect(errorsOf(doc)).toEqual([]);
  });

  it('a snapshot with no allocations, no queued jobs and a failed listing', () => {
    const doc = mutated((d) => {
      d.scope = { requested: ['*'], namespaces: [], failed: [{ namespace: '*', reason: 'connection refused' }] };
      d.allocations = [];
      d.queued = [];
    });
    expect(errorsOf(doc)).toEqual([]);
  });
});
