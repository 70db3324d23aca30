import { ApiHttpError, DEFAULT_CLIENT_OPTIONS, JsonApiClient, queryParams, type ClientOptions, type JsonResponse } from '../http.js';
import { parseNomadJson } from './json.js';
import type { NomadSettings } from './settings.js';

/**
 * A small Nomad HTTP API client on the shared undici helpers (../http.ts): keep-alive
 * connections, timeouts, and bounded retries on connection errors, 429 and 5xx. The token
 * goes in X-Nomad-Token and never into a message.
 */

export { ApiHttpError as NomadHttpError, DEFAULT_CLIENT_OPTIONS, type ClientOptions };
export type NomadResponse<T> = JsonResponse<T>;

export class NomadClient extends JsonApiClient {
  constructor(
    private readonly settings: NomadSettings,
    opts: ClientOptions = DEFAULT_CLIENT_OPTIONS,
  ) {
    super(settings.tls, opts);
  }

  get address(): string {
    return this.settings.address;
  }

  /** GET a JSON endpoint; query values are added in order, plus the region when set. */
  async get<T>(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<NomadResponse<T>> {
    const params = queryParams(query);
    if (this.settings.region && !params.has('region')) params.set('region', this.settings.region);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.token) headers['x-nomad-token'] = this.settings.token;
    return this.getJson<T>(path, params, headers, { parse: parseNomadJson });
  }

  /**
   * Opens a streaming GET (the event stream) and hands over its body as it arrives. `query`
   * values that are lists repeat their key (topic=Allocation&topic=Job). No body timeout:
   * the caller watches for silence. A refusal or any other non-200 reply rejects.
   */
  async stream(path: string, query: Record<string, string | number | string[]>, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
    if (this.settings.region && !params.has('region')) params.set('region', this.settings.region);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.settings.token) headers['x-nomad-token'] = this.settings.token;
    return this.openStream(path, params, headers, signal);
  }
}
