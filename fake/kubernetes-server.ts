/**
 * A fake Kubernetes API server for tests: HTTPS on 127.0.0.1, bearer tokens and client
 * certificates, and the pod list with chunking as the real API server does it.
 *
 *   const k8s = await startFakeKubernetes({ tls: { key, cert, ca }, tokens: ['s3cret'], pods });
 *   ... GET `${k8s.url}/api/v1/pods?limit=500` with Authorization: Bearer s3cret ...
 *   k8s.setPods(later);              // a new resourceVersion
 *   await k8s.close();
 *
 * Lists are consistent snapshots: every page of one list is cut from the revision its first
 * page saw, named by an opaque continue token. A token expires after `continueTtlMs`, or
 * once its revision is older than the `keepRevisions` kept (as etcd compaction does), and
 * is then answered with 410 Gone; the client must start the list again.
 *
 * Watch. `GET /api/v1/pods?watch=1&resourceVersion=RV&allowWatchBookmarks=true` (and
 * `/api/v1/namespaces/<ns>/pods?watch=1...`, with labelSelector and fieldSelector as lists
 * take them) answers 200 and holds the connection open, writing one JSON line per event:
 * `{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":...}`.
 *   - Events are the differences between consecutive revisions (setPods), in storage-key
 *     order: a new pod is ADDED, any change of a pod's object is MODIFIED, a pod gone is
 *     DELETED with its final object, stamped with the delete's `deletionTimestamp` and a
 *     grace period of 0 (the `now` option's clock; a pod re-created under the same name with a new uid is
 *     DELETED then ADDED). Every object carries `metadata.resourceVersion`: the revision it
 *     last changed in (for DELETED, the revision of the delete). Revisions are decimal
 *     strings counting up from 1000; a list's `metadata.resourceVersion` is its revision.
 *     Listed objects are served as given, without a resourceVersion of their own.
 *   - With selectors, a pod that starts matching arrives as ADDED and one that stops
 *     matching as DELETED (with its new object), as the API server filters.
 *   - `resourceVersion=RV` streams every event after RV. None, or `0`, first sends every
 *     current pod as ADDED. An RV older than the `keepRevisions` kept gets 410 Gone
 *     ("too old resource version"), by default as HTTP 410 with a Status body; with
 *     `expiredAs: 'event'` as a 200 stream whose one line is
 *     `{"type":"ERROR","object":<the Status>}`, then the stream ends. Both happen for real.
 *   - With `allowWatchBookmarks=true`: `{"type":"BOOKMARK","object":{"kind":"Pod",
 *     "apiVersion":"v1","metadata":{"resourceVersion":"<latest>"}}}` every `bookmarkMs`
 *     (option, default 60000), and at once when a setPods brings the watch no event (so a
 *     filtered watch still advances).
 *   - `timeoutSeconds=N` ends the stream cleanly after N seconds; otherwise `watchTimeoutMs`
 *     (option, default none) does.
 *
 *   k8s.openWatches                  how many watches are open
 *   k8s.stallWatches()               open watches stay connected but get nothing, not even
 *                                    bookmarks or their timeout's end
 *   k8s.dropWatches()                a network cut: open watches are cut
 *   k8s.expireWatches(n, 'status')   the next n watch requests get 410 whatever their RV,
 *   k8s.expireWatches(n, 'event')    as an HTTP status or as an ERROR event
 *
 * Pods for a simulated history: podsAt() in kubernetes-pods.ts gives the pods at an instant,
 * for setPods at each instant of the history.
 */

import { createServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Pod } from '../src/sources/kubernetes/types.js';
import { clampDelay, Faults, MAX_DELAY_MS, retryAfterHeader, sameToken, type FaultControl } from './faults.js';

export interface FakeKubernetesOptions {
  tls: {
    key: string | Buffer;
    cert: string | Buffer;
    /** CA that client certificates must chain to; set it to accept client certificates. */
    ca?: string | Buffer;
  };
  /** Bearer tokens accepted, each for a user named by its position (`token-user-0`, ...). */
  tokens?: string[];
  pods?: Pod[];
  /** Namespaces that exist without pods (a namespace once holding pods stays too). */
  namespaces?: string[];
  /** Namespaces the credentials cannot list pods in (403). */
  forbiddenNamespaces?: string[];
  /** Whether pods may be listed across all namespaces (a ClusterRole); default true. */
  clusterWideList?: boolean;
  /** Whether namespaces may be listed; default true. */
  namespaceList?: boolean;
  /** Server-side cap on page size. */
  pageSizeLimit?: number;
  /** How long a continue token stays valid (default 5 minutes). */
  continueTtlMs?: number;
  /** Past revisions a continue token may still read (default 10; 0 keeps only the current one). */
  keepRevisions?: number;
  latencyMs?: number;
  /** How a watch from an expired resourceVersion gets its 410: HTTP status (default) or ERROR event. */
  expiredAs?: 'status' | 'event';
  /** Interval of bookmarks on watches that allow them (default 60000). */
  bookmarkMs?: number;
  /** Server-side end of every watch without timeoutSeconds (default: none). */
  watchTimeoutMs?: number;
  /**
   * The server's clock (ms since the epoch) for a simulated history: replies' Date header and
   * the time of deletes. Moved by setNow and setPods(pods, atMs). Default: the real clock.
   */
  now?: number;
}

export interface FakeKubernetesRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Index of the accepted token used, null when none matched or none was sent. */
  token: number | null;
  bearer: boolean;
  /** Whether the client presented a certificate the server verified. */
  clientCert: boolean;
  /** Response status; null while pending or when the connection was reset. */
  status: number | null;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

export interface FakeKubernetes {
  readonly url: string;
  readonly port: number;
  /** Every request received, oldest first (the last 10000). */
  readonly requests: FakeKubernetesRequest[];
  readonly faults: FaultControl;
  /** Current resourceVersion. */
  readonly resourceVersion: number;
  /** Replaces the pods: a new revision, whose changes go out to open watches. */
  setPods(pods: Pod[], atMs?: number): void;
  /** Sets the simulated clock (see the `now` option). */
  setNow(ms: number): void;
  /** Open watches. */
  readonly openWatches: number;
  /** Open watches stay connected but receive nothing more. Returns how many. */
  stallWatches(): number;
  /** Open watches are cut (a network cut). Returns how many. */
  dropWatches(): number;
  /** The next `times` watch requests get 410 Gone, as an HTTP status or as an ERROR event. */
  expireWatches(times?: number, as?: 'status' | 'event'): void;
  setTokens(tokens: string[]): void;
  /** Called for each request before it is answered (a test may change the pods there). */
  onRequest(listener: ((req: FakeKubernetesRequest) => void) | null): void;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

interface Revision {
  rv: number;
  /** The server's clock when the revision was made (ms): a pod deleted in it was deleted then. */
  atMs: number;
  /** Sorted by namespace/name, as the storage keys iterate. */
  pods: Pod[];
  /** The same pods by key, each carrying the resourceVersion it last changed in. */
  stamped: Map<string, Pod>;
}

type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface WatchEvent {
  type: WatchEventType;
  /** The object before and after the change (null when absent). */
  before: Pod | null;
  after: Pod | null;
}

const MAX_LOGGED = 10_000;
const key = (p: Pod) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

function sortPods(pods: Pod[]): Pod[] {
  return [...pods].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------
// Selectors

type Requirement = { key: string; op: 'in' | 'notin' | 'exists' | '!exists'; values: string[] };

/** Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-joined. */
export function parseLabelSelector(text: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      let m = /^(!?)([\w./-]+)$/.exec(p);
      if (m) return { key: m[2]!, op: m[1] ? '!exists' : 'exists', values: [] };
      m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p);
      if (m) return { key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] };
      m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p);
      if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
      throw new ApiError(400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(p)}`);
    });
}

function matchesLabels(labels: Record<string, string>, reqs: Requirement[]): boolean {
  return reqs.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    if (r.op === 'exists') return has;
    if (r.op === '!exists') return !has;
    if (r.op === 'in') return has && r.values.includes(labels[r.key]!);
    return !has || !r.values.includes(labels[r.key]!);
  });
}

const POD_FIELDS: Record<string, (p: Pod) => string> = {
  'metadata.name': (p) => p.metadata.name,
  'metadata.namespace': (p) => p.metadata.namespace ?? 'default',
  'spec.nodeName': (p) => p.spec?.nodeName ?? '',
  'status.phase': (p) => p.status?.phase ?? '',
};

/** Field selectors on pods: `field=value`, `field==value`, `field!=value`, comma-joined. */
function fieldMatcher(text: string): (p: Pod) => boolean {
  const tests = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
      if (!m) throw new ApiError(400, 'BadRequest', `invalid field selector: ${JSON.stringify(t)}`);
      const get = POD_FIELDS[m[1]!];
      if (!get) throw new ApiError(400, 'BadRequest', `field label not supported: ${m[1]}`);
      const want = m[3]!;
      return m[2] === '!=' ? (p: Pod) => get(p) !== want : (p: Pod) => get(p) === want;
    });
  return (p) => tests.every((t) => t(p));
}

// ---------------------------------------------------------------------------------------

interface ContinueToken {
  rv: number;
  /** Key of the last item returned; the next page starts after it. */
  after: string;
  issuedMs: number;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decodeContinue(text: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as ContinueToken;
    if (Number.isInteger(t.rv) && typeof t.after === 'string' && Number.isFinite(t.issuedMs)) return t;
  } catch {
    // reported below
  }
  throw new ApiError(400, 'BadRequest', 'continue key is not valid');
}

/** The object of a pod deleted at `atMs`: a deletionTimestamp already due stays, a later one is brought forward. */
function deletedAt(p: Pod, atMs: number): Pod {
  const stamp = new Date(Math.floor(atMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const due = p.metadata.deletionTimestamp && Date.parse(p.metadata.deletionTimestamp) <= atMs;
  return due ? { ...p, metadata: { ...p.metadata, deletionGracePeriodSeconds: 0 } } : { ...p, metadata: { ...p.metadata, deletionTimestamp: stamp, deletionGracePeriodSeconds: 0 } };
}

const withResourceVersion = (p: Pod, rv: number): Pod => ({ ...p, metadata: { ...p.metadata, resourceVersion: String(rv) } });

/** A revision; a pod unchanged since `prev` keeps the resourceVersion it had there. */
function makeRevision(rv: number, pods: Pod[], prev: Revision | null, atMs: number): Revision {
  const sorted = sortPods(pods);
  const before = new Map((prev?.pods ?? []).map((p) => [key(p), JSON.stringify(p)]));
  const stamped = new Map<string, Pod>();
  for (const p of sorted) {
    const k = key(p);
    const same = prev !== null && before.get(k) === JSON.stringify(p);
    stamped.set(k, same ? prev.stamped.get(k)! : withResourceVersion(p, rv));
  }
  return { rv, atMs, pods: sorted, stamped };
}

/** What changed from `prev` to `rev`, in storage-key order. */
function changes(prev: Revision, rev: Revision): WatchEvent[] {
  const keys = [...new Set([...prev.stamped.keys(), ...rev.stamped.keys()])].sort();
  const out: WatchEvent[] = [];
  for (const k of keys) {
    const before = prev.stamped.get(k) ?? null;
    const after = rev.stamped.get(k) ?? null;
    if (before === after) continue;
    // A deleted object's last resourceVersion is that of its delete, and it carries the
    // delete's time with a grace period of 0, as the kubelet's final (or a forced) delete leaves it.
    const gone = before && deletedAt(withResourceVersion(before, rev.rv), rev.atMs);
    if (!before) out.push({ type: 'ADDED', before: null, after });
    else if (!after) out.push({ type: 'DELETED', before: gone, after: null });
    else if (before.metadata.uid !== after.metadata.uid) out.push({ type: 'DELETED', before: gone, after: null }, { type: 'ADDED', before: null, after });
    else out.push({ type: 'MODIFIED', before, after });
  }
  return out;
}

export async function startFakeKubernetes(options: FakeKubernetesOptions): Promise<FakeKubernetes> {
  let tokens = [...(options.tokens ?? [])];
  const ttlMs = options.continueTtlMs ?? 300_000;
  const keep = Math.max(0, options.keepRevisions ?? 10);
  const latencyMs = clampDelay(options.latencyMs, 'latencyMs');
  const forbidden = new Set(options.forbiddenNamespaces ?? []);
  // A namespace outlives its pods: once seen, it stays.
  const namespaces = new Set(options.namespaces ?? []);
  const noteNamespaces = (pods: Pod[]) => pods.forEach((p) => namespaces.add(p.metadata.namespace ?? 'default'));
  noteNamespaces(options.pods ?? []);
  let simulatedMs = options.now ?? null;
  const clockMs = () => simulatedMs ?? Date.now();
  let revisions: Revision[] = [makeRevision(1000, options.pods ?? [], null, clockMs())];
  const current = () => revisions[revisions.length - 1]!;
  const requests: FakeKubernetesRequest[] = [];
  const faults = new Faults();
  let listener: ((req: FakeKubernetesRequest) => void) | null = null;

  function pageSize(q: URLSearchParams): number {
    const raw = q.get('limit');
    let n = raw !== null && /^\d+$/.test(raw) ? Number(raw) : 0;
    if (options.pageSizeLimit !== undefined && (n === 0 || n > options.pageSizeLimit)) n = options.pageSizeLimit;
    return n;
  }

  /** One page of a list; `all` is the revision's items, already filtered by the query. */
  function page<T>(all: T[], keyOf: (item: T) => string, rv: number, token: ContinueToken | null, limit: number, estimate: boolean) {
    const from = token === null ? 0 : all.findIndex((it) => keyOf(it) > token.after);
    const start = from < 0 ? all.length : from;
    const items = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const rest = all.length - start - items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (rest > 0) {
      metadata.continue = encodeContinue({ rv, after: keyOf(items[items.length - 1]!), issuedMs: token?.issuedMs ?? Date.now() });
      if (estimate) metadata.remainingItemCount = rest;
    }
    return { metadata, items };
  }

  /** The revision a list reads: the current one, or the one its continue token names. */
  function revisionFor(q: URLSearchParams): { rev: Revision; token: ContinueToken | null } {
    const raw = q.get('continue');
    if (!raw) return { rev: current(), token: null };
    const token = decodeContinue(raw);
    const rev = revisions.find((r) => r.rv === token.rv);
    if (!rev || Date.now() - token.issuedMs >= ttlMs) {
      throw new ApiError(410, 'Expired', 'the continue token has expired (its resourceVersion is no longer kept); start the list again without it');
    }
    return { rev, token };
  }

  /** Which pods a list or watch of `namespace` (null: all) with the query's selectors sees; checks access. */
  function podFilter(namespace: string | null, q: URLSearchParams, verb: 'list' | 'watch'): (p: Pod) => boolean {
    if (namespace === null && options.clusterWideList === false) {
      throw new ApiError(403, 'Forbidden', `pods is forbidden: User "token-user" cannot ${verb} resource "pods" in API group "" at the cluster scope`);
    }
    if (namespace !== null && forbidden.has(namespace)) {
      throw new ApiError(403, 'Forbidden', `pods is forbidden: User "token-user" cannot ${verb} resource "pods" in API group "" in the namespace "${namespace}"`);
    }
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = fieldMatcher(q.get('fieldSelector') ?? '');
    return (p) =>
      (namespace === null ? !forbidden.has(p.metadata.namespace ?? 'default') : (p.metadata.namespace ?? 'default') === namespace) &&
      matchesLabels(p.metadata.labels ?? {}, labels) &&
      fields(p);
  }

  function listPods(namespace: string | null, q: URLSearchParams) {
    const visible = podFilter(namespace, q, 'list');
    const { rev, token } = revisionFor(q);
    const pods = rev.pods.filter(visible);
    const selectors = !!(q.get('labelSelector') || q.get('fieldSelector'));
    const { metadata, items } = page(pods, key, rev.rv, token, pageSize(q), !selectors);
    return { kind: 'PodList', apiVersion: 'v1', metadata, items };
  }

  function listNamespaces(q: URLSearchParams) {
    if (options.namespaceList === false) {
      throw new ApiError(403, 'Forbidden', 'namespaces is forbidden: User "token-user" cannot list resource "namespaces" in API group "" at the cluster scope');
    }
    const { rev, token } = revisionFor(q);
    const names = [...namespaces].sort();
    const { metadata, items } = page(names, (n) => n, rev.rv, token, pageSize(q), true);
    return { kind: 'NamespaceList', apiVersion: 'v1', metadata, items: items.map((name) => ({ metadata: { name }, status: { phase: 'Active' } })) };
  }

  // ---- Watch -------------------------------------------------------------------------
  const bookmarkMs = options.bookmarkMs ?? 60_000;
  if (!(Number.isInteger(bookmarkMs) && bookmarkMs > 0)) throw new RangeError(`bookmarkMs must be a positive integer, got ${bookmarkMs}`);
  const watchTimeoutMs = options.watchTimeoutMs ?? null;
  if (watchTimeoutMs !== null && !(Number.isInteger(watchTimeoutMs) && watchTimeoutMs > 0)) {
    throw new RangeError(`watchTimeoutMs must be a positive integer, got ${watchTimeoutMs}`);
  }
  const expiredAs = options.expiredAs ?? 'status';
  /** How the next watch requests are made to expire, one entry each. */
  const forcedExpiries: ('status' | 'event')[] = [];

  interface Watch {
    res: ServerResponse;
    /** The last revision this watch has been sent. */
    at: number;
    visible: (p: Pod) => boolean;
    bookmarks: boolean;
    timers: NodeJS.Timeout[];
    /** Connected but served nothing (stallWatches). */
    stalled: boolean;
  }
  const watches = new Set<Watch>();
  const WATCHING = Symbol('watching');
  // Go's strconv.ParseBool, as the API server parses `watch` and `allowWatchBookmarks`.
  const isTrue = (v: string | null) => v !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v);

  function endWatch(w: Watch, cut: boolean): void {
    w.timers.forEach((t) => clearTimeout(t));
    w.timers = [];
    watches.delete(w);
    if (cut) w.res.destroy();
    else w.res.end();
  }

  function writeEvent(w: Watch, type: string, object: unknown): void {
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  function bookmark(w: Watch): void {
    writeEvent(w, 'BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(w.at) } });
  }

  /** A change as a watch with selectors sees it: pods entering the selection are added, those leaving it deleted. */
  function seenAs(e: WatchEvent, visible: (p: Pod) => boolean): { type: WatchEventType; object: Pod } | null {
    const was = e.before !== null && visible(e.before);
    const is = e.after !== null && visible(e.after);
    if (was && is) return { type: 'MODIFIED', object: e.after! };
    if (is) return { type: 'ADDED', object: e.after! };
    if (was) return { type: 'DELETED', object: e.after ?? e.before! };
    return null;
  }

  /** Sends the watch every revision after the last it was sent; a bookmark when they bring it nothing. */
  function deliver(w: Watch): void {
    let advanced = false;
    let sent = 0;
    for (let i = 1; i < revisions.length; i++) {
      const rev = revisions[i]!;
      if (rev.rv <= w.at) continue;
      advanced = true;
      for (const e of changes(revisions[i - 1]!, rev)) {
        const seen = seenAs(e, w.visible);
        if (seen) {
          writeEvent(w, seen.type, seen.object);
          sent++;
        }
      }
    }
    w.at = Math.max(w.at, current().rv);
    if (advanced && sent === 0 && w.bookmarks) bookmark(w);
  }

  function expiredStatus(message: string) {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Expired', code: 410 };
  }

  function openWatch(namespace: string | null, q: URLSearchParams, res: ServerResponse, rec: FakeKubernetesRequest): void {
    const visible = podFilter(namespace, q, 'watch');
    const rawRv = q.get('resourceVersion') ?? '';
    if (rawRv !== '' && !/^\d+$/.test(rawRv)) throw new ApiError(400, 'BadRequest', `invalid resource version ${JSON.stringify(rawRv)}: it must be a resourceVersion from a list or an event`);
    const rawTimeout = q.get('timeoutSeconds') ?? '';
    if (rawTimeout !== '' && !/^\d+$/.test(rawTimeout)) throw new ApiError(400, 'BadRequest', `invalid timeoutSeconds ${JSON.stringify(rawTimeout)}: it must be a whole number of seconds`);
    const rv = rawRv === '' ? 0 : Number(rawRv);
    const oldest = revisions[0]!.rv;
    const forced = forcedExpiries.shift();
    const expired = forced ?? (rv !== 0 && rv < oldest ? expiredAs : null);
    if (expired !== null) {
      const message = `too old resource version: ${rv} (${oldest})`;
      if (expired === 'status') throw new ApiError(410, 'Expired', message);
      rec.status = 200;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: expiredStatus(message) })}\n`);
      return;
    }
    rec.status = 200;
    // No Content-Length: Node sends the stream chunked.
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    // The client sees the watch open before any event, as the API server flushes its headers.
    res.flushHeaders();
    const w: Watch = { res, at: rv, visible, bookmarks: isTrue(q.get('allowWatchBookmarks')), timers: [], stalled: false };
    watches.add(w);
    res.on('close', () => {
      w.timers.forEach((t) => clearTimeout(t));
      watches.delete(w);
    });
    if (w.bookmarks) w.timers.push(setInterval(() => bookmark(w), bookmarkMs));
    const timeoutMs = rawTimeout !== '' && rawTimeout !== '0' ? Number(rawTimeout) * 1000 : watchTimeoutMs;
    if (timeoutMs !== null) w.timers.push(setTimeout(() => endWatch(w, false), Math.min(timeoutMs, 2 ** 31 - 1)));
    if (rv === 0) {
      // No resourceVersion (or 0): the current state first, as ADDED events.
      const now = current();
      for (const p of now.pods) if (visible(p)) writeEvent(w, 'ADDED', now.stamped.get(key(p)));
      w.at = now.rv;
    }
    deliver(w);
  }

  function route(req: IncomingMessage, res: ServerResponse, url: URL, authenticated: boolean, rec: FakeKubernetesRequest): unknown {
    if (req.method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    if (!authenticated) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    const path = url.pathname;
    const watch = isTrue(url.searchParams.get('watch'));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
    if (path === '/api/v1/pods' || m) {
      const namespace = m ? decodeURIComponent(m[1]!) : null;
      if (!watch) return listPods(namespace, url.searchParams);
      openWatch(namespace, url.searchParams, res, rec);
      return WATCHING;
    }
    if (path === '/api/v1/namespaces') {
      if (watch) throw new ApiError(405, 'MethodNotAllowed', 'this fake server watches pods only');
      return listNamespaces(url.searchParams);
    }
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }

  function send(res: ServerResponse, rec: FakeKubernetesRequest, status: number, body: unknown, text?: string, headers: Record<string, string> = {}): void {
    if (res.destroyed) return;
    const payload = text ?? JSON.stringify(body);
    rec.status = status;
    res.writeHead(status, { 'Content-Type': text === undefined ? 'application/json' : 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(payload), ...headers });
    res.end(payload);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (simulatedMs !== null) res.setHeader('Date', new Date(simulatedMs).toUTCString());
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const socket = req.socket as TLSSocket;
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' && /^Bearer\s+\S/i.test(auth);
    const given = bearer ? auth!.replace(/^Bearer\s+/i, '') : null;
    const index = given === null ? -1 : tokens.findIndex((t) => sameToken(given, t));
    const rec: FakeKubernetesRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      token: index < 0 ? null : index,
      bearer,
      clientCert: options.tls.ca !== undefined && socket.authorized === true,
      status: null,
      at: Date.now(),
    };
    requests.push(rec);
    if (requests.length > MAX_LOGGED) requests.splice(0, requests.length - MAX_LOGGED);
    listener?.(rec);
    const fault = faults.take(url.pathname);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'hang') return; // never answered; close() ends the connection
    const delay = latencyMs + (fault?.kind === 'slow' ? clampDelay(fault.ms, 'slow fault ms') : 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, MAX_DELAY_MS)));
    if (fault?.kind === 'status') return send(res, rec, fault.status, null, fault.body ?? `injected fault: HTTP ${fault.status}`, retryAfterHeader(fault));
    if (fault?.kind === 'body') {
      if (res.destroyed) return;
      rec.status = 200;
      res.writeHead(200, { 'Content-Type': fault.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(fault.body), ...fault.headers });
      res.end(fault.body);
      return;
    }
    // A presented bearer token that is wrong is refused even with a good certificate, as the API server does.
    const authenticated = (bearer && index >= 0) || (!bearer && rec.clientCert);
    try {
      const body = route(req, res, url, authenticated, rec);
      if (body === WATCHING) return;
      const given = url.searchParams.get('continue');
      if (fault?.kind === 'repeat-token' && given) (body as { metadata: Record<string, unknown> }).metadata.continue = given;
      if (fault?.kind === 'truncate') {
        const text = JSON.stringify(body);
        rec.status = 200;
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
        res.write(text.slice(0, Math.floor(text.length / 2)), () => res.destroy());
        return;
      }
      send(res, rec, 200, body);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      send(res, rec, e.code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: e.message, reason: e.reason, code: e.code });
    }
  }

  const tlsOptions: ServerOptions = {
    key: options.tls.key,
    cert: options.tls.cert,
    // The API server asks for a client certificate but does not require one: tokens work too.
    ...(options.tls.ca !== undefined ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: false } : {}),
  };
  const server = createServer(tlsOptions, (req, res) => {
    req.resume();
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return void res.destroy();
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(err instanceof Error ? err.message : String(err));
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    faults,
    get resourceVersion() {
      return current().rv;
    },
    setPods(pods: Pod[], atMs?: number): void {
      if (atMs !== undefined) simulatedMs = atMs;
      noteNamespaces(pods);
      // Watches are served before compaction: they read the changes against the revision before.
      revisions.push(makeRevision(current().rv + 1, pods, current(), clockMs()));
      for (const w of [...watches]) if (!w.stalled && !w.res.destroyed) deliver(w);
      revisions = revisions.slice(-(keep + 1));
    },
    setNow(ms: number): void {
      simulatedMs = ms;
    },
    get openWatches() {
      return watches.size;
    },
    stallWatches(): number {
      const open = [...watches];
      // Still connected, but no longer served: no events, bookmarks or timeout.
      for (const w of open) {
        w.timers.forEach((t) => clearTimeout(t));
        w.timers = [];
        w.stalled = true;
      }
      return open.length;
    },
    dropWatches(): number {
      const open = [...watches];
      for (const w of open) endWatch(w, true);
      return open.length;
    },
    expireWatches(times = 1, as: 'status' | 'event' = expiredAs): void {
      for (let i = 0; i < times; i++) forcedExpiries.push(as);
    },
    setTokens(next: string[]): void {
      tokens = [...next];
    },
    onRequest(fn): void {
      listener = fn;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
