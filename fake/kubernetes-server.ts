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
  /** Replaces the pods: a new revision. */
  setPods(pods: Pod[]): void;
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
  /** Sorted by namespace/name, as the storage keys iterate. */
  pods: Pod[];
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
  let revisions: Revision[] = [{ rv: 1000, pods: sortPods(options.pods ?? []) }];
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

  function listPods(namespace: string | null, q: URLSearchParams) {
    if (namespace === null && options.clusterWideList === false) {
      throw new ApiError(403, 'Forbidden', 'pods is forbidden: User "token-user" cannot list resource "pods" in API group "" at the cluster scope');
    }
    if (namespace !== null && forbidden.has(namespace)) {
      throw new ApiError(403, 'Forbidden', `pods is forbidden: User "token-user" cannot list resource "pods" in API group "" in the namespace "${namespace}"`);
    }
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = fieldMatcher(q.get('fieldSelector') ?? '');
    const { rev, token } = revisionFor(q);
    const pods = rev.pods.filter(
      (p) =>
        (namespace === null ? !forbidden.has(p.metadata.namespace ?? 'default') : (p.metadata.namespace ?? 'default') === namespace) &&
        matchesLabels(p.metadata.labels ?? {}, labels) &&
        fields(p),
    );
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

  function route(req: IncomingMessage, url: URL, authenticated: boolean): unknown {
    if (req.method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    if (!authenticated) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    const path = url.pathname;
    if (path === '/api/v1/pods') return listPods(null, url.searchParams);
    if (path === '/api/v1/namespaces') return listNamespaces(url.searchParams);
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path);
    if (m) return listPods(decodeURIComponent(m[1]!), url.searchParams);
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
      const body = route(req, url, authenticated);
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
    setPods(pods: Pod[]): void {
      noteNamespaces(pods);
      revisions.push({ rv: current().rv + 1, pods: sortPods(pods) });
      revisions = revisions.slice(-(keep + 1));
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
