import type { Dispatcher } from 'undici';
import { ApiHttpError, createAgent, DEFAULT_CLIENT_OPTIONS, getJson, type ClientOptions, type JsonResponse } from '../http.js';
import { parseNomadJson } from './json.js';
import type { NomadSettings } from './settings.js';

/**
 * A small Nomad HTTP API client on the shared undici helpers (../http.ts): keep-alive
 * connections, timeouts, and bounded retries on connection errors, 429 and 5xx. The token
 * goes in X-Nomad-Token and never into a message.
 */

export { ApiHttpError as NomadHttpError, DEFAULT_CLIENT_OPTIONS, type ClientOptions };
export type NomadResponse<T> = JsonResponse<T>;

export class NomadClient {
  private readonly dispatcher: Dispatcher;
  /** Requests sent, retries included: the figure the benchmark reports. */
  requests = 0;

  constructor(
    private readonly settings: NomadSettings,
    private readonly opts: ClientOptions = DEFAULT_CLIENT_OPTIONS,
  ) {
    this.dispatcher = createAgent(settings.tls, opts);
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
    return getJson<T>(this.dispatcher, url, path, headers, {
      attempts: this.opts.attempts,
      backoffMs: this.opts.backoffMs,
      parse: parseNomadJson,
      onRequest: () => this.requests++,
    });
  }
}
