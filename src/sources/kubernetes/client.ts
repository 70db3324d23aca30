import { brief, DEFAULT_CLIENT_OPTIONS, JsonApiClient, queryParams, type ClientOptions, type JsonResponse } from '../http.js';
import type { KubernetesSettings } from './settings.js';
import type { Status } from './types.js';

/**
 * A small Kubernetes API client on the shared undici helpers (../http.ts), as the Nomad one:
 * keep-alive, timeouts, bounded retries on connection errors, 429 and 5xx. Credentials
 * come from the kubeconfig or service account (settings.ts) and never reach a message.
 */

export class KubernetesClient extends JsonApiClient {
  constructor(
    private readonly settings: KubernetesSettings,
    opts: ClientOptions = DEFAULT_CLIENT_OPTIONS,
  ) {
    super(settings.tls, opts);
  }

  get address(): string {
    return this.settings.server;
  }

  /** The kubeconfig context used; null in a pod's service account. */
  get context(): string | null {
    return this.settings.context ?? null;
  }

  /** Where the settings came from (context and kubeconfig), for messages. */
  get origin(): string {
    return this.settings.origin;
  }

  /** GET a JSON endpoint; undefined query values are left out. */
  async get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<JsonResponse<T>> {
    return this.getJson<T>(path, queryParams(query), { accept: 'application/json', ...this.settings.headers }, {
      parse: (text) => JSON.parse(text) as unknown,
      detail: statusMessage,
    });
  }

  /** Opens a watch (`watch=1` with the query) and hands over its body as it arrives; non-200 rejects with ApiHttpError. */
  async watch(path: string, query: Record<string, string | number | undefined>, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    return this.openStream(path, queryParams({ ...query, watch: 1 }), { accept: 'application/json', ...this.settings.headers }, signal, statusMessage);
  }
}

/** An error reply is a Status object: its message says what went wrong. */
function statusMessage(text: string): string {
  try {
    const s = JSON.parse(text) as Status;
    if (s && s.kind === 'Status' && typeof s.message === 'string') return brief(s.message);
  } catch {
    // not JSON: the text itself
  }
  return brief(text);
}
