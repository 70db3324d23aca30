import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliIO } from '../cli/io.js';
import { updateIndex } from '../cli/history.js';
import { listSnapshots } from '../snapshots/files.js';
import { openIndex, type Db } from '../store/schema.js';
import { formatInstant } from '../util/time.js';
import { QueryPool } from './pool.js';
import { errorResponse, JSON_TYPE, type ApiResponse } from './queries.js';

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
  io: CliIO;
  now: () => number;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

const CACHE_ENTRIES = 256;

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const db = openIndex(o.dbPath);
  let unnamedFiles = 0;
  /** Bumped when an ingest changed the index: cached answers of older generations are stale. */
  let generation = 0;
  const cache = new Map<string, ApiResponse>();
  const inflight = new Map<string, Promise<ApiResponse>>();

  const refresh = async (): Promise<void> => {
    const listing = await listSnapshots(o.snapshots, '--snapshots', { stat: false }).catch(() => null);
    if (!listing) return;
    unnamedFiles = listing.unnamed.length;
    const r = await updateIndex(db, listing, o.io);
    if (r.mode !== 'none') {
      generation++;
      cache.clear();
    }
  };
  await refresh();
  const pool = new QueryPool(o.dbPath, o.workers);
  let refreshing: Promise<void> | null = null;
  const timer = setInterval(() => {
    refreshing ??= refresh()
      .catch((e: Error) => o.io.warn(`updating the index failed: ${e.message}`))
      .finally(() => (refreshing = null));
  }, o.refreshMs);
  timer.unref();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, errorResponse(405, 'the API is read-only: use GET'), { Allow: 'GET, HEAD' });
    if (url.pathname === '/health') return send(res, health(db, o.now()));
    if (o.token !== null && !authorized(req, o.token)) return send(res, errorResponse(401, 'missing or wrong bearer token'), { 'WWW-Authenticate': 'Bearer' });
    const key = url.pathname + url.search;
    const cached = url.pathname === '/metrics' ? undefined : cache.get(key);
    if (cached) return send(res, cached);
    // The same question asked again while it is being answered waits for that answer.
    let answer = inflight.get(key);
    if (!answer) {
      const query: Record<string, string[]> = {};
      for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
      const asked = generation;
      answer = pool.run({ path: url.pathname, query, unnamedFiles, nowMs: o.now() }).finally(() => inflight.delete(key));
      inflight.set(key, answer);
      const r = await answer;
      if (r.status === 200 && url.pathname !== '/metrics' && asked === generation) {
        if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
        cache.set(key, r);
      }
    }
    send(res, await answer);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      // Never a stack trace to the caller: the reason goes to the server's log.
      o.io.warn(`internal error answering ${req.url}: ${e.message}`);
      if (!res.headersSent) send(res, errorResponse(500, 'internal error; see the server log'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await refreshing;
      await pool.close();
      db.close();
    },
  };
}

function send(res: ServerResponse, r: ApiResponse, headers: Record<string, string> = {}): void {
  res.writeHead(r.status, { 'Content-Type': r.type, 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : r.body);
}

function authorized(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Whether the index answers, and how old the latest snapshot is. */
function health(db: Db, nowMs: number): ApiResponse {
  try {
    const latest = db.prepare('SELECT max(coalesce(captured_us, time_us)) AS at, count(*) AS n FROM snapshots WHERE corrupt IS NULL').get() as { at: number | null; n: number };
    const body = {
      status: 'ok',
      index: 'readable',
      snapshots: latest.n,
      latest_snapshot: latest.at === null ? null : formatInstant(latest.at),
      latest_snapshot_age_seconds: latest.at === null ? null : Math.max(0, Math.round(nowMs / 1000 - latest.at / 1e6)),
    };
    return { status: 200, type: JSON_TYPE, body: JSON.stringify(body) + '\n' };
  } catch (e) {
    return { status: 503, type: JSON_TYPE, body: JSON.stringify({ status: 'error', index: `unreadable: ${(e as Error).message}` }) + '\n' };
  }
}
