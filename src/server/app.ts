import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { openIndexStore } from '../history/sqlite.js';
import type { HistoryCatalogue, HistoryStore, ProgressSink } from '../history/store.js';
import { listSnapshots } from '../snapshots/files.js';
import { closest } from '../util/closest.js';
import { formatTimestamp } from '../util/time.js';
import type { QuotaRequest } from '../quota/decide.js';
import type { QuotaConfig } from '../quota/policy.js';
import { parseHours, parseRequest } from '../quota/request.js';
import type { UserDirectory } from '../userdb/directory.js';
import { AnswerCache } from './answer-cache.js';
import { QueryPool } from './query-pool.js';
import { ProcessMetrics } from './process-metrics.js';
import { JournalCounts, watcherMetrics } from '../snapshots/journal-counts.js';
import { errorResponse, JSON_TYPE, type ApiResponse, type QuotaQuestion } from './queries.js';
import { cookie, HubClient, HubRefused, newState, readCookie, signValue, verifyValue, viaHttps, type HubSettings, type HubUser } from './jupyterhub.js';
import { renderQuotaAdminPage, renderQuotaPage, type QuotaPageData } from '../reports/quota-page.js';
import type { QuotaReport } from '../quota/service.js';

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
  /**
   * The PostgreSQL store in place of the folder: serve works on its copy of the store's
   * index at `copyPath`, which the query workers open.
   */
  store?: { connect(): Promise<pg.Client>; copyPath: string } | null;
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
  /** Run as a JupyterHub-managed service (its pages, OAuth and tokens); null otherwise. */
  hub?: HubSettings | null;
}

export interface QuotaOptions {
  /** The quota file as last read successfully (re-read when it changes). */
  config: () => QuotaConfig;
  /** The user database (groups) and the quota tokens: a folder, or the PostgreSQL store. */
  users: UserDirectory;
}

/**
 * Who a request speaks for: the admin token sees everything, a user token one user's quota,
 * a hub user (a hub token, or the service's session) their own quota, or everyone's when
 * the hub makes them admin or the quota file names one of their groups under `admins`.
 */
type Principal = { kind: 'admin' } | { kind: 'user'; user: string } | { kind: 'hub'; user: string };

const SESSION_COOKIE = 'hourmeter-session';
const STATE_COOKIE = 'hourmeter-oauth-state';
/** How long a login lasts; the hub is asked again for the user's groups and admin flag on every page. */
const SESSION_MS = 8 * 3600_000;
/** How long a login may take between leaving for the hub and coming back. */
const STATE_MS = 10 * 60_000;
/** The pages: no request leaves them, nothing runs in them, nobody frames them. */
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** Bodies of POST /quota/check are small JSON objects. */
const MAX_BODY = 64 * 1024;

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const stored = o.store ? await openPostgresHistory(o.store) : null;
  const store: HistoryStore = stored ?? openIndexStore(o.dbPath);
  const dbPath = o.store ? o.store.copyPath : o.dbPath;
  let unnamedFiles = 0;
  /** Bumped when an ingest changed the index: cached answers of older generations are stale. */
  let generation = 0;
  const cache = new AnswerCache();
  const inflight = new Map<string, Promise<ApiResponse>>();

  const refresh = async (): Promise<void> => {
    // The store lists its own captures.
    const listing = stored ? { files: [], unnamed: [], folders: [] } : await listSnapshots(o.snapshots, '--snapshots', { stat: false }).catch(() => null);
    if (!listing) return;
    unnamedFiles = listing.unnamed.length;
    const r = await store.append(listing, { dir: o.snapshots, warn: o.io.warn, note: o.io.warn, progress: o.progress?.() });
    if (r.mode !== 'none') {
      generation++;
      cache.clear();
    }
  };
  await refresh();
  const pool = new QueryPool(dbPath, o.workers);
  const processMetrics = new ProcessMetrics();
  const journals = new JournalCounts();
  let refreshing: Promise<void> | null = null;
  const timer = setInterval(() => {
    refreshing ??= refresh()
      .catch((e: Error) => o.io.warn(`updating the index failed: ${e.message}`))
      .finally(() => (refreshing = null));
  }, o.refreshMs);
  timer.unref();

  const hub = o.hub ? new HubClient(o.hub) : null;

  const principal = async (req: IncomingMessage, underPrefix: boolean): Promise<Principal | null> => {
    // A hub-managed service is reached through the hub's proxy: nobody is admin without a token.
    if (o.token === null && hub === null) return { kind: 'admin' };
    const token = bearer(req);
    if (token === null) {
      // The service's own pages may ask the API with their session (SameSite=Lax keeps other sites' forms out).
      const session = hub && underPrefix ? verifyValue(hub.settings.cookieKey, readCookie(req, SESSION_COOKIE) ?? '', Date.now()) : null;
      return session && typeof session.u === 'string' ? { kind: 'hub', user: session.u } : null;
    }
    if (o.token !== null && sameToken(token, o.token)) return { kind: 'admin' };
    const user = o.quota ? await o.quota.users.userOfToken(token) : null;
    if (user !== null) return { kind: 'user', user };
    const hubUser = hub ? await hub.userForToken(token) : null;
    return hubUser === null ? null : { kind: 'hub', user: hubUser.name };
  };

  /** Whether a hub user sees everyone: a hub admin, or a member of a group the quota file names under `admins`. */
  const hubAdmin = (u: HubUser): boolean => u.admin || (o.quota?.config().admins ?? []).some((g) => u.groups.includes(g));

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
      if (who.kind === 'user' && parsed.groups !== null && hub === null) return errorResponse(403, 'groups may be given only with the admin token; a user token is checked against the groups the quota file or the user database gives');
      question = parsed;
    } else return errorResponse(404, `no such path: ${url.pathname}; see GET /quota/<user>, POST /quota/check`);
    if (who.kind === 'user' && who.user !== question.user) return errorResponse(403, `this token may only ask about ${who.user}`);
    let asker: HubUser | null = null;
    if (who.kind === 'hub') {
      asker = await hub!.userModel(who.user);
      if (asker === null) return errorResponse(403, 'the hub no longer knows this token\'s user');
      if (who.user !== question.user && !hubAdmin(asker)) return errorResponse(403, `this token may only ask about ${who.user}`);
    }
    if (hub !== null) {
      // A hub's service takes groups from the hub, read with its own token, whoever asks:
      // a spawn hook naming other groups changes nothing.
      const subject = asker?.name === question.user ? asker : await hub.userModel(question.user);
      question = { ...question, groups: subject?.groups ?? [] };
    }
    return pool.run({ path: url.pathname, query: {}, unnamedFiles, nowMs: o.now(), quota: { ...question, config: q.config(), userdb: await q.users.load() } });
  };

  /**
   * The service's pages under the hub's prefix: `/` (the user's quota), `/admin` (everyone's)
   * and `/oauth_callback`. A browser without a session is sent to the hub to log in.
   */
  const hubPage = async (req: IncomingMessage, res: ServerResponse, url: URL, inner: string): Promise<void> => {
    const h = hub!.settings;
    const nowMs = Date.now();
    const secure = viaHttps(req);
    const html = (status: number, body: string, headers: Record<string, string | string[]> = {}) => {
      res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', ...PAGE_HEADERS, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const refuse = (status: number, why: string, headers: Record<string, string | string[]> = {}) =>
      html(status, messagePage(status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong', why, h.prefix), headers);
    if (inner === '/oauth_callback') {
      const code = url.searchParams.get('code');
      const state = url.searchParams.get('state');
      const saved = verifyValue(h.cookieKey, readCookie(req, STATE_COOKIE) ?? '', nowMs);
      // Single use: whatever happens next, this state is spent.
      const spent = cookie(STATE_COOKIE, '', { path: h.prefix, maxAgeS: 0, secure });
      if (!code || !state || !saved || typeof saved.s !== 'string' || !sameToken(state, saved.s)) {
        return refuse(403, 'This login could not be completed: it was not started here, or it was started too long ago. Open the page again to log in.', { 'Set-Cookie': spent });
      }
      let user: HubUser | null;
      try {
        user = await hub!.userForToken(await hub!.tokenForCode(code));
      } catch (e) {
        if (!(e instanceof HubRefused)) throw e;
        return refuse(403, 'The hub did not accept this login (the code was used already, or is not valid). Open the page again to log in.', { 'Set-Cookie': spent });
      }
      if (user === null) return refuse(403, 'The hub did not grant access to this service.', { 'Set-Cookie': spent });
      const next = typeof saved.n === 'string' && saved.n.startsWith(h.prefix) ? saved.n : h.prefix;
      const session = cookie(SESSION_COOKIE, signValue(h.cookieKey, { u: user.name }, nowMs + SESSION_MS), { path: h.prefix, maxAgeS: SESSION_MS / 1000, secure });
      res.writeHead(302, { Location: next, 'Cache-Control': 'no-store', 'Set-Cookie': [spent, session] });
      return void res.end();
    }
    if (inner !== '/' && inner !== '/admin') return refuse(404, `There is no page ${inner} here.`);
    const session = verifyValue(h.cookieKey, readCookie(req, SESSION_COOKIE) ?? '', nowMs);
    if (!session || typeof session.u !== 'string') {
      // To the hub's authorize endpoint; it sends a logged-out browser to its login first.
      const state = newState();
      const stateCookie = cookie(STATE_COOKIE, signValue(h.cookieKey, { s: state, n: url.pathname }, nowMs + STATE_MS), { path: h.prefix, maxAgeS: STATE_MS / 1000, secure });
      const to = `${h.authorizeUrl}?${new URLSearchParams({ client_id: h.clientId, redirect_uri: h.callbackUrl, response_type: 'code', state })}`;
      res.writeHead(302, { Location: to, 'Cache-Control': 'no-store', 'Set-Cookie': stateCookie });
      return void res.end();
    }
    const user = await hub!.userModel(session.u);
    if (user === null) return refuse(403, 'The hub no longer knows this user.', { 'Set-Cookie': cookie(SESSION_COOKIE, '', { path: h.prefix, maxAgeS: 0, secure }) });
    const admin = hubAdmin(user);
    const q = o.quota!;
    const base = { path: '/quota', query: {}, unnamedFiles, nowMs: o.now() };
    if (inner === '/admin') {
      if (!admin) return refuse(403, 'Only hub admins, and members of the groups the quota file names under "admins", see every user.');
      const r = await pool.run({ ...base, quota: { user: user.name, groups: null, request: null, page: 'admin', config: q.config(), userdb: await q.users.load() } });
      if (r.status !== 200) return refuse(r.status, 'The report could not be made; see the service log.');
      return html(200, renderQuotaAdminPage(JSON.parse(r.body) as QuotaReport, { prefix: h.prefix }));
    }
    const r = await pool.run({ ...base, quota: { user: user.name, groups: user.groups, request: null, page: 'user', config: q.config(), userdb: await q.users.load() } });
    if (r.status !== 200) return refuse(r.status, 'Your quota could not be read; see the service log.');
    html(200, renderQuotaPage(JSON.parse(r.body) as QuotaPageData, { prefix: h.prefix, isAdmin: admin }));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url = new URL(req.url ?? '/', 'http://localhost');
    let underPrefix = false;
    if (hub !== null) {
      // The hub's proxy forwards <prefix>... with the prefix intact: its pages, then the API under it.
      const prefix = hub.settings.prefix;
      const path = url.pathname === prefix.slice(0, -1) ? prefix : url.pathname;
      if (path.startsWith(prefix)) {
        const inner = `/${path.slice(prefix.length)}`;
        if (inner === '/' || inner === '/admin' || inner === '/oauth_callback') {
          if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, errorResponse(405, 'the pages take GET'), { Allow: 'GET, HEAD' });
          return hubPage(req, res, url, inner);
        }
        url = new URL(inner + url.search, 'http://localhost');
        underPrefix = true;
      }
    }
    const quotaPath = o.quota !== null && (url.pathname === '/quota' || url.pathname.startsWith('/quota/'));
    const isQuotaCheck = quotaPath && url.pathname === '/quota/check';
    if (isQuotaCheck ? req.method !== 'POST' : req.method !== 'GET' && req.method !== 'HEAD') {
      return isQuotaCheck ? send(res, errorResponse(405, 'use POST with a JSON body'), { Allow: 'POST' }) : send(res, errorResponse(405, 'the API is read-only: use GET'), { Allow: 'GET, HEAD' });
    }
    const unknown = unknownParameter(url, quotaPath);
    if (url.pathname === '/health') return send(res, unknown ?? health(store.catalogue, o.now(), o.maxAgeUs));
    const who = await principal(req, underPrefix);
    if (who === null) return send(res, errorResponse(401, 'missing or wrong bearer token'), { 'WWW-Authenticate': 'Bearer' });
    if (quotaPath) return send(res, unknown ?? (await quota(req, url, who)));
    // A user token opens the quota endpoints of its own user, and nothing else.
    if (who.kind !== 'admin') return send(res, errorResponse(403, 'this token may only ask about its own quota: GET /quota/<user>, POST /quota/check'));
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
    if (url.pathname === '/metrics' && r.status === 200) {
      const journalFolder = store.journalFolder ? await store.journalFolder().catch(() => null) : o.snapshots;
      const watchers = journalFolder === null ? '' : watcherMetrics(journals.update(journalFolder));
      return send(res, { ...r, body: r.body + watchers + (await processMetrics.text()) });
    }
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
  '/stats': ['from', 'to', 'tz', 'by', 'cluster', 'namespace', 'user', 'group', 'gap-policy', 'gc-window', 'max-gap'],
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

/** The token of `Authorization: Bearer <t>`, or JupyterHub's `Authorization: token <t>`. */
function bearer(req: IncomingMessage): string | null {
  const m = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

const escapeHtml = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A small page saying why not, with the way back. */
function messagePage(title: string, why: string, prefix: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(why)}</p><p><a href="${escapeHtml(prefix)}">Your quota</a></p></body></html>`;
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

/** The PostgreSQL store's history, on a copy of its index in a file the query workers open. */
async function openPostgresHistory(how: NonNullable<ServerOptions['store']>): Promise<HistoryStore> {
  const { PostgresHistoryStore } = await import('../history/postgres-store.js');
  const client = await how.connect();
  try {
    return await PostgresHistoryStore.open(client, { copyPath: how.copyPath });
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
}
