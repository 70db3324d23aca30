import { Agent, errors, request, type Dispatcher } from 'undici';

/**
 * What the Nomad and Kubernetes API clients share: an undici agent with keep-alive, timeouts
 * and TLS settings, and a JSON GET with a bounded number of retries with exponential backoff
 * on connection errors, 429 and 5xx (never on other 4xx). Credentials travel in headers and
 * never into a message.
 */

export class ApiHttpError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    /** The network error's code (ECONNREFUSED, a TLS verification code, ...), when there was no reply. */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** Attempts per request, the first included. */
  attempts: number;
  /** First backoff delay; doubled on each retry, with jitter. */
  backoffMs: number;
  /** Per request: time to headers and between body chunks. */
  timeoutMs: number;
  /** Connections kept to the server. */
  connections: number;
  /** Aborts every request and wait once the capture's deadline passes (see DeadlineExceeded). */
  signal?: AbortSignal;
}

/** A 200 whose body is not what the API sends: junk from a proxy, a login page, a broken server. */
export class MalformedReply extends ApiHttpError {
  constructor(label: string, what: string) {
    super(`GET ${label}: ${what}; that is not what the API sends (is another service or a proxy answering at that address?)`, 200);
  }
}

/** Whether `value` is a JSON object (not null, not a list). */
export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether `value` is a non-empty string. */
export const isName = (value: unknown): value is string => typeof value === 'string' && value !== '';

/**
 * The first record of a list page that lacks a field the capture needs, as "record N has
 * no F"; null when every record has them. `fields` are dotted paths (metadata.uid).
 */
export function missingField(items: unknown[], fields: string[]): string | null {
  for (let i = 0; i < items.length; i++) {
    for (const f of fields) {
      let v: unknown = items[i];
      for (const part of f.split('.')) v = isObject(v) ? v[part] : undefined;
      if (!isName(v)) return `record ${i + 1} has no ${f}`;
    }
  }
  return null;
}

/** The longest Retry-After honoured: a server asking for more gets asked again sooner. */
export const MAX_RETRY_AFTER_MS = 30_000;

/** The reason a deadline signal carries: not a failure of one scope, but of the whole capture. */
export class DeadlineExceeded extends Error {}

export const DEFAULT_CLIENT_OPTIONS: ClientOptions = { attempts: 4, backoffMs: 250, timeoutMs: 30_000, connections: 8 };

export interface TlsOptions {
  ca: string | Buffer | (string | Buffer)[] | null;
  cert: string | Buffer | null;
  key: string | Buffer | null;
  serverName: string | null;
  skipVerify: boolean;
}

export interface JsonResponse<T> {
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

export function createAgent(tls: TlsOptions, opts: ClientOptions): Agent {
  return new Agent({
    connections: opts.connections,
    keepAliveTimeout: 30_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: {
      timeout: opts.timeoutMs,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      ...(tls.serverName ? { servername: tls.serverName } : {}),
      rejectUnauthorized: !tls.skipVerify,
    },
  });
}

export interface GetJsonOptions {
  attempts: number;
  backoffMs: number;
  /** Parses a complete body; throwing means the body is incomplete (worth another try). */
  parse: (text: string) => unknown;
  /** What an error reply says, for the message (default: its text, shortened). */
  detail?: (text: string) => string;
  /** Called once per request sent, retries included. */
  onRequest?: () => void;
  /** Called with the headers of every reply, errors included (the server's Date). */
  onReply?: (headers: Record<string, string | string[] | undefined>) => void;
  signal?: AbortSignal;
}

/**
 * What the API clients share: one keep-alive agent, a count of requests sent, and a JSON
 * GET with bounded retries under the client's base address.
 */
/** Kinds of failure whose fix is in the operator's settings, not in the server. */
export type SettingsProblem = 'refused-credentials' | 'unreachable' | 'untrusted-certificate';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** What an error says about the settings, if anything. */
export function settingsProblem(e: ApiHttpError): SettingsProblem | null {
  if (e.status === 401 || e.status === 403) return 'refused-credentials';
  if (e.code !== null && UNREACHABLE.has(e.code)) return 'unreachable';
  if (e.code !== null && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS/.test(e.code)) return 'untrusted-certificate';
  return null;
}

export abstract class JsonApiClient {
  protected readonly dispatcher: Dispatcher;
  /** Requests sent, retries included: the figure the benchmark reports. */
  requests = 0;
  /** Called with the server's clock (its Date header, in ms) whenever a reply carries one (a watcher dates its lines by it). */
  onServerDate: ((ms: number) => void) | null = null;
  /** Failures seen whose fix is in the settings: the final message says how to fix them. */
  readonly problems = new Set<SettingsProblem>();

  constructor(
    tls: TlsOptions,
    protected readonly opts: ClientOptions,
  ) {
    this.dispatcher = createAgent(tls, opts);
  }

  /** The API's base address (no trailing slash). */
  abstract get address(): string;

  /** Waits for requests in flight, unless `now`: then they are cut (a deadline passed). */
  async close(now = false): Promise<void> {
    await (now ? this.dispatcher.destroy() : this.dispatcher.close());
  }

  /** GETs `path` with the query; the label in messages is the path alone. */
  protected async getJson<T>(path: string, params: URLSearchParams, headers: Record<string, string>, opts: Pick<GetJsonOptions, 'parse' | 'detail'>): Promise<JsonResponse<T>> {
    const qs = params.toString();
    try {
      return await getJson<T>(this.dispatcher, `${this.address}${path}${qs ? `?${qs}` : ''}`, path, headers, {
        attempts: this.opts.attempts,
        backoffMs: this.opts.backoffMs,
        ...opts,
        onRequest: () => this.requests++,
        onReply: (h) => this.noteDate(h.date),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
    } catch (e) {
      if (e instanceof ApiHttpError) this.noteProblem(e);
      throw e;
    }
  }

  /**
   * Opens a streaming GET (an event stream, a watch) and hands over its body as it arrives.
   * No body timeout: the caller watches for silence. A refusal or any other non-200 reply
   * rejects with ApiHttpError (its status set), the error body shortened by `detail`.
   */
  protected async openStream(path: string, params: URLSearchParams, headers: Record<string, string>, signal: AbortSignal, detail: (text: string) => string = brief): Promise<AsyncIterable<Uint8Array>> {
    this.requests++;
    let res;
    try {
      res = await request(`${this.address}${path}?${params}`, { method: 'GET', headers, dispatcher: this.dispatcher, signal, bodyTimeout: 0 });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      const err = new ApiHttpError(`GET ${path}: ${describe(e)}`, null, errorCode(e));
      this.noteProblem(err);
      throw err;
    }
    this.noteDate(res.headers.date);
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      const err = new ApiHttpError(`GET ${path}: HTTP ${res.statusCode}${detail(text)}`, res.statusCode);
      this.noteProblem(err);
      throw err;
    }
    return res.body;
  }

  private noteDate(value: string | string[] | undefined): void {
    const ms = Date.parse(Array.isArray(value) ? value[0]! : (value ?? ''));
    if (this.onServerDate && !Number.isNaN(ms)) this.onServerDate(ms);
  }

  /** Remembers a failure whose fix is in the settings. */
  private noteProblem(e: ApiHttpError): void {
    const problem = settingsProblem(e);
    if (problem) this.problems.add(problem);
  }
}

/** Whether a URL carries credentials before its host (`scheme://user:pass@host`). */
export function hasUserInfo(url: string): boolean {
  const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)?.[1] ?? '';
  return authority.includes('@');
}

/** Most pages one listing may take: with a page of 1000 items, a hundred million records. */
export const MAX_PAGES = 100_000;

/**
 * Ends a paged listing that would never end, within a page or two: a next-page token
 * handed out before, or a page that repeats the one before it (by its items' keys), means
 * the server is going round in circles.
 */
export class PageGuard {
  private readonly tokens = new Set<string>();
  private previous: string | null = null;
  private pages = 0;

  constructor(private readonly label: string) {}

  /** Checks one page (its items' keys) and the token it gives for the next one (none: the last page). */
  check(keys: string[], next: string | undefined): void {
    this.pages++;
    const fail = (why: string) => new ApiHttpError(`GET ${this.label}: ${why} (page ${this.pages}); the listing would never end, so it was stopped`, null);
    const signature = keys.join('\u0000');
    if (keys.length > 0 && signature === this.previous) throw fail('the server sent the same page twice in a row');
    this.previous = signature;
    if (next === undefined) return;
    if (this.tokens.has(next)) throw fail('the server handed out a next-page token it had handed out before');
    this.tokens.add(next);
    if (this.pages >= MAX_PAGES) throw fail(`more than ${MAX_PAGES} pages`);
  }
}

/** Query parameters in order, undefined values left out. */
export function queryParams(query: Record<string, string | number | boolean | undefined>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  return params;
}

/** Waits `ms`, or until the signal aborts (then throws its reason). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      signal?.removeEventListener('abort', abort);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/**
 * How long a 429 or 503 asks the client to wait (RFC 9110 Retry-After: seconds or an HTTP
 * date), at most MAX_RETRY_AFTER_MS; null when absent or unreadable.
 */
export function retryAfterMs(value: string | string[] | undefined, nowMs: number): number | null {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return null;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    // An HTTP date names its weekday and month: "-5" or "2025" is not one.
    const when = /[a-z]{3}/i.test(v) ? Date.parse(v) : NaN;
    if (Number.isNaN(when)) return null;
    ms = when - nowMs;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** GETs `url` and parses its JSON; `label` names the request in messages (no query, no secrets). */
export async function getJson<T>(dispatcher: Dispatcher, url: string, label: string, headers: Record<string, string>, opts: GetJsonOptions): Promise<JsonResponse<T>> {
  const detail = opts.detail ?? brief;
  const signal = opts.signal;
  let last: ApiHttpError | null = null;
  let askedWait: number | null = null;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    if (attempt > 1) await sleep(askedWait ?? opts.backoffMs * 2 ** (attempt - 2) * (0.75 + Math.random() * 0.5), signal);
    if (signal?.aborted) throw signal.reason;
    askedWait = null;
    opts.onRequest?.();
    let status: number;
    let text: string;
    let resHeaders: JsonResponse<T>['headers'];
    try {
      const res = await request(url, { method: 'GET', headers, dispatcher, ...(signal ? { signal } : {}) });
      status = res.statusCode;
      resHeaders = res.headers;
      opts.onReply?.(resHeaders);
      text = await res.body.text();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      last = new ApiHttpError(`GET ${label}: ${describe(e)}`, null, errorCode(e));
      continue; // connection reset, refused, timed out, truncated body: worth another try
    }
    if (status === 429 || status >= 500) {
      last = new ApiHttpError(`GET ${label}: HTTP ${status}${detail(text)}`, status);
      // Rate limiters and servers in maintenance say when to come back.
      if (status === 429 || status === 503) askedWait = retryAfterMs(resHeaders['retry-after'], Date.now());
      continue;
    }
    if (status >= 400) throw new ApiHttpError(`GET ${label}: HTTP ${status}${detail(text)}`, status);
    try {
      return { body: opts.parse(text) as T, headers: resHeaders };
    } catch {
      // A web page is not a body cut short: asking again brings the same page.
      if (text.trimStart().startsWith('<')) throw new MalformedReply(label, 'the reply is an HTML page, not JSON');
      last = new ApiHttpError(`GET ${label}: the response is not complete JSON`, status);
    }
  }
  throw new ApiHttpError(`${last?.message ?? `GET ${label} failed`} (after ${opts.attempts} attempts)`, last?.status ?? null, last?.code ?? null);
}

/** An error body, whitespace folded and shortened, in parentheses. */
export function brief(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t ? ` (${t.length > 120 ? t.slice(0, 117) + '...' : t})` : '';
}

export function errorCode(e: unknown): string | null {
  const err = e as { code?: unknown; cause?: { code?: unknown } };
  const code = err?.cause?.code ?? err?.code;
  return typeof code === 'string' ? code : null;
}

function describe(e: unknown): string {
  if (e instanceof errors.UndiciError) return `${e.message}${'code' in e ? ` [${String((e as { code?: unknown }).code)}]` : ''}`;
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err?.code ?? err?.cause?.code;
  return `${err?.cause?.message ?? err?.message ?? String(e)}${code ? ` [${code}]` : ''}`;
}
