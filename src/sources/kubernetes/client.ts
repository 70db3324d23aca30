import type { Dispatcher } from 'undici';
import { brief, createAgent, DEFAULT_CLIENT_OPTIONS, getJson, type ClientOptions, type JsonResponse } from '../http.js';
import type { KubernetesSettings } from './settings.js';
import type { Status } from './types.js';

/**
 * A small Kubernetes API client on the shared undici helpers (../http.ts), as the Nomad one:
 * keep-alive, timeouts, bounded retries on connection errors, 429 and 5xx. Credentials
 * come from the kubeconfig or service account (settings.ts) and never reach a message.
 */

export class KubernetesClient {
  private readonly dispatcher: Dispatcher;
  /** Requests sent, retries included. */
  requests = 0;

  constructor(
    private readonly settings: KubernetesSettings,
    private readonly opts: ClientOptions = DEFAULT_CLIENT_OPTIONS,
  ) {
    this.dispatcher = createAgent(settings.tls, opts);
  }

  get address(): string {
    return this.settings.server;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** GET a JSON endpoint; undefined query values are left out. */
  async get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<JsonResponse<T>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return getJson<T>(this.dispatcher, `${this.settings.server}${path}${qs ? `?${qs}` : ''}`, path, { accept: 'application/json', ...this.settings.headers }, {
      attempts: this.opts.attempts,
      backoffMs: this.opts.backoffMs,
      parse: (text) => JSON.parse(text) as unknown,
      detail: statusMessage,
      onRequest: () => this.requests++,
    });
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
