import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeText, Extractor, extractFromDocument, KEY_END, type Extract, type WireSnapshot } from '../../src/snapshots/extract.js';
import { CorruptFileError, readWire } from '../../src/snapshots/read.js';
import { createCluster, createSerializer, gcWindowUs, pyDumps, snapshotTimes, StateCursor } from '../../src/simulator/index.js';

/**
 * The byte-level fast paths (AI4OS and native) against JSON.parse: every file, read in
 * sequence as a reader thread reads a batch (whole, then deltas), must come out as the
 * lines JSON.parse gives, and anything irregular must fall back to the same answer.
 */

const FIXTURES = join(import.meta.dirname, '../fixtures/ai4os/snapshots');

/** What JSON.parse makes of a file, or the class of error it throws. */
function reference(bytes: Buffer): Extract | (new (...a: never[]) => Error) {
  try {
    return extractFromDocument(JSON.parse(decodeText(bytes)));
  } catch (e) {
    return (e as Error).constructor as new (...a: never[]) => Error;
  }
}

/** The slow path numbers repeated keys `key#2`; the reference has plain lines. */
const unnumbered = (line: string) => line.replace(new RegExp(`#\\d+${KEY_END}`), KEY_END);

/** Reads files one after the other as a batch of `batch` files would, checking each against JSON.parse. */
function agreeInSequence(files: readonly Buffer[], batch = files.length): void {
  const ex = new Extractor();
  let listed = new Map<string, string>();
  files.forEach((bytes, i) => {
    const ref = reference(bytes);
    if (typeof ref === 'function') {
      expect(() => ex.readBytes(bytes, i % batch === 0)).toThrow(ref);
      listed = new Map();
      return;
    }
    const wire: WireSnapshot = ex.readBytes(bytes, i % batch === 0);
    // Conflicting repeats are what the slow path adds to what JSON.parse sees.
    const { full, gone, lines, conflicts: _, ...head } = wire;
    const { lines: refLines, ...refHead } = ref;
    expect(head).toEqual(refHead);
    expect(full || i % batch !== 0).toBe(true);
    if (full) {
      listed = new Map();
      // A whole file is sent in file order.
      expect(lines.map(unnumbered)).toEqual(refLines);
    }
    for (const key of gone) expect(listed.delete(key)).toBe(true);
    for (const line of lines) listed.set(line.slice(0, line.indexOf(KEY_END)), line);
    expect([...listed.values()].map(unnumbered).sort()).toEqual([...refLines].sort());
  });
}

function simulated(format: 'native' | 'legacy', seed: number, fullFields: boolean, count: number): Buffer[] {
  const cluster = createCluster({ seed, days: 2, targetConcurrent: 40, fullFields });
  const cursor = new StateCursor(cluster, gcWindowUs(cluster, { format }));
  const serializer = createSerializer(format, cluster);
  return snapshotTimes(cluster)
    .slice(0, count)
    .map((s) => Buffer.from(serializer.serialize(cursor.at(s.timeUs)), 'utf8'));
}

const alloc = (id: unknown, extra: Record<string, unknown> = {}) => ({
  id, namespace: 'ns', job_id: `job-${String(id)}`, job_name: 'module-x', user: 'u@x', group: null, component: 'module', node: 'n1',
  status: 'running', created: '2024-09-01T00:00:00Z', start: '2024-09-01T00:00:01Z', end: null, modified: '2024-09-01T00:00:01Z',
  resources: { cpu_cores: 1, cpu_mhz: 2000, memory_mib: 1024, disk_mib: 100, gpu: 0 },
  raw: { tasks: { main: { Cpu: { CpuShares: 2000 } } }, meta: { owner_name: 'Zoë' } },
  ...extra,
});
const native = (allocations: unknown[], extra: Record<string, unknown> = {}) => ({
  format: 'hourmeter.snapshot', version: 1, captured_at: '2024-09-01T00:10:00Z', finished_at: '2024-09-01T00:10:01Z',
  source: { kind: 'nomad', address: null, region: 'global' }, scope: { requested: ['*'], namespaces: ['ns'], failed: [] },
  allocations, queued: [], ...extra,
});
const compact = (doc: unknown) => Buffer.from(JSON.stringify(doc), 'utf8');

describe('byte-level extraction agrees with JSON.parse', () => {
  it('on the AI4OS fixture folder, whole files and deltas', () => {
    const files = readdirSync(FIXTURES).sort().map((f) => readFileSync(join(FIXTURES, f)));
    agreeInSequence(files);
    agreeInSequence(files, 5);
  });

  for (const fullFields of [true, false]) {
    it(`on simulated native snapshots (fullFields ${fullFields})`, () => {
      agreeInSequence(simulated('native', 11, fullFields, 120), 32);
    });
    it(`on simulated AI4OS snapshots (fullFields ${fullFields})`, () => {
      agreeInSequence(simulated('legacy', 12, fullFields, 60), 16);
    });
  }

  const dir = mkdtempSync(join(tmpdir(), 'hm-extract-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('on gzipped and plain files read from disk, as a reader thread reads them', () => {
    // Plain files in a row are read into the same two buffers, turn about.
    const texts = [...simulated('native', 13, true, 30), ...simulated('legacy', 13, true, 30)];
    const ex = new Extractor();
    let listed = new Map<string, string>();
    texts.forEach((bytes, i) => {
      const gzip = i % 4 === 3;
      const path = join(dir, `f${i}.json${gzip ? '.gz' : ''}`);
      writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
      if (i % 9 === 5) expect(() => readWire({ path: `${path}.missing`, gzip }, ex, false)).toThrow(CorruptFileError);
      const wire = readWire({ path, gzip }, ex, i === 0 || i === 30);
      if (wire.full) listed = new Map();
      for (const key of wire.gone) listed.delete(key);
      for (const line of wire.lines) listed.set(line.slice(0, line.indexOf(KEY_END)), line);
      expect([...listed.values()].sort()).toEqual([...(reference(bytes) as Extract).lines].sort());
    });
  });

  // Each case follows a regular file, so that the record cache holds something to (wrongly) reuse.
  const regular = compact(native([alloc('a'), alloc('b'), alloc('c')]));
  const irregular: [string, Buffer][] = [
    ['an empty list of allocations', compact(native([]))],
    ['the record mark inside a string', compact(native([alloc('a', { raw: { note: '},{"id":"b' } }), alloc('b')]))],
    ['the record mark inside raw, where a nested list holds objects that start with "id"', compact(native([alloc('a', { raw: { list: [{ x: 1 }, { id: 'c', y: 2 }] } }), alloc('b')]))],
    ['the record mark in the queued list after the allocations', compact(native([alloc('a'), alloc('b')], { queued: [{ x: 1 }, { id: 'q', namespace: 'ns', job_id: 'q' }] }))],
    ['an id with escapes', compact(native([alloc('a"b'), alloc('c\\d')]))],
    ['a non-ASCII id', compact(native([alloc('ñ-1'), alloc('b')]))],
    ['ids that are not strings', compact(native([alloc(7), alloc(null), alloc('b')]))],
    ['the same id twice', compact(native([alloc('a'), alloc('b'), alloc('a', { status: 'dead' })]))],
    ['a record whose first key is not the id', compact(native([alloc('a'), { namespace: 'ns', id: 'b', status: 'running' }]))],
    ['a first record whose first key is not the id', compact(native([{ namespace: 'ns', id: 'b' }, alloc('a')]))],
    ['a record that is not an object', compact(native([alloc('a'), 3, alloc('b')]))],
    ['"allocations" inside the header', compact({ ...native([alloc('a')]), source: { kind: 'nomad', allocations: [alloc('z')] } })],
    ['"allocations" before the header is complete', compact((({ allocations, ...rest }) => ({ allocations, ...rest }))(native([alloc('b')])))],
    ['an indented layout', Buffer.from(JSON.stringify(native([alloc('a'), alloc('b')]), null, 2) + '\n')],
    ['a space before the end of the list', Buffer.from(JSON.stringify(native([alloc('a')])).replace('}],"queued"', '} ],"queued"'))],
    ['another format', compact({ ...native([alloc('a')]), format: 'other' })],
    ['another version', compact({ ...native([alloc('a')]), version: 2 })],
    ['no scope', compact({ ...native([alloc('a')]), scope: null })],
    ['no queued list', compact((({ queued: _, ...rest }) => rest)(native([alloc('a'), alloc('b')])))],
    ['trailing text', Buffer.concat([regular, Buffer.from(' x')])],
    ['a truncated file', regular.subarray(0, regular.length - 30)],
    ['a truncated last record', Buffer.from(regular.toString('latin1').replace(/,"raw":\{[^]*\}\],"queued"/, ',"raw":{"a":1],"queued"'), 'latin1')],
    ['a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), regular])],
  ];
  // Hand-made texts JSON.stringify would never write.
  const text = (s: string) => Buffer.from(s, 'utf8');
  const head = '{"format":"hourmeter.snapshot","version":1,"captured_at":"2024-09-01T00:10:00Z","source":{"kind":"nomad"},"scope":{"namespaces":["ns"]},';
  const rec = (id: string, status = 'running') => `{"id":"${id}","namespace":"ns","job_id":"j","status":"${status}","resources":{"cpu_cores":1,"cpu_mhz":1,"memory_mib":1,"disk_mib":1,"gpu":0}}`;
  irregular.push(
    ['"allocations" twice', text(`${head}"allocations":[${rec('a')}],"queued":[],"allocations":[${rec('b')}]}`)],
    ['"id" twice in a record', text(`${head}"allocations":[${rec('a').slice(0, -1)},"id":"z"},${rec('b')}],"queued":[]}`)],
    ['invalid UTF-8 in a record', Buffer.concat([text(`${head}"allocations":[${rec('a').slice(0, -1)},"note":"`), Buffer.from([0xc3, 0x28, 0xe2, 0x82]), text(`"},${rec('b')}],"queued":[]}`)])],
    ['invalid UTF-8 in a field that is read', Buffer.concat([text(`${head}"allocations":[${rec('a')},{"id":"b","namespace":"`), Buffer.from([0xff, 0xfe]), text(`","job_id":"j"}],"queued":[]}`)])],
    ['a record mark glued with spaces', text(`${head}"allocations":[${rec('a')}, ${rec('b')}],"queued":[]}`)],
  );
  for (const [name, bytes] of irregular) {
    it(`on native files with ${name}`, () => {
      agreeInSequence([regular, bytes, regular, bytes, bytes], 8);
    });
  }

  it('on AI4OS files with invalid UTF-8 and non-ASCII text', () => {
    const legacy = (owner: Buffer) => Buffer.concat([Buffer.from('{"a": [{"job_ID": "1", "owner": "'), owner, Buffer.from('", "status": "running"}, {"job_ID": "2", "status": "dead"}]}')]);
    agreeInSequence([legacy(Buffer.from('x')), legacy(Buffer.from([0xc3, 0x28])), legacy(Buffer.from('Zoë')), legacy(Buffer.from([0xe2, 0x82])), legacy(Buffer.from('x'))]);
  });

  it('from text with a lone surrogate, which has no UTF-8 form', () => {
    const doc = pyDumps({ a: [{ job_ID: '1', owner: 'x', status: 'running' }] }).replace('"x"', '"\ud800"');
    expect(new Extractor().extract(doc)).toEqual(extractFromDocument(JSON.parse(doc)));
  });

  it('and the native fast path sends unchanged records as nothing', () => {
    const ex = new Extractor();
    ex.readBytes(regular, true);
    const again = ex.readBytes(Buffer.from(regular), false);
    expect(again).toMatchObject({ full: false, lines: [], gone: [] });
    const changed = ex.readBytes(compact(native([alloc('a'), alloc('b', { status: 'complete' })])), false);
    expect(changed.lines).toHaveLength(1);
    expect(changed.lines[0]).toContain('"complete"');
    expect(changed.gone).toEqual(['"c"']);
  });
});
