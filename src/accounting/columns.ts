import { bareName } from './clusters.js';
import { UnreadableDataError } from './errors.js';
import { estimateEnd, gcWindowFor, reachUs, type EndEstimate, type EstimateOptions, type Track } from './reconstruct.js';
import { AMOUNT_FIELDS, RESOURCE_COUNT, type Amounts } from './resources.js';
import type { Lifetime } from './types.js';

/**
 * Tracks and lifetimes as columns of numbers, the form reports aggregate. Strings
 * (namespaces, users, groups, job ids, resource flavours) become ids in a dictionary, so
 * a year of a busy cluster is a few typed arrays: the index stores them as blobs and a
 * report reads them without building an object per allocation.
 */

/**
 * A dictionary of strings; ids are small non-negative integers. Flavours (the mixes of
 * amounts allocations hold) are numbered apart, densely from 0, so that a report finds a
 * flavour's amounts by index instead of parsing a name.
 */
export interface Names {
  /** The id of a string, or undefined when it was never interned. */
  lookup(value: string): number | undefined;
  name(id: number): string;
  /** Says which ids `name` will be asked for, so a slow dictionary can fetch them at once. */
  prefetch?(ids: Iterable<number>): void;
  /** Every flavour's amounts, by flavour id. */
  flavours(): FlavourTable;
  /** A bound on the ids: every id is below it. */
  size(): number;
}

export interface NameWriter extends Names {
  intern(value: string): number;
  /** The id of a flavour: the same amounts, the same id. */
  flavour(amounts: Amounts): number;
}

/**
 * Ids stay below 2^26 so that a (namespace, job) pair packs into one safe integer, the key
 * that counts distinct jobs.
 */
export const MAX_NAME_ID = 2 ** 26;

export function checkNameId(id: number): number {
  if (id >= MAX_NAME_ID) throw new UnreadableDataError(`the index holds more than ${MAX_NAME_ID} distinct names; rebuild it with \`hourmeter index rebuild\``);
  return id;
}

export class MemoryNames implements NameWriter {
  private readonly ids = new Map<string, number>();
  private readonly values: string[] = [];
  private readonly table = new FlavourTable();
  private readonly flavourIds = new FlavourIds();

  flavour(a: Amounts): number {
    return this.flavourIds.idOf(this.table, a);
  }

  flavours(): FlavourTable {
    return this.table;
  }

  size(): number {
    return this.values.length;
  }

  intern(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = checkNameId(this.values.length);
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }

  lookup(value: string): number | undefined {
    return this.ids.get(value);
  }

  name(id: number): string {
    const v = this.values[id];
    if (v === undefined) throw new Error(`no name with id ${id}`);
    return v;
  }
}

/** A flavour's amounts, in the order of the resource list (AMOUNT_FIELDS). */
const FIELDS = RESOURCE_COUNT;

/**
 * Flavours' amounts packed in one array of numbers, flavour f's field k at f × FIELDS + k (k: the resource's place in the list): the
 * index stores it as one blob, so a report has every flavour's amounts in one read.
 */
export class FlavourTable {
  count = 0;
  private data: Float64Array;

  /** `data`: a stored table, every flavour in use; none makes an empty table. */
  constructor(data?: Float64Array) {
    this.data = data ?? new Float64Array(64 * FIELDS);
    this.count = data ? Math.floor(data.length / FIELDS) : 0;
    if (this.data.length % FIELDS !== 0) throw new UnreadableDataError('the index holds a flavour table in an unknown layout; rebuild it with `hourmeter index rebuild`');
  }

  /** The amounts, f × FIELDS + k (see AMOUNT_FIELDS), for flavours 0 to count - 1. */
  get values(): Float64Array {
    return this.data.subarray(0, this.count * FIELDS);
  }

  /** Whether flavour f holds these amounts (in table order), matched as a Map's keys are: 0 and -0 alike, NaN as NaN. */
  holds(f: number, amounts: Float64Array): boolean {
    for (let k = 0; k < FIELDS; k++) {
      const x = this.data[f * FIELDS + k]!;
      const y = amounts[k]!;
      if (x !== y && !(Number.isNaN(x) && Number.isNaN(y))) return false;
    }
    return true;
  }

  amounts(f: number): Amounts {
    if (f < 0 || f >= this.count) throw new Error(`no flavour with id ${f}`);
    const d = this.data;
    const at = f * FIELDS;
    const a = {} as Amounts;
    for (let k = 0; k < FIELDS; k++) a[AMOUNT_FIELDS[k]!] = d[at + k]!;
    return a;
  }

  /** Appends a flavour; returns its id. */
  push(a: Amounts): number {
    if ((this.count + 1) * FIELDS > this.data.length) {
      const grown = new Float64Array(this.data.length * 2 + FIELDS);
      grown.set(this.values);
      this.data = grown;
    }
    const at = this.count * FIELDS;
    for (let k = 0; k < FIELDS; k++) this.data[at + k] = a[AMOUNT_FIELDS[k]!];
    return this.count++;
  }

  encode(): Buffer {
    const v = this.values;
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }

  static decode(bytes: Uint8Array): FlavourTable {
    if (bytes.byteLength % (8 * FIELDS) !== 0) throw new UnreadableDataError('the index holds a flavour table in an unknown layout; rebuild it with `hourmeter index rebuild`');
    // Typed views need aligned offsets: copied into a buffer of its own.
    const copy = new Float64Array(bytes.byteLength / 8);
    new Uint8Array(copy.buffer).set(bytes);
    return new FlavourTable(copy);
  }
}

/**
 * Flavour ids by their amounts, found by a hash of the amounts: an ingest asks once per
 * track (building a text key cost more than the lookups), and the ids of a table read back
 * from the index are one map of numbers, quick to fill with a year's thousands of flavours.
 * Amounts match as a Map's keys do: 0 and -0 alike, NaN as NaN.
 */
export class FlavourIds {
  /** Ids by hash; the rare hash two flavours share holds both, in an array. */
  private readonly byHash = new Map<number, number | number[]>();
  /** The amounts asked for, in table order: each is read from its object once. */
  private readonly asked = new Float64Array(FIELDS);

  /** Every flavour of a table read back from the index. */
  static of(table: FlavourTable): FlavourIds {
    const ids = new FlavourIds();
    const v = table.values;
    for (let f = 0; f < table.count; f++) {
      for (let k = 0; k < FIELDS; k++) ids.asked[k] = v[f * FIELDS + k]!;
      ids.add(ids.hashAsked(), f);
    }
    return ids;
  }

  /** The id of a flavour in `table`; appended when new. */
  idOf(table: FlavourTable, a: Amounts): number {
    const asked = this.asked;
    for (let k = 0; k < FIELDS; k++) asked[k] = a[AMOUNT_FIELDS[k]!];
    const h = this.hashAsked();
    const found = this.byHash.get(h);
    if (typeof found === 'number') {
      if (table.holds(found, asked)) return found;
    } else if (found !== undefined) {
      for (const f of found) if (table.holds(f, asked)) return f;
    }
    const id = table.push(a);
    this.add(h, id);
    return id;
  }

  /**
   * A hash of the amounts in `asked`, by each value's low and high 32 bits: amounts that
   * match hash alike (0 and -0 give 0, so does NaN), and a fraction only makes a rare shared
   * hash. Kept to 30 bits: V8 keeps such numbers unboxed, and a map finds them faster.
   */
  private hashAsked(): number {
    let h = 0x811c9dc5;
    for (let k = 0; k < FIELDS; k++) {
      const x = this.asked[k]!;
      h = Math.imul(Math.imul(h ^ (x | 0), 0x01000193) ^ ((x / 4294967296) | 0), 0x01000193);
    }
    return h & 0x3fffffff;
  }

  private add(h: number, f: number): void {
    const found = this.byHash.get(h);
    if (found === undefined) this.byHash.set(h, f);
    else if (typeof found === 'number') this.byHash.set(h, [found, f]);
    else found.push(f);
  }
}

/** No user or group: the column holds this instead of an id. */
export const NO_NAME = -1;

const STATE_CODES = { holding: 1, ended: 2, vanished: 3 } as const;
const STATES = [null, 'holding', 'ended', 'vanished'] as const;
const NEXT_KINDS = [null, 'native', 'legacy'] as const;
const LISTED_TERMINAL = 1;
const KUBERNETES = 8;

/**
 * Tracks that held resources, as columns: what the index keeps per segment. Times are
 * microseconds, NaN for none. `flags` packs listedTerminal, the kind of S' and whether the
 * source is Kubernetes: what picks the default GC window.
 *
 * The lifetime under the default estimate (midpoint, the source's GC window) is kept too,
 * computed by the same estimateEnd when a track is packed: most reports use the default,
 * and then read it as it is instead of estimating each track again (see estimateColumns).
 */
export class TrackColumns {
  length = 0;
  readonly start: Float64Array;
  readonly lastHolding: Float64Array;
  readonly end: Float64Array;
  readonly next: Float64Array;
  readonly namespace: Int32Array;
  readonly user: Int32Array;
  readonly group: Int32Array;
  readonly job: Int32Array;
  readonly component: Int32Array;
  readonly flavour: Int32Array;
  readonly state: Uint8Array;
  readonly flags: Uint8Array;
  /** The default estimate: end, sure bounds, and kind (END_KIND_CODES, or NOT_HELD). */
  readonly defaultEnd: Float64Array;
  readonly defaultLow: Float64Array;
  readonly defaultHigh: Float64Array;
  readonly defaultKind: Uint8Array;
  /** Bounds for skipping a segment: the earliest start and the latest reach (see reachUs). */
  minStartUs = Infinity;
  maxReachUs = -Infinity;

  constructor(
    readonly capacity: number,
    buffer?: ArrayBuffer,
  ) {
    const b = buffer ?? new ArrayBuffer(TrackColumns.bytesFor(capacity));
    const n = capacity;
    let at = HEADER_BYTES;
    const f64 = () => new Float64Array(b, (at += 8 * n) - 8 * n, n);
    const i32 = () => new Int32Array(b, (at += 4 * n) - 4 * n, n);
    const u8 = () => new Uint8Array(b, (at += n) - n, n);
    // Wider columns first: typed views need offsets aligned to their element size.
    this.start = f64();
    this.lastHolding = f64();
    this.end = f64();
    this.next = f64();
    this.defaultEnd = f64();
    this.defaultLow = f64();
    this.defaultHigh = f64();
    this.namespace = i32();
    this.user = i32();
    this.group = i32();
    this.job = i32();
    this.component = i32();
    this.flavour = i32();
    this.state = u8();
    this.flags = u8();
    this.defaultKind = u8();
    this.buffer = b;
  }

  private readonly buffer: ArrayBuffer;

  static bytesFor(n: number): number {
    return HEADER_BYTES + n * (7 * 8 + 6 * 4 + 3);
  }

  get full(): boolean {
    return this.length === this.capacity;
  }

  /**
   * Appends a track that held resources; false (and nothing appended) for one that held
   * nothing. `lastHoldingUs` is S as the reconstruction settles it (see Reconstructor.flush).
   */
  push(t: Track, lastHoldingUs: number | null, names: NameWriter): boolean {
    const reach = reachUs({ ...t, lastHoldingUs });
    if (t.state === 'none' || t.startUs === null || reach === null) return false;
    const i = this.length++;
    this.start[i] = t.startUs;
    this.lastHolding[i] = lastHoldingUs ?? NaN;
    this.end[i] = t.endUs ?? NaN;
    this.next[i] = t.nextUs ?? NaN;
    this.namespace[i] = names.intern(t.namespace);
    this.user[i] = t.user === null ? NO_NAME : names.intern(t.user);
    this.group[i] = t.group === null ? NO_NAME : names.intern(t.group);
    this.job[i] = names.intern(t.jobId);
    this.component[i] = t.component === null ? NO_NAME : names.intern(t.component);
    this.flavour[i] = names.flavour(t.amounts);
    this.state[i] = STATE_CODES[t.state];
    this.flags[i] =
      (t.listedTerminal ? LISTED_TERMINAL : 0) | (NEXT_KINDS.indexOf(t.nextKind) << 1) | (bareName(t.key).startsWith('kubernetes:') ? KUBERNETES : 0);
    if (t.startUs < this.minStartUs) this.minStartUs = t.startUs;
    if (reach > this.maxReachUs) this.maxReachUs = reach;
    this.estimateDefault(i);
    return true;
  }

  /** Fills row i's default estimate from its stored fields (see the class comment). */
  private estimateDefault(i: number): void {
    const e = SCRATCH_ESTIMATE;
    const held = this.state[i] !== 0 && estimateRow(this, i, DEFAULT_ESTIMATE, e);
    this.defaultEnd[i] = held ? e.endUs : NaN;
    this.defaultLow[i] = held ? e.lowEndUs : NaN;
    this.defaultHigh[i] = held ? e.highEndUs : NaN;
    this.defaultKind[i] = held ? END_KIND_CODES[e.endKind] : NOT_HELD;
  }

  /** Blanks a row: a track that moved on. It then holds nothing, and reports skip it. */
  blank(i: number): void {
    this.state[i] = 0;
    this.defaultKind[i] = NOT_HELD;
  }

  /**
   * Appends every row of another set of columns with the same dictionary, column by column
   * (an ingest continues the last segment, thousands of rows, and encodes it again).
   */
  copyRows(from: TrackColumns): void {
    const n = from.length;
    if (n === 0) return;
    const j = this.length;
    const copy = <T extends Float64Array | Int32Array | Uint8Array>(to: T, source: T) => to.set(source.subarray(0, n), j);
    copy(this.start, from.start);
    copy(this.lastHolding, from.lastHolding);
    copy(this.end, from.end);
    copy(this.next, from.next);
    copy(this.namespace, from.namespace);
    copy(this.user, from.user);
    copy(this.group, from.group);
    copy(this.job, from.job);
    copy(this.component, from.component);
    copy(this.flavour, from.flavour);
    copy(this.state, from.state);
    copy(this.flags, from.flags);
    copy(this.defaultEnd, from.defaultEnd);
    copy(this.defaultLow, from.defaultLow);
    copy(this.defaultHigh, from.defaultHigh);
    copy(this.defaultKind, from.defaultKind);
    this.length += n;
    this.minStartUs = Math.min(this.minStartUs, from.minStartUs);
    this.maxReachUs = Math.max(this.maxReachUs, from.maxReachUs);
  }

  /** The columns as bytes (only the used rows); `decode` reads them back. */
  encode(): Buffer {
    const out = new TrackColumns(this.length);
    out.copyRows(this);
    const header = new DataView(out.buffer, 0, HEADER_BYTES);
    header.setUint32(0, FORMAT);
    header.setUint32(4, this.length);
    header.setFloat64(8, this.minStartUs);
    header.setFloat64(16, this.maxReachUs);
    return Buffer.from(out.buffer);
  }

  static decode(bytes: Uint8Array): TrackColumns {
    // Typed views need aligned offsets: a blob SQLite hands over in its own buffer is used
    // as it is, any other is copied.
    let buffer: ArrayBuffer;
    if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) buffer = bytes.buffer;
    else buffer = new Uint8Array(bytes).buffer; // a copy (Buffer#slice would share memory)
    const header = new DataView(buffer, 0, HEADER_BYTES);
    const n = header.getUint32(4);
    if (header.getUint32(0) !== FORMAT || buffer.byteLength !== TrackColumns.bytesFor(n)) {
      throw new UnreadableDataError('the index holds a segment in an unknown layout; rebuild it with `hourmeter index rebuild`');
    }
    const c = new TrackColumns(n, buffer);
    c.length = n;
    c.minStartUs = header.getFloat64(8);
    c.maxReachUs = header.getFloat64(16);
    return c;
  }
}

/** Format, track count, earliest start, latest reach (8 bytes each but the first two). */
const HEADER_BYTES = 24;
/** Bumped with the layout; an index holding another is rebuilt by a schema migration. */
const FORMAT = 4;

/** Lifetimes as columns: what the aggregation reads. */
export class LifetimeColumns {
  length = 0;
  start: Float64Array;
  end: Float64Array;
  low: Float64Array;
  high: Float64Array;
  kind: Uint8Array;
  /** The columns are a track segment's own (its default estimate): never written into. */
  shared = false;
  namespace: Int32Array;
  user: Int32Array;
  group: Int32Array;
  job: Int32Array;
  component: Int32Array;
  flavour: Int32Array;

  constructor(readonly capacity: number) {
    this.start = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
    this.low = new Float64Array(capacity);
    this.high = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.namespace = new Int32Array(capacity);
    this.user = new Int32Array(capacity);
    this.group = new Int32Array(capacity);
    this.job = new Int32Array(capacity);
    this.component = new Int32Array(capacity);
    this.flavour = new Int32Array(capacity);
  }

  get full(): boolean {
    return this.length === this.capacity;
  }

  push(l: Lifetime, names: NameWriter): void {
    const i = this.length++;
    this.start[i] = l.startUs;
    this.end[i] = l.endUs;
    this.low[i] = l.lowEndUs;
    this.high[i] = l.highEndUs;
    this.kind[i] = END_KIND_CODES[l.endKind];
    this.namespace[i] = names.intern(l.namespace);
    this.user[i] = l.user === null ? NO_NAME : names.intern(l.user);
    this.group[i] = l.group === null ? NO_NAME : names.intern(l.group);
    this.job[i] = names.intern(l.jobId);
    this.component[i] = l.component === null ? NO_NAME : names.intern(l.component);
    this.flavour[i] = names.flavour(l.amounts);
  }
}

export const END_KIND_CODES = { ended: 0, open: 1, vanished: 2 } as const;

const orNull = (x: number): number | null => (Number.isNaN(x) ? null : x);

/**
 * Estimates the lifetimes of a set of track columns (the columnar lifetimesOf, with the
 * same estimateEnd). The attribution columns are shared, not copied: `out` is valid until
 * the next call.
 */
export function estimateColumns(t: TrackColumns, opts: EstimateOptions, out: LifetimeColumns): LifetimeColumns {
  // The default estimate is stored with the tracks: read as it is, unless a row was blanked.
  if (opts.gapPolicy === DEFAULT_ESTIMATE.gapPolicy && opts.gcWindowUs === DEFAULT_ESTIMATE.gcWindowUs && t.defaultKind.subarray(0, t.length).indexOf(NOT_HELD) < 0) {
    const view = new LifetimeColumns(0);
    view.shared = true;
    view.length = t.length;
    view.start = t.start;
    view.end = t.defaultEnd;
    view.low = t.defaultLow;
    view.high = t.defaultHigh;
    view.kind = t.defaultKind;
    attribute(view, t, (column) => column);
    return view;
  }
  if (out.shared || out.capacity < t.length) out = new LifetimeColumns(t.length);
  /** Rows kept, listed only once one was dropped (rare: a blanked row). */
  const keep: number[] = [];
  out.length = estimateRows(t, opts, out, keep);
  // Every row kept: the tracks' own columns. Rarely a stored track holds nothing under its
  // state (a blanked row), and the rows kept are copied.
  if (out.length === t.length) attribute(out, t, (column) => column);
  else attribute(out, t, (column) => Int32Array.from(keep, (i) => column[i]!));
  return out;
}

/** Gives lifetimes the attribution columns of their tracks: the same arrays, or the rows kept. */
function attribute(out: LifetimeColumns, t: TrackColumns, pick: (column: Int32Array) => Int32Array): void {
  out.namespace = pick(t.namespace);
  out.user = pick(t.user);
  out.group = pick(t.group);
  out.job = pick(t.job);
  out.component = pick(t.component);
  out.flavour = pick(t.flavour);
}

/**
 * The loop of estimateColumns, alone in its function: V8 optimises a long loop while it
 * runs it, and code after the loop that had never run would undo that on every call.
 * Returns the rows written; `keep` gets the rows kept once one was dropped.
 */
function estimateRows(t: TrackColumns, opts: EstimateOptions, out: LifetimeColumns, keep: number[]): number {
  const e: EndEstimate = { endUs: 0, lowEndUs: 0, highEndUs: 0, endKind: 'ended' };
  let n = 0;
  for (let i = 0; i < t.length; i++) {
    if (!estimateRow(t, i, opts, e)) {
      if (n === i) for (let k = 0; k < i; k++) keep.push(k);
      continue;
    }
    out.start[n] = t.start[i]!;
    out.end[n] = e.endUs;
    out.low[n] = e.lowEndUs;
    out.high[n] = e.highEndUs;
    out.kind[n] = e.endKind === 'ended' ? ENDED : e.endKind === 'open' ? OPEN : VANISHED;
    if (n !== i) keep.push(i);
    n++;
  }
  return n;
}

/** Row i of a set of tracks through estimateEnd, with the GC window its flags pick by default. */
function estimateRow(t: TrackColumns, i: number, opts: EstimateOptions, e: EndEstimate): boolean {
  const flags = t.flags[i]!;
  return estimateEnd(
    STATES[t.state[i]!]!, t.start[i]!, orNull(t.lastHolding[i]!), orNull(t.end[i]!), orNull(t.next[i]!), (flags & LISTED_TERMINAL) !== 0,
    opts.gcWindowUs ?? gcWindowFor((flags & KUBERNETES) !== 0, NEXT_KINDS[(flags >> 1) & 3]!), opts.gapPolicy, e,
  );
}

const { ended: ENDED, open: OPEN, vanished: VANISHED } = END_KIND_CODES;

/** What most reports use, and what TrackColumns keeps precomputed. */
export const DEFAULT_ESTIMATE: EstimateOptions = { gapPolicy: 'midpoint', gcWindowUs: null };
/** A stored default estimate's kind for a row that holds nothing (a blanked one). */
const NOT_HELD = 255;
const SCRATCH_ESTIMATE: EndEstimate = { endUs: 0, lowEndUs: 0, highEndUs: 0, endKind: 'ended' };

/** Packs Track objects (the index-free path) into columns with an in-memory dictionary. */
export function* trackColumnsOf(tracks: Iterable<Track>, names: NameWriter, batch = 4096): Generator<TrackColumns> {
  let c = new TrackColumns(batch);
  for (const t of tracks) {
    c.push(t, t.lastHoldingUs, names);
    if (c.full) {
      yield c;
      c = new TrackColumns(batch);
    }
  }
  if (c.length > 0) yield c;
}
