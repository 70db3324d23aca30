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
export const LEGACY_RESOURCES = ['cpu_num', 'cpu_MHz', 'gpu_num', 'memory_MB', 'disk_MB'] as const;
/** Native tuple: [...NATIVE_FIELDS, ...NATIVE_RESOURCES]. */
export const NATIVE_FIELDS = ['id', 'namespace', 'job_id', 'job_name', 'user', 'group', 'component', 'node', 'status', 'start', 'end', 'modified'] as const;
export const NATIVE_RESOURCES = ['cpu_cores', 'cpu_mhz', 'memory_mib', 'disk_mib', 'gpu'] as const;

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
  for (const f of resources) out += ',' + JSON.stringify(res[f] ?? null);
  return out;
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
const LEGACY_MARK = '{"job_ID": ';
const NAME = '"((?:[^"\\\\]|\\\\.)*)"';
const HEAD = new RegExp(`^\\{(?:${NAME}: \\[\\], )*${NAME}: \\[$`);
const SWITCH = new RegExp(`^\\](?:, ${NAME}: \\[\\])*, ${NAME}: \\[$`);
const TAIL = new RegExp(`^\\](?:, ${NAME}: \\[\\])*\\}$`);
const EMPTY_NAMES = new RegExp(`${NAME}: \\[\\]`, 'g');

/**
 * Extracts record tuples, remembering each record's text for one snapshot: the same
 * allocation usually appears byte for byte in the next snapshot, and is then neither
 * scanned field by field nor parsed again. One extractor per reader thread.
 */
export class Extractor {
  private previous = new Map<string, string>();
  private current = new Map<string, string>();
  /** AI4OS records by key (namespace and job id): comparing two texts is far cheaper than hashing one. */
  private previousById = new Map<string, { piece: string; tuple: string }>();
  private currentById = new Map<string, { piece: string; tuple: string }>();
  /** previousById holds exactly the previous file of this batch, so it can serve as a delta base. */
  private canonicalBase = false;
  /** Delta base for files that take the slower paths. */
  private readonly encoder = new DeltaEncoder();

  /** What `pick` makes of one record's text, parsed only when this record is new. */
  private tuple(piece: string, pick: (rec: unknown) => string): string {
    let t = this.current.get(piece) ?? this.previous.get(piece);
    if (t === undefined) t = pick(JSON.parse(piece));
    this.current.set(piece, t);
    return t;
  }

  /** The tuple of an AI4OS record; `unchanged` says whether the previous file had it byte for byte. */
  private legacyTuple(key: string, piece: string): { tuple: string; unchanged: boolean } {
    if (this.currentById.has(key)) throw new ScanError('the same job twice in one file'); // left to the general path
    const seen = this.previousById.get(key);
    if (seen !== undefined && seen.piece === piece) {
      this.currentById.set(key, seen);
      return { tuple: seen.tuple, unchanged: true };
    }
    const tuple = pickLegacy(JSON.parse(piece));
    this.currentById.set(key, { piece, tuple });
    return { tuple, unchanged: false };
  }

  /** Every record's line (tests and one-off reads). */
  extract(text: string): Extract {
    const wire = this.read(text, true);
    const { full: _, gone: __, lines, ...head } = wire;
    return { ...head, lines: lines.length > 0 ? lines.split('\n') : [] } as Extract;
  }

  /**
   * What a reader thread sends for one file: the records new or changed since the previous
   * file it read, or all of them when `fresh` (the previous file it read is not the
   * previous snapshot, as at the start of a batch).
   */
  read(text: string, fresh: boolean): WireSnapshot {
    if (fresh) this.encoder.reset();
    const deltaBase = this.canonicalBase && !fresh;
    this.currentById = new Map();
    try {
      const wire = this.legacyCanonical(text, deltaBase);
      if (wire) {
        this.previousById = this.currentById;
        this.canonicalBase = true;
        this.encoder.reset();
        return wire;
      }
    } catch (e) {
      if (!(e instanceof ScanError) && !(e instanceof SyntaxError)) throw e;
    }
    this.canonicalBase = false;
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
  private legacyCanonical(text: string, delta: boolean): WireSnapshot | null {
    let at = text.indexOf(LEGACY_MARK);
    if (at < 0 || !text.startsWith('{"') || !text.endsWith('}')) return null;
    const namespaces: string[] = [];
    const lines: string[] = [];
    const names = (glue: string): string[] => {
      const found: string[] = [];
      for (const m of glue.matchAll(EMPTY_NAMES)) found.push(JSON.parse(`"${m[1]}"`) as string);
      return found;
    };
    const head = HEAD.exec(text.slice(0, at));
    if (!head) throw new ScanError('unexpected AI4OS head');
    namespaces.push(...names(text.slice(0, at)));
    const firstNs = JSON.parse(`"${head[2]}"`) as string;
    namespaces.push(firstNs);
    // A namespace key twice: JSON.parse keeps the last list only, so leave it to JSON.parse.
    const checkUnique = () => {
      if (new Set(namespaces).size !== namespaces.length) throw new ScanError('a namespace key twice');
    };
    let nsText = JSON.stringify(firstNs);
    for (;;) {
      const next = text.indexOf(LEGACY_MARK, at + 1);
      // Where this record ends, and what separates it from the next one.
      let end: number;
      let glue: RegExpExecArray | null = null;
      if (next < 0) {
        end = text.lastIndexOf('}', text.length - 2) + 1;
        if (!TAIL.test(text.slice(end))) throw new ScanError('unexpected AI4OS tail');
      } else if (text.charCodeAt(next - 1) === 32 && text.charCodeAt(next - 2) === 44 && text.charCodeAt(next - 3) === 125) {
        end = next - 2; // "}, {" between two records of one namespace
      } else {
        end = text.lastIndexOf('}', next) + 1;
        glue = SWITCH.exec(text.slice(end, next));
        if (!glue) throw new ScanError('unexpected separator between AI4OS records');
      }
      // The key is the namespace and the raw text of job_ID, which comes first: `{"job_ID": "<id>", ...`.
      const idEnd = text.indexOf(', "', at + LEGACY_MARK.length);
      if (idEnd < 0 || idEnd > end) throw new ScanError('an AI4OS record without fields after job_ID');
      const idText = text.slice(at + LEGACY_MARK.length, idEnd);
      const { tuple, unchanged } = this.legacyTuple(nsText + idText, text.slice(at, end));
      if (!(delta && unchanged)) lines.push(legacyLine(nsText, idText, tuple));
      if (next < 0) {
        namespaces.push(...names(text.slice(end)));
        checkUnique();
        break;
      }
      if (glue) {
        namespaces.push(...names(glue[0]));
        const ns = JSON.parse(`"${glue[2]}"`) as string;
        namespaces.push(ns);
        nsText = JSON.stringify(ns);
      }
      at = next;
    }
    const gone: string[] = [];
    if (delta) for (const key of this.previousById.keys()) if (!this.currentById.has(key)) gone.push(key);
    return { kind: 'legacy', namespaces, full: !delta, lines: lines.join('\n'), gone: gone.join('\n') };
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
    const header: Record<string, unknown> = {};
    let format: unknown;
    let version: unknown;
    let sawAllocations = false;
    sc.object((key) => {
      if (key === 'allocations') {
        sawAllocations = true;
        sc.array(() => lines.push(record(nativeLine)));
      } else if (key === 'format') format = JSON.parse(sc.rawValue());
      else if (key === 'version') version = JSON.parse(sc.rawValue());
      else if (key === 'captured_at' || key === 'source' || key === 'scope' || key === 'queued') header[key] = JSON.parse(sc.rawValue());
      else sc.skipValue();
    });
    sc.end();
    // Anything unusual is left to the slow path, which gives the precise error.
    if (format !== NATIVE_FORMAT || version !== NATIVE_VERSION || !sawAllocations || !hasNamespaceList(header.scope)) {
      sc.fail('not a plain native snapshot');
    }
    return { kind: 'native', header: header as unknown as NativeHeader, lines };
  }
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
 * first file of a batch is sent whole (`full`).
 */
export type WireSnapshot = (Omit<Extract & { kind: 'legacy' }, 'lines'> | Omit<Extract & { kind: 'native' }, 'lines'>) & {
  full: boolean;
  /** Lines joined by "\n". */
  lines: string;
  /** Keys joined by "\n". */
  gone: string;
};

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
    for (let line of x.lines) {
      const sep = line.indexOf(KEY_END);
      let key = line.slice(0, sep);
      if (current.has(key)) {
        // The same record key twice in one file: number the repeats so each keeps its line.
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
    return { ...head, full: prev === null, lines: changed.join('\n'), gone: gone.join('\n') };
  }
}
