import { isAscii } from 'node:buffer';
import { NATIVE_ORDER, RESOURCES } from '../accounting/resources.js';
import { detectKind, FormatError } from './detect.js';
import { NATIVE_FORMAT, NATIVE_VERSION } from './format.js';
import { Scanner, ScanError } from './scan.js';

/**
 * Step one of reading a snapshot, run in reader threads: pull out of each record only the
 * fields accounting reads, as one line of JSON per record (a "tuple"). The main thread
 * turns tuples into observations, and parses a line only when it differs from the previous
 * snapshot's (most allocations look the same from one snapshot to the next).
 */

/**
 * Each record becomes one line `<key>\x01<tuple>`: a short key that names the record (its
 * namespace and job id, or its allocation id) and the tuple, a JSON array of the fields
 * accounting reads. A raw control character cannot occur in JSON text, so \x01 and \n are
 * safe separators.
 *
 * Legacy AI4OS tuple: [namespace, ...LEGACY_FIELDS, ...LEGACY_RESOURCES].
 */
export const KEY_END = '\x01';
export const LEGACY_FIELDS = ['job_ID', 'name', 'status', 'owner', 'alloc_ID', 'alloc_start', 'alloc_end'] as const;
export const LEGACY_RESOURCES = RESOURCES.map((r) => r.legacy);
/** Native tuple: [...NATIVE_FIELDS, ...NATIVE_RESOURCES]. */
export const NATIVE_FIELDS = ['id', 'namespace', 'job_id', 'job_name', 'user', 'group', 'component', 'node', 'status', 'start', 'end', 'modified'] as const;
export const NATIVE_RESOURCES = NATIVE_ORDER.map((r) => r.native.field);

export interface NativeHeader {
  captured_at: unknown;
  source: unknown;
  scope: unknown;
  queued: unknown;
}

export type Extract =
  | { kind: 'legacy'; namespaces: string[]; lines: string[] }
  | { kind: 'native'; header: NativeHeader; lines: string[] };

/** Raw JSON texts of the wanted fields of one parsed record; absent fields become `null`. */
function pickFields(rec: unknown, fields: readonly string[], resources: readonly string[]): string {
  const r = (rec !== null && typeof rec === 'object' && !Array.isArray(rec) ? rec : {}) as Record<string, unknown>;
  const res = (r.resources !== null && typeof r.resources === 'object' ? r.resources : {}) as Record<string, unknown>;
  let out = '';
  for (const f of fields) out += (out ? ',' : '') + JSON.stringify(r[f] ?? null);
  for (const f of resources) out += ',' + amountText(res[f]);
  return out;
}

/**
 * An amount's JSON text. JSON.parse reads an overlong number such as 1e999 as Infinity,
 * which JSON.stringify would turn into null (a missing field): it is kept as 1e999, which
 * parses back to Infinity, so that the record is skipped as implausible, not as incomplete.
 */
function amountText(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return v > 0 ? '1e999' : '-1e999';
  return JSON.stringify(v ?? null);
}

const field = (rec: unknown, name: string): string =>
  JSON.stringify(rec !== null && typeof rec === 'object' ? ((rec as Record<string, unknown>)[name] ?? null) : null);

/** A legacy record's line within namespace `nsText` (the namespace as JSON text). */
const legacyLine = (nsText: string, idText: string, fields: string): string => `${nsText}${idText}${KEY_END}[${nsText},${fields}]`;
const pickLegacy = (rec: unknown): string => pickFields(rec, LEGACY_FIELDS, LEGACY_RESOURCES);
/** The job id's JSON text, KEY_END, then the fields: the id may hold commas. */
const pickLegacyWithId = (rec: unknown): string => `${field(rec, 'job_ID')}${KEY_END}${pickLegacy(rec)}`;
const nativeLine = (rec: unknown): string => `${field(rec, 'id')}${KEY_END}[${pickFields(rec, NATIVE_FIELDS, NATIVE_RESOURCES)}]`;

/** AI4OS files are Python `json.dumps` output: `{"ns": [{"job_ID": ...}, ...], ...}`. */
const LEGACY_MARK = Buffer.from('{"job_ID": ');
const LEGACY_ID_END = Buffer.from(', "');
const NAME = '"((?:[^"\\\\]|\\\\.)*)"';
const HEAD = new RegExp(`^\\{(?:${NAME}: \\[\\], )*${NAME}: \\[$`);
const SWITCH = new RegExp(`^\\](?:, ${NAME}: \\[\\])*, ${NAME}: \\[$`);
const TAIL = new RegExp(`^\\](?:, ${NAME}: \\[\\])*\\}$`);
const EMPTY_NAMES = new RegExp(`${NAME}: \\[\\]`, 'g');

/** Native files as hourmeter writes them: compact JSON, `"allocations":[{"id":"...`. */
const NATIVE_START = Buffer.from('{"format":');
const NATIVE_LIST = Buffer.from('"allocations":[');
const NATIVE_FIRST = Buffer.from('{"id":"');
/** Between two records; the quote after the colon means the id is a string. */
const NATIVE_NEXT = Buffer.from('},{"id":"');

const QUOTE = 34;
const BACKSLASH = 92;

/**
 * A file's text as JSON.parse must see it. AI4OS files are ASCII (Python escapes the rest),
 * and latin1 decodes ASCII faster than utf8.
 */
export function decodeText(bytes: Buffer): string {
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/**
 * Part of a file's bytes as text. The fast paths cut files only next to ASCII characters
 * (brackets, quotes, commas), where UTF-8 decoding starts afresh, so each part decodes to
 * exactly the same characters as within the whole file.
 */
const utf8 = (bytes: Buffer, start: number, end?: number): string => bytes.toString('utf8', start, end);

/** Where the object that starts at `i` ends; brackets inside strings do not count. */
function objectEnd(b: Buffer, i: number): number {
  let depth = 0;
  for (; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) {
      for (;;) {
        i = b.indexOf(QUOTE, i + 1);
        if (i < 0) throw new ScanError('unterminated string');
        let k = i - 1;
        while (b[k] === BACKSLASH) k--;
        if ((i - 1 - k) % 2 === 0) break;
      }
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      if (--depth === 0) return i + 1;
    }
  }
  throw new ScanError('unexpected end');
}

/**
 * A record seen in the previous file: where its bytes are (the file's buffer stays alive
 * for one more file, which is cheaper than copying thousands of records out of it) and
 * its line.
 */
interface Seen {
  bytes: Buffer;
  start: number;
  end: number;
  line: string;
}

/**
 * Extracts record tuples, remembering each record's text for one snapshot: the same
 * allocation usually appears byte for byte in the next snapshot, and is then neither
 * scanned field by field nor parsed again. One extractor per reader thread.
 */
export class Extractor {
  private previous = new Map<string, string>();
  private current = new Map<string, string>();
  /** Records of the fast paths by key: comparing two byte ranges is far cheaper than hashing one. */
  private previousById = new Map<string, Seen>();
  private currentById = new Map<string, Seen>();
  /** previousById holds exactly the previous file of this batch, so it can serve as a delta base. */
  private canonicalBase = false;
  /** Delta base for files that take the slower paths. */
  private readonly encoder = new DeltaEncoder();
  /** Two read buffers, lent file after file (see scratch), so reading allocates nothing. */
  private readonly buffers: Buffer[] = [];
  /** The memory the records of previousById point into, which the next read must leave alone. */
  private base: ArrayBufferLike | null = null;

  /** A buffer of at least `size` bytes to read the next file into: never the previous file's. */
  readonly scratch = (size: number): Buffer => {
    const i = this.buffers[0] !== undefined && this.buffers[0].buffer === this.base ? 1 : 0;
    let b = this.buffers[i];
    // Some room to spare, so that slightly larger files do not each allocate a new one.
    if (b === undefined || b.length < size) b = this.buffers[i] = Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
    return b;
  };

  /** What `pick` makes of one record's text, parsed only when this record is new. */
  private tuple(piece: string, pick: (rec: unknown) => string): string {
    let t = this.current.get(piece) ?? this.previous.get(piece);
    if (t === undefined) t = pick(JSON.parse(piece));
    this.current.set(piece, t);
    return t;
  }

  /**
   * The line of the record at bytes [start, end) with key `key`, from the previous file when
   * it had the same bytes, else `make` of the parsed record. `unchanged` says whether the
   * previous file had the same line.
   */
  private record(key: string, bytes: Buffer, start: number, end: number, make: (rec: unknown) => string): { line: string; unchanged: boolean } {
    if (this.currentById.has(key)) throw new ScanError('the same record key twice in one file'); // left to the general path
    const seen = this.previousById.get(key);
    let line: string;
    if (seen !== undefined && seen.end - seen.start === end - start && bytes.compare(seen.bytes, seen.start, seen.end, start, end) === 0) {
      line = seen.line;
    } else {
      line = make(JSON.parse(utf8(bytes, start, end)));
    }
    this.currentById.set(key, { bytes, start, end, line });
    return { line, unchanged: seen?.line === line };
  }

  /** Every record's line (tests and one-off reads). */
  extract(text: string): Extract {
    const wire = this.read(text, true);
    const { full: _, gone: __, lines, ...head } = wire;
    return { ...head, lines } as Extract;
  }

  /** As readBytes, from text (tests and one-off reads). */
  read(text: string, fresh: boolean): WireSnapshot {
    // A lone surrogate has no UTF-8 form: such text goes straight to the general paths.
    return /\p{Cs}/u.test(text) ? this.readSlow(text, fresh) : this.readBytes(Buffer.from(text, 'utf8'), fresh, text);
  }

  /**
   * What a reader thread sends for one file: the records new or changed since the previous
   * file it read, or all of them when `fresh` (the previous file it read is not the
   * previous snapshot, as at the start of a batch). The fast paths work on the bytes, so
   * a reader never holds a file as one large string unless it must fall back.
   */
  readBytes(bytes: Buffer, fresh: boolean, text?: string): WireSnapshot {
    const deltaBase = this.canonicalBase && !fresh;
    this.currentById = new Map();
    try {
      const wire = (startsWith(bytes, NATIVE_START) ? this.nativeCanonical(bytes, deltaBase) : null) ?? this.legacyCanonical(bytes, deltaBase);
      if (wire) {
        this.previousById = this.currentById;
        this.base = bytes.buffer;
        this.canonicalBase = true;
        this.encoder.reset();
        return wire;
      }
    } catch (e) {
      if (!(e instanceof ScanError) && !(e instanceof SyntaxError)) throw e;
    }
    return this.readSlow(text ?? decodeText(bytes), fresh);
  }

  /** The general paths: walk the structure, or parse it all. */
  private readSlow(text: string, fresh: boolean): WireSnapshot {
    if (fresh) this.encoder.reset();
    this.canonicalBase = false;
    // Nothing may point into a buffer the next read overwrites.
    this.previousById = new Map();
    this.base = null;
    let x: Extract;
    try {
      x = this.scan(text);
    } catch (e) {
      if (!(e instanceof ScanError) && !(e instanceof SyntaxError)) throw e;
      x = extractFromDocument(JSON.parse(text));
    } finally {
      this.previous = this.current;
      this.current = new Map();
    }
    return this.encoder.encode(x);
  }

  /**
   * The fast path for AI4OS files: records are found by their opening `{"job_ID": ` (a raw
   * quote cannot occur inside a JSON string, so the mark is always structural) and the
   * text between them must be exactly Python's separators. A record split in the wrong place
   * can never parse, so any irregularity ends in a ScanError or SyntaxError and the slow path.
   * With `delta`, only records that differ from the previous file are sent.
   */
  private legacyCanonical(bytes: Buffer, delta: boolean): WireSnapshot | null {
    let at = bytes.indexOf(LEGACY_MARK);
    const n = bytes.length;
    if (at < 0 || bytes[0] !== 123 || bytes[1] !== QUOTE || bytes[n - 1] !== 125) return null;
    const namespaces: string[] = [];
    const lines: string[] = [];
    const names = (glue: string): string[] => {
      const found: string[] = [];
      for (const m of glue.matchAll(EMPTY_NAMES)) found.push(JSON.parse(`"${m[1]}"`) as string);
      return found;
    };
    const headText = utf8(bytes, 0, at);
    const head = HEAD.exec(headText);
    if (!head) throw new ScanError('unexpected AI4OS head');
    namespaces.push(...names(headText));
    const firstNs = JSON.parse(`"${head[2]}"`) as string;
    namespaces.push(firstNs);
    // A namespace key twice: JSON.parse keeps the last list only, so leave it to JSON.parse.
    const checkUnique = () => {
      if (new Set(namespaces).size !== namespaces.length) throw new ScanError('a namespace key twice');
    };
    let nsText = JSON.stringify(firstNs);
    for (;;) {
      const next = bytes.indexOf(LEGACY_MARK, at + 1);
      // Where this record ends, and what separates it from the next one.
      let end: number;
      let glue: RegExpExecArray | null = null;
      if (next < 0) {
        end = bytes.lastIndexOf(125, n - 2) + 1;
        if (!TAIL.test(utf8(bytes, end))) throw new ScanError('unexpected AI4OS tail');
      } else if (bytes[next - 1] === 32 && bytes[next - 2] === 44 && bytes[next - 3] === 125) {
        end = next - 2; // "}, {" between two records of one namespace
      } else {
        end = bytes.lastIndexOf(125, next) + 1;
        glue = SWITCH.exec(utf8(bytes, end, next));
        if (!glue) throw new ScanError('unexpected separator between AI4OS records');
      }
      // The key is the namespace and the raw text of job_ID, which comes first: `{"job_ID": "<id>", ...`.
      const idEnd = bytes.indexOf(LEGACY_ID_END, at + LEGACY_MARK.length);
      if (idEnd < 0 || idEnd > end) throw new ScanError('an AI4OS record without fields after job_ID');
      const idText = utf8(bytes, at + LEGACY_MARK.length, idEnd);
      const ns = nsText;
      const { line, unchanged } = this.record(ns + idText, bytes, at, end, (rec) => legacyLine(ns, idText, pickLegacy(rec)));
      if (!(delta && unchanged)) lines.push(line);
      if (next < 0) {
        namespaces.push(...names(utf8(bytes, end)));
        checkUnique();
        break;
      }
      if (glue) {
        namespaces.push(...names(glue[0]));
        const name = JSON.parse(`"${glue[2]}"`) as string;
        namespaces.push(name);
        nsText = JSON.stringify(name);
      }
      at = next;
    }
    return { kind: 'legacy', namespaces, full: !delta, lines, gone: this.gone(delta) };
  }

  /**
   * The fast path for native files as hourmeter writes them: records are cut at each
   * `},{"id":"` (a raw quote is always structural) and only the last one is walked, to find
   * where the list ends. Each record must then parse as one object, or match byte for byte
   * one that did, so a cut in the wrong place (the mark inside `raw`, say) can never pass.
   * The header is read from the file with the list left out, by the same walk as the
   * general path. Anything else is left to the general path.
   */
  private nativeCanonical(bytes: Buffer, delta: boolean): WireSnapshot | null {
    const open = bytes.indexOf(NATIVE_LIST);
    if (open < 0) return null;
    let at = open + NATIVE_LIST.length;
    const lines: string[] = [];
    let listEnd: number;
    if (bytes[at] === 93 /* ] */) {
      listEnd = at + 1;
    } else {
      if (!startsWith(bytes, NATIVE_FIRST, at)) throw new ScanError('a native record that does not start with its id');
      for (;;) {
        const next = bytes.indexOf(NATIVE_NEXT, at);
        const end = next >= 0 ? next + 1 : objectEnd(bytes, at);
        // The key is the id's JSON text up to the next quote; checked against the parsed record below.
        const idStart = at + NATIVE_FIRST.length - 1;
        const idEnd = bytes.indexOf(QUOTE, idStart + 1) + 1;
        if (idEnd <= 0 || idEnd > end) throw new ScanError('an unterminated native id');
        const key = bytes.toString('latin1', idStart, idEnd);
        const { line, unchanged } = this.record(key, bytes, at, end, (rec) => {
          const made = nativeLine(rec);
          // An id with escapes or non-ASCII text, or a repeated "id" key: the line must be filed
          // under the key the general path would give it.
          if (!made.startsWith(key + KEY_END)) throw new ScanError('a native id that is not what it seems');
          return made;
        });
        if (!(delta && unchanged)) lines.push(line);
        if (next < 0) {
          if (bytes[end] !== 93) throw new ScanError('expected ] after the last native record');
          listEnd = end + 1;
          break;
        }
        at = next + 2;
      }
    }
    // The document without its records: `"allocations":[]` must be a key of the top level.
    const headText = utf8(bytes, 0, open + NATIVE_LIST.length - 1);
    const sc = new Scanner(`${headText}[]${utf8(bytes, listEnd)}`);
    const header = walkNative(sc, () => {
      if (sc.i !== headText.length) sc.fail('another "allocations"');
      sc.skipValue();
    });
    return { kind: 'native', header, full: !delta, lines, gone: this.gone(delta) };
  }

  /** Keys of the previous file's records that this one no longer has (for a delta). */
  private gone(delta: boolean): string[] {
    const gone: string[] = [];
    if (delta) for (const key of this.previousById.keys()) if (!this.currentById.has(key)) gone.push(key);
    return gone;
  }

  /** Any layout: walk the structure, but still take whole records as cache keys. */
  private scan(text: string): Extract {
    const sc = new Scanner(text);
    sc.expect(123);
    const first = sc.peek() === 125 ? null : sc.readString();
    sc.i = 0;
    const lines: string[] = [];
    const record = (pick: (rec: unknown) => string) => {
      const [a, b] = sc.skipValue();
      return this.tuple(text.slice(a, b), pick);
    };
    const legacyRecord = (nsText: string) => {
      const both = record(pickLegacyWithId);
      const cut = both.indexOf(KEY_END);
      return legacyLine(nsText, both.slice(0, cut), both.slice(cut + 1));
    };
    if (first !== 'format') {
      const namespaces: string[] = [];
      sc.object((ns) => {
        if (namespaces.includes(ns)) sc.fail('a namespace key twice');
        namespaces.push(ns);
        if (sc.peek() !== 91 /* [ */) sc.fail('namespace value is not a list');
        const nsText = JSON.stringify(ns);
        sc.array(() => lines.push(legacyRecord(nsText)));
      });
      sc.end();
      return { kind: 'legacy', namespaces, lines };
    }
    const header = walkNative(sc, () => sc.array(() => lines.push(record(nativeLine))));
    return { kind: 'native', header, lines };
  }
}

function startsWith(bytes: Buffer, prefix: Buffer, at = 0): boolean {
  return bytes.length >= at + prefix.length && bytes.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}

/**
 * Walks the top level of a native document: the header fields, and `onAllocations` at the
 * list of records. Anything unusual is left to the slow path, which gives the precise error.
 */
function walkNative(sc: Scanner, onAllocations: () => void): NativeHeader {
  const header: Record<string, unknown> = {};
  let format: unknown;
  let version: unknown;
  let sawAllocations = false;
  sc.object((key) => {
    if (key === 'allocations') {
      // JSON.parse keeps the last of two lists; leave that to it.
      if (sawAllocations) sc.fail('"allocations" twice');
      sawAllocations = true;
      onAllocations();
    } else if (key === 'format') format = JSON.parse(sc.rawValue());
    else if (key === 'version') version = JSON.parse(sc.rawValue());
    else if (key === 'captured_at' || key === 'source' || key === 'scope' || key === 'queued') header[key] = JSON.parse(sc.rawValue());
    else sc.skipValue();
  });
  sc.end();
  if (format !== NATIVE_FORMAT || version !== NATIVE_VERSION || !sawAllocations || !hasNamespaceList(header.scope)) {
    sc.fail('not a plain native snapshot');
  }
  return header as unknown as NativeHeader;
}

function hasNamespaceList(scope: unknown): boolean {
  return scope !== null && typeof scope === 'object' && Array.isArray((scope as { namespaces?: unknown }).namespaces);
}

/** Tuples from an already parsed document (the slow path, and the reference for the fast ones). */
export function extractFromDocument(doc: unknown): Extract {
  const kind = detectKind(doc);
  const obj = doc as Record<string, unknown>;
  if (kind === 'legacy') {
    const lines: string[] = [];
    for (const [ns, jobs] of Object.entries(obj)) {
      const nsText = JSON.stringify(ns);
      for (const job of jobs as unknown[]) lines.push(legacyLine(nsText, field(job, 'job_ID'), pickLegacy(job)));
    }
    return { kind, namespaces: Object.keys(obj), lines };
  }
  // Everything the decoder would refuse is refused here, in the reader, so that a bad file
  // is skipped before it becomes the base of the next file's delta.
  if (!Array.isArray(obj.allocations) || !hasNamespaceList(obj.scope)) {
    throw new FormatError('a native snapshot needs "allocations" and "scope.namespaces" lists');
  }
  const lines = (obj.allocations as unknown[]).map(nativeLine);
  return { kind, header: { captured_at: obj.captured_at, source: obj.source, scope: obj.scope, queued: obj.queued }, lines };
}

/**
 * What a reader thread sends for one file: the lines that are new or changed since the
 * previous file it read in the same batch, and the keys of lines that went away. The
 * first file of a batch is sent whole (`full`). Lines travel as separate strings, not
 * joined: the main thread keeps a record's line as long as the record is listed, and a
 * line cut out of one long message would keep the whole message alive with it.
 */
export type WireSnapshot = (Omit<Extract & { kind: 'legacy' }, 'lines'> | Omit<Extract & { kind: 'native' }, 'lines'>) & {
  full: boolean;
  lines: string[];
  gone: string[];
  /** Record keys listed more than once in this file with different content, and how often. */
  conflicts?: { key: string; times: number }[];
};

/** The allocation id of a legacy tuple line, as JSON text; an empty one is none. */
function legacyAllocation(line: string): string {
  const alloc = (JSON.parse(line.slice(line.indexOf(KEY_END) + 1)) as unknown[])[5];
  return JSON.stringify(alloc === '' ? null : (alloc ?? null));
}

/** A repeat of a record key in one file, numbered `key#2`, `key#3`…; only ids that are strings. */
const REPEAT = /"#\d+$/;
export const isRepeat = (key: string): boolean => REPEAT.test(key);

export class DeltaEncoder {
  private previous: Map<string, string> | null = null;

  /** The next file is sent whole (start of a batch, or a reader that needs every line). */
  reset(): void {
    this.previous = null;
  }

  encode(x: Extract): WireSnapshot {
    const prev = this.previous;
    const current = new Map<string, string>();
    const changed: string[] = [];
    const repeats = new Map<string, { times: number; differ: boolean }>();
    for (let line of x.lines) {
      const sep = line.indexOf(KEY_END);
      let key = line.slice(0, sep);
      let first = current.get(key);
      // An AI4OS job listed again with another allocation is another allocation, keyed apart.
      if (first !== undefined && x.kind === 'legacy') {
        const alloc = legacyAllocation(line);
        if (alloc !== legacyAllocation(first)) {
          key = `${key}@${alloc}`;
          line = key + line.slice(sep);
          first = current.get(key);
        }
      }
      if (first !== undefined) {
        // The same record key twice in one file: number the repeats so each keeps its line
        // (the AI4OS method counts each, as the original did; exact accounting uses the first).
        const r = repeats.get(key) ?? { times: 1, differ: false };
        r.times++;
        r.differ ||= first.slice(first.indexOf(KEY_END)) !== line.slice(sep);
        repeats.set(key, r);
        let n = 2;
        while (current.has(`${key}#${n}`)) n++;
        key = `${key}#${n}`;
        line = key + line.slice(sep);
      }
      current.set(key, line);
      if (prev === null || prev.get(key) !== line) changed.push(line);
    }
    const gone: string[] = [];
    if (prev !== null) for (const key of prev.keys()) if (!current.has(key)) gone.push(key);
    this.previous = current;
    const { lines: _, ...head } = x;
    const conflicts: { key: string; times: number }[] = [];
    for (const [key, r] of repeats) if (r.differ && key.endsWith('"')) conflicts.push({ key, times: r.times });
    return { ...head, full: prev === null, lines: changed, gone, ...(conflicts.length > 0 && { conflicts }) };
  }
}
