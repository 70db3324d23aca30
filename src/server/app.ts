import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openIndexStore } from '../history/sqlite.js';
import type { HistoryCatalogue, HistoryStore, ProgressSink } from '../history/store.js';
import { listSnapshots } from '../snapshots/files.js';
import { closest } from '../util/closest.js';
import { formatTimestamp } from '../util/time.js';
import type { QuotaRequest } from '../quota/decide.js';
import type { QuotaConfig } from '../quota/policy.js';
import { parseHours, parseRequest } from '../quota/request.js';
import { userOfToken, type TokenFile } from '../quota/tokens.js';
import { loadUserDb } from '../userdb/store.js';
import { AnswerCache } from './answer-cache.js';
import { QueryPool } from './query-pool.js';
import { ProcessMetrics } from './process-metrics.js';
import { JournalCounts, watcherMetrics } from '../snapshots/journal-counts.js';
import { errorResponse, JSON_TYPE, type ApiResponse, type QuotaQuestion } from './queries.js';

/**
 * `hourmeter serve`: a read-only HTTP API over the index. The main thread routes, checks
 * the token, keeps the index up to date and caches answers until the next ingest changes
 * something; query workers compute the answers.
 */

export interface ServerOptions {
  host: string;
  port: number;
  /** Bearer token required on everything but /health; null for none. */
  token: string | null;
  snapshots: string;
  dbPath: string;
  refreshMs: number;
  workers: number;
  io: { warn: (line: string) => void };
  /** Where an ingest reports its progress (a terminal's bar), if anywhere. */
  progress?: () => ProgressSink | null;
  now: () => number;
  /** How old the latest snapshot may be before /health says "stale" (µs). */
  maxAgeUs: number;
  /** The quota endpoints, with per-user tokens; null when serve runs without --quota. */
  quota: QuotaOptions | null;
}

export interface QuotaOptions {
  /** The quota file as last read successfully (re-read when it changes). */
  config: () => QuotaConfig;
  userdbDir: string;
  tokens: TokenFile;
}

/** Who a request speaks for: the admin token sees everything, a user token one user's quota. */
type Principal = { kind: 'admin' } | { kind: 'user'; user: string };

/** Bodies of POST /quota/check are small JSON objects. */
const MAX_BODY = 64 * 1024;

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const store: HistoryStore = openIndexStore(o.dbPath);
  let unnamedFiles = 0;
  /** Bumped when an ingest changed the index: cached answers of older generations are stale. */
  let generation = 0;
  const cache = new AnswerCache();
  const inflight = new Map<string, Promise<ApiResponse>>();

  const refresh = async (): Promise<void> => {
    const listing = await listSnapshots(o.snapshots, '--snapshots', { stat: false }).catch(() => null);
    if (!listing) return;
    unnamedFiles = listing.unnamed.length;
    const r = await store.append(listing, { dir: o.snapshots, warn: o.io.warn, note: o.io.warn, progress: o.progress?.() });
    if (r.mode !== 'none') {
      generation++;
      cache.clear();
    }
  };
  await refresh();
  const pool = new QueryPool(o.dbPath, o.workers);
  const processMetrics = new ProcessMetrics();
  const journals = new JournalCounts();
  let refreshing: Promise<void> | null = null;
  const timer = setInterval(() => {
    refreshing ??= refresh()
      .catch((e: Error) => o.io.warn(`updating the index failed: ${e.message}`))
      .finally(() => (refreshing = null));
  }, o.refreshMs);
  timer.unref();

  const principal = (req: IncomingMessage): Principal | null => {
    if (o.token === null) return { kind: 'admin' };
    const token = bearer(req);
    if (token === null) return null;
    if (sameToken(token, o.token)) return { kind: 'admin' };
    const user = o.quota ? userOfToken(o.quota.tokens.current(), token) : null;
    return user === null ? null : { kind: 'user', user };
  };

  /** GET /quota/<user> (what `quota show` prints) and POST /quota/check (what `quota check` decides). */
  const quota = async (req: IncomingMessage, url: URL, who: Principal): Promise<ApiResponse> => {
    const q = o.quota!;
    const parts = url.pathname.split('/').filter(Boolean);
    let question: Omit<QuotaQuestion, 'config' | 'userdb'>;
    if (parts.length === 2 && parts[1] !== 'check') {
      let user: string;
      try {
        user = decodeURIComponent(parts[1]!);
      } catch {
        return errorResponse(400, 'the user name in the path is not valid percent-encoding');
      }
      question = { user, groups: null, request: null };
    } else if (parts.length === 2) {
      const body = await readJson(req);
      if (typeof body === 'string') return errorResponse(400, body);
      const parsed = checkBody(body);
      if (typeof parsed === 'string') return errorResponse(400, parsed);
      if (who.kind === 'user' && parsed.groups !== null) return errorResponse(403, 'groups may be given only with the admin token; a user token is checked against the groups the quota file or the user database gives');
      question = parsed;
    } else return errorResponse(404, `no such path: ${url.pathname}; see GET /quota/<user>, POST /quota/check`);
    if (who.kind === 'user' && who.user !== question.user) return errorResponse(403, `this token may only ask about ${who.user}`);
    return pool.run({ path: url.pathname, query: {}, unnamedFiles, nowMs: o.now(), quota: { ...question, config: q.config(), userdb: loadUserDb(q.userdbDir) } });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const quotaPath = o.quota !== null && (url.pathname === '/quota' || url.pathname.startsWith('/quota/'));
    const isQuotaCheck = quotaPath && url.pathname === '/quota/check';
    if (isQuotaCheck ? req.method !== 'POST' : req.method !== 'GET' && req.method !== 'HEAD') {
      return isQuotaCheck ? send(res, errorResponse(405, 'use POST with a JSON body'), { Allow: 'POST' }) : send(res, errorResponse(405, 'the API is read-only: use GET'), { Allow: 'GET, HEAD' });
    }
    const unknown = unknownParameter(url, quotaPath);
    if (url.pathname === '/health') return send(res, unknown ?? health(store.catalogue, o.now(), o.maxAgeUs));
    const who = principal(req);
    if (who === null) return send(res, errorResponse(401, 'missing or wrong bearer token'), { 'WWW-Authenticate': 'Bearer' });
    if (quotaPath) return send(res, unknown ?? (await quota(req, url, who)));
    // A user token opens the quota endpoints of its own user, and nothing else.
    if (who.kind === 'user') return send(res, errorResponse(403, 'this token may only ask about its own quota: GET /quota/<user>, POST /quota/check'));
    if (unknown) return send(res, unknown);
    const key = url.pathname + url.search;
    const cached = url.pathname === '/metrics' ? undefined : cache.get(key);
    if (cached) return send(res, cached);
    // The same question asked again while it is being answered waits for that answer.
    let answer = inflight.get(key);
    if (!answer) {
      // No prototype: a parameter named __proto__ or constructor is a name like any other.
      const query: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
      for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
      const asked = generation;
      answer = pool.run({ path: url.pathname, query, unnamedFiles, nowMs: o.now() }).finally(() => inflight.delete(key));
      inflight.set(key, answer);
      const r = await answer;
      if (r.status === 200 && url.pathname !== '/metrics' && asked === generation) {
        cache.set(key, r);
      }
    }
    const r = await answer;
    // The index's metrics come from a worker; the process's must be read here, where it runs.
    if (url.pathname === '/metrics' && r.status === 200) return send(res, { ...r, body: r.body + watcherMetrics(journals.update(o.snapshots)) + (await processMetrics.text()) });
    send(res, r);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      // A client that hung up mid-request is no fault of ours, and has nobody to answer.
      if (req.destroyed || res.destroyed || (e as NodeJS.ErrnoException).code === 'ECONNRESET' || e.message === 'aborted') return;
      // Never a stack trace to the caller: the reason goes to the server's log.
      o.io.warn(`internal error answering ${req.url}: ${e.message}`);
      if (!res.headersSent) send(res, errorResponse(500, 'internal error; see the server log'));
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => resolve());
    });
  } catch (e) {
    // Port taken or not allowed: the workers and the timer must not keep the process alive.
    clearInterval(timer);
    await pool.close();
    store.close();
    throw e;
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await refreshing;
      await pool.close();
      store.close();
    },
  };
}

/**
 * The query parameters each route takes. A misspelt one is refused rather than ignored: the
 * answer to `/stats?form=...` would otherwise be a report of another period.
 */
const PARAMETERS = {
  '/stats': ['from', 'to', 'tz', 'by', 'namespace', 'user', 'group', 'gap-policy', 'gc-window', 'max-gap'],
  '/report/monthly': ['tz'],
  '/health': [],
  '/metrics': [],
  '/quota': [],
} as const satisfies Record<string, readonly string[]>;

/** Which entry of PARAMETERS a path falls under; null for no such path (the 404 says so). */
function routeOf(path: string, quotaPath: boolean): keyof typeof PARAMETERS | null {
  if (quotaPath) return '/quota';
  if (path === '/stats' || path === '/health' || path === '/metrics') return path;
  if (path === '/report/monthly' || path.startsWith('/report/monthly/')) return '/report/monthly';
  return null;
}

/** A 400 naming the query parameters the route does not take, or null when it takes them all. */
function unknownParameter(url: URL, quotaPath: boolean): ApiResponse | null {
  const route = routeOf(url.pathname, quotaPath);
  if (route === null) return null;
  const takes: readonly string[] = PARAMETERS[route];
  const unknown = [...new Set(url.searchParams.keys())].filter((k) => !takes.includes(k));
  if (unknown.length === 0) return null;
  const names = unknown.map((k) => JSON.stringify(k)).join(', ');
  const known = takes.length === 0 ? 'takes no parameters' : `takes ${takes.join(', ')}`;
  const near = unknown.length === 1 ? closest(unknown[0]!, takes) : null;
  return errorResponse(400, `unknown parameter${unknown.length === 1 ? '' : 's'} ${names}: ${url.pathname} ${known}${near === null ? '' : `; did you mean "${near}"?`}`);
}

function send(res: ServerResponse, r: ApiResponse, headers: Record<string, string> = {}): void {
  res.writeHead(r.status, { 'Content-Type': r.type, 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : r.body);
}

function bearer(req: IncomingMessage): string | null {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

function sameToken(token: string, expected: string): boolean {
  const a = Buffer.from(token);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The request body as JSON, or why not. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return `the body is larger than ${MAX_BODY} bytes`;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return 'the body is not JSON: send e.g. {"user": "alice", "request": "cpu=2,memory=4GiB", "hours": 2}';
  }
}

/** The body of POST /quota/check: the CLI's flags as fields. */
function checkBody(body: unknown): Omit<QuotaQuestion, 'config' | 'userdb'> | string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'the body must be a JSON object such as {"user": "alice", "request": "cpu=2", "hours": 2}';
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['user', 'groups', 'request', 'hours'].includes(k)) return `unknown field "${k}": use user, groups, request, hours`;
  if (typeof b.user !== 'string' || b.user.trim() === '') return 'user: give the user name as a string';
  let groups: string[] | null = null;
  if (b.groups !== undefined && b.groups !== null) {
    if (typeof b.groups === 'string') groups = b.groups.split(',').map((g) => g.trim()).filter(Boolean);
    else if (Array.isArray(b.groups) && b.groups.every((g) => typeof g === 'string')) groups = b.groups as string[];
    else return 'groups: give a list of group names, or a comma-separated string';
  }
  let requestText = '';
  if (typeof b.request === 'string') requestText = b.request;
  else if (b.request !== undefined && b.request !== null) {
    if (typeof b.request !== 'object' || Array.isArray(b.request)) return 'request: give "cpu=2,memory=4GiB" or {"cpu": 2, "memory": "4GiB"}';
    requestText = Object.entries(b.request as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`).join(',');
  }
  const amounts = parseRequest(requestText);
  if (typeof amounts === 'string') return `request: ${amounts}`;
  let hoursUs: number | null = null;
  if (b.hours !== undefined && b.hours !== null) {
    const h = parseHours(String(b.hours));
    if (typeof h === 'string') return `hours: ${h}`;
    hoursUs = h;
  }
  const request: QuotaRequest = { amounts, hoursUs };
  return { user: b.user.trim(), groups, request };
}

/**
 * Whether the index answers, and how old the latest snapshot is: "stale" past the max age (as
 * `hourmeter check` fails), or with no snapshot at all. Stale is still 200: the server answers,
 * and a liveness probe must not restart it because the captures stopped; 503 only when the
 * index cannot be read.
 */
function health(catalogue: HistoryCatalogue, nowMs: number, maxAgeUs: number): ApiResponse {
  try {
    const readable = catalogue.readable();
    const ageUs = readable.latestUs === null ? null : nowMs * 1000 - readable.latestUs;
    const body = {
      status: ageUs === null || ageUs > maxAgeUs ? 'stale' : 'ok',
      index: 'readable',
      snapshots: readable.count,
      latest_snapshot: readable.latestUs === null ? null : formatTimestamp(readable.latestUs),
      latest_snapshot_age_seconds: ageUs === null ? null : Math.max(0, Math.round(ageUs / 1e6)),
      max_age_seconds: maxAgeUs / 1e6,
    };
    return { status: 200, type: JSON_TYPE, body: JSON.stringify(body) + '\n' };
  } catch (e) {
    return { status: 503, type: JSON_TYPE, body: JSON.stringify({ status: 'error', index: `unreadable: ${(e as Error).message}` }) + '\n' };
  }
}
