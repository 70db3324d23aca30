import { Agent, errors, request, type Dispatcher } from 'undici';
import { parseNomadJson } from './json.js';
import type { NomadSettings } from './settings.js';

/**
 * A small Nomad HTTP API client on undici: keep-alive connections, timeouts, and a bounded
 * number of retries with exponential backoff on connection errors, 429 and 5xx (never on
 * other 4xx). The token goes in X-Nomad-Token and never into a message.
 */

export class NomadHttpError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
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
}

export const DEFAULT_CLIENT_OPTIONS: ClientOptions = { attempts: 4, backoffMs: 250, timeoutMs: 30_000, connections: 8 };

export interface NomadResponse<T> {
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class NomadClient {
  private readonly dispatcher: Dispatcher;
  /** Requests sent, retries included: the figure the benchmark reports. */
  requests = 0;

  constructor(
    private readonly settings: NomadSettings,
    private readonly opts: ClientOptions = DEFAULT_CLIENT_OPTIONS,
  ) {
    const tls = settings.tls;
    this.dispatcher = new Agent({
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

  get address(): string {
    return this.settings.address;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** GET a JSON endpoint; query values are added in order, plus the region when set. */
  async get<T>(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<NomadResponse<T>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    if (this.settings.region && !params.has('region')) params.set('region', this.settings.region);
    const qs = params.toString();
    const url = `${this.settings.address}${path}${qs ? `?${qs}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.token) headers['x-nomad-token'] = this.settings.token;
    let last: Error | null = null;
    for (let attempt = 1; attempt <= this.opts.attempts; attempt++) {
      if (attempt > 1) await sleep(this.opts.backoffMs * 2 ** (attempt - 2) * (0.75 + Math.random() * 0.5));
      this.requests++;
      let status: number;
      let text: string;
      let resHeaders: NomadResponse<T>['headers'];
      try {
        const res = await request(url, { method: 'GET', headers, dispatcher: this.dispatcher });
        status = res.statusCode;
        resHeaders = res.headers;
        text = await res.body.text();
      } catch (e) {
        last = new NomadHttpError(`GET ${path}: ${describe(e)}`, null);
        continue; // connection reset, refused, timed out, truncated body: worth another try
      }
      if (status === 429 || status >= 500) {
        last = new NomadHttpError(`GET ${path}: HTTP ${status}${brief(text)}`, status);
        continue;
      }
      if (status >= 400) throw new NomadHttpError(`GET ${path}: HTTP ${status}${brief(text)}`, status);
      try {
        return { body: parseNomadJson(text) as T, headers: resHeaders };
      } catch {
        last = new NomadHttpError(`GET ${path}: the response is not complete JSON`, status);
      }
    }
    throw new NomadHttpError(`${last?.message ?? `GET ${path} failed`} (after ${this.opts.attempts} attempts)`, (last as NomadHttpError | null)?.status ?? null);
  }
}

function brief(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t ? ` (${t.length > 120 ? t.slice(0, 117) + '...' : t})` : '';
}

function describe(e: unknown): string {
  if (e instanceof errors.UndiciError) return `${e.message}${'code' in e ? ` [${String((e as { code?: unknown }).code)}]` : ''}`;
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err?.code ?? err?.cause?.code;
  return `${err?.cause?.message ?? err?.message ?? String(e)}${code ? ` [${code}]` : ''}`;
}
