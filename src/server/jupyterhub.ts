import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { request } from 'undici';
import { UsageError } from '../util/errors.js';

/**
 * `hourmeter serve` as a JupyterHub-managed service (README, "JupyterHub service"): the
 * settings the hub hands its service in the environment, the hub's OAuth flow (authorize,
 * code for token, token for user), the signed session and state cookies, and the hub's user
 * model, read with the service's own token. Tokens never reach a message or a log line.
 */

export interface HubSettings {
  serviceName: string;
  /** The hub's REST API, e.g. http://127.0.0.1:8081/hub/api (no trailing slash). */
  apiUrl: string;
  /** The service's own token: it reads users (read:users) and is the OAuth client's secret. */
  apiToken: string;
  /** Where the proxy forwards the service, prefix intact: `/services/quota/`. */
  prefix: string;
  clientId: string;
  /** The OAuth redirect URI registered with the hub (a path on the public host, or a URL). */
  callbackUrl: string;
  /** Where a browser asks the hub for a code (relative to the public host when the hub names none). */
  authorizeUrl: string;
  /** Scopes a token must hold to reach this service (`access:services!service=<name>`). */
  accessScopes: string[];
  /** Signs session and state cookies; derived from the API token, so every replica and restart agrees. */
  cookieKey: Buffer;
}

/** Who the hub says a token or a session belongs to. */
export interface HubUser {
  name: string;
  admin: boolean;
  groups: string[];
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/**
 * The hub's settings from its environment. On with --jupyterhub, or when the hub named the
 * service (JUPYTERHUB_SERVICE_NAME): other JUPYTERHUB_* variables are set in every single-user
 * server too, and must not turn it on. Returns null when off; throws naming what is missing.
 */
export function hubSettings(env: NodeJS.ProcessEnv, flag: boolean): HubSettings | null {
  const name = env.JUPYTERHUB_SERVICE_NAME;
  if (!flag && !name) return null;
  const need = ['JUPYTERHUB_SERVICE_NAME', 'JUPYTERHUB_API_URL', 'JUPYTERHUB_API_TOKEN', 'JUPYTERHUB_SERVICE_PREFIX', 'JUPYTERHUB_CLIENT_ID', 'JUPYTERHUB_OAUTH_CALLBACK_URL'];
  const missing = need.filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new UsageError(
      `--jupyterhub needs the environment JupyterHub gives a managed service; missing ${missing.join(', ')}: run serve as a service of the hub (c.JupyterHub.services with "command", and "oauth_client_allowed_scopes"/roles as the README shows)`,
    );
  }
  let prefix = env.JUPYTERHUB_SERVICE_PREFIX!;
  if (!prefix.endsWith('/')) prefix += '/';
  const base = env.JUPYTERHUB_BASE_URL ?? '/';
  const host = trimSlash(env.JUPYTERHUB_HOST ?? '');
  let accessScopes = [`access:services!service=${name}`];
  if (env.JUPYTERHUB_OAUTH_ACCESS_SCOPES) {
    try {
      const parsed = JSON.parse(env.JUPYTERHUB_OAUTH_ACCESS_SCOPES) as unknown;
      if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') && parsed.length > 0) accessScopes = parsed;
    } catch {
      throw new UsageError('JUPYTERHUB_OAUTH_ACCESS_SCOPES is not a JSON list of scopes');
    }
  }
  const secret = env.HOURMETER_COOKIE_SECRET || env.JUPYTERHUB_API_TOKEN!;
  return {
    serviceName: name!,
    apiUrl: trimSlash(env.JUPYTERHUB_API_URL!),
    apiToken: env.JUPYTERHUB_API_TOKEN!,
    prefix,
    clientId: env.JUPYTERHUB_CLIENT_ID!,
    callbackUrl: env.JUPYTERHUB_OAUTH_CALLBACK_URL!,
    authorizeUrl: `${host}${base.endsWith('/') ? base : `${base}/`}hub/api/oauth2/authorize`,
    accessScopes,
    cookieKey: createHmac('sha256', secret).update('hourmeter session cookies').digest(),
  };
}

// ---------------------------------------------------------------------------------------
// Signed cookies

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** `payload.signature`: the payload is base64url JSON with an expiry, the signature HMAC-SHA256 over it. */
export function signValue(key: Buffer, value: Record<string, unknown>, expiresMs: number): string {
  const payload = b64(JSON.stringify({ ...value, exp: expiresMs }));
  return `${payload}.${b64(createHmac('sha256', key).update(payload).digest())}`;
}

/** The value of a cookie signed by signValue, or null when it is forged, altered or expired. */
export function verifyValue(key: Buffer, text: string, nowMs: number): Record<string, unknown> | null {
  const dot = text.indexOf('.');
  if (dot <= 0) return null;
  const payload = text.slice(0, dot);
  const given = Buffer.from(text.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', key).update(payload).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const value = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof value.exp === 'number' && value.exp > nowMs ? value : null;
  } catch {
    return null;
  }
}

export function readCookie(req: IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Whether the browser reached us over https (the hub's proxy says so in X-Forwarded-Proto). */
export function viaHttps(req: IncomingMessage): boolean {
  const proto = req.headers['x-forwarded-proto'];
  return (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim() === 'https';
}

/** A Set-Cookie value: HttpOnly, SameSite=Lax, scoped to the prefix, Secure behind https; maxAge 0 deletes. */
export function cookie(name: string, value: string, o: { path: string; maxAgeS: number; secure: boolean }): string {
  return `${name}=${value}; Path=${o.path}; Max-Age=${o.maxAgeS}; HttpOnly; SameSite=Lax${o.secure ? '; Secure' : ''}`;
}

export const newState = (): string => randomBytes(18).toString('base64url');

// ---------------------------------------------------------------------------------------
// The hub's API

export class HubRefused extends Error {}

interface HubUserModel {
  kind?: unknown;
  name?: unknown;
  admin?: unknown;
  groups?: unknown;
  scopes?: unknown;
}

const asUser = (m: HubUserModel): HubUser | null =>
  typeof m.name === 'string' && m.name !== ''
    ? { name: m.name, admin: m.admin === true, groups: Array.isArray(m.groups) ? m.groups.filter((g): g is string => typeof g === 'string') : [] }
    : null;

/** How long the hub's word on a token is kept: a revoked token stops working within this. */
const TOKEN_CACHE_MS = 60_000;

export class HubClient {
  private readonly tokens = new Map<string, { user: HubUser | null; untilMs: number }>();

  constructor(
    readonly settings: HubSettings,
    private readonly nowMs: () => number = Date.now,
  ) {}

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, token: string | null, body?: string, accept = 'application/json'): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { accept };
    if (token !== null) headers.authorization = `token ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await request(`${this.settings.apiUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}), headersTimeout: 15_000, bodyTimeout: 15_000 });
    const text = await res.body.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: the status says enough
    }
    return { status: res.statusCode, json };
  }

  /** The code from the hub's redirect, exchanged for an access token; HubRefused when the hub says no (a replayed or forged code). */
  async tokenForCode(code: string): Promise<string> {
    const s = this.settings;
    const form = new URLSearchParams({ client_id: s.clientId, client_secret: s.apiToken, grant_type: 'authorization_code', code, redirect_uri: s.callbackUrl });
    const r = await this.call('POST', '/oauth2/token', null, form.toString());
    const token = (r.json as { access_token?: unknown } | null)?.access_token;
    if (r.status !== 200 || typeof token !== 'string') throw new HubRefused(`the hub refused the code (HTTP ${r.status})`);
    return token;
  }

  /**
   * Whom a token belongs to, if it may reach this service (it holds one of the access
   * scopes); null otherwise. The hub's answer is kept a minute, by the token's hash.
   */
  async userForToken(token: string): Promise<HubUser | null> {
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.nowMs();
    const known = this.tokens.get(key);
    if (known && known.untilMs > now) return known.user;
    const r = await this.call('GET', '/user', token);
    let user: HubUser | null = null;
    if (r.status === 200 && r.json && typeof r.json === 'object') {
      const m = r.json as HubUserModel;
      const scopes = Array.isArray(m.scopes) ? m.scopes : [];
      // A service's own token (kind "service"), or a user's token for another service, is no key here.
      if (m.kind === 'user' && this.settings.accessScopes.some((s) => scopes.includes(s))) user = asUser(m);
    } else if (r.status >= 500) {
      throw new Error(`the hub answered HTTP ${r.status} when asked about a token`);
    }
    if (this.tokens.size > 10_000) this.tokens.clear();
    this.tokens.set(key, { user, untilMs: now + TOKEN_CACHE_MS });
    return user;
  }

  /** A user's model as the hub keeps it (admin, groups), read with the service's own token; null when there is no such user. */
  async userModel(name: string): Promise<HubUser | null> {
    const r = await this.call('GET', `/users/${encodeURIComponent(name)}`, this.settings.apiToken);
    if (r.status === 404) return null;
    if (r.status !== 200 || !r.json || typeof r.json !== 'object') throw new Error(`the hub answered HTTP ${r.status} when asked about user ${name}; the service's role needs read:users`);
    return asUser(r.json as HubUserModel);
  }

  /**
   * Every user with an active server (`GET /users?state=active`, list:users), page by page, by name,
   * with what the token may see of their servers: the default one through `server`
   * (read:users), named ones only through `servers` (read:servers).
   */
  async runningUsers(): Promise<RunningUser[]> {
    const byName = new Map<string, RunningUser>();
    for (let offset: number | null = 0; offset !== null; ) {
      const r = await this.call('GET', `/users?state=active&offset=${offset}`, this.settings.apiToken, undefined, PAGINATED);
      if (r.status !== 200 || !r.json || typeof r.json !== 'object') {
        throw new Error(`the hub answered HTTP ${r.status} when asked for the users with running servers; the token's role needs list:users and read:users`);
      }
      // The paginated form when the hub knows it, a plain list otherwise.
      const page = r.json as { items?: unknown; _pagination?: { next?: { offset?: unknown } | null } };
      const items: unknown[] = Array.isArray(r.json) ? r.json : Array.isArray(page.items) ? page.items : [];
      const next = Array.isArray(r.json) ? undefined : page._pagination?.next?.offset;
      offset = typeof next === 'number' && next > offset ? next : null;
      for (const m of items as (HubUserModel & { server?: unknown; servers?: unknown })[]) {
        const user = asUser(m);
        if (!user || byName.has(user.name)) continue;
        const servers =
          m.servers && typeof m.servers === 'object'
            ? Object.entries(m.servers as Record<string, { ready?: unknown }>).filter(([, v]) => v?.ready === true).map(([k]) => k)
            : typeof m.server === 'string'
              ? ['']
              : [];
        byName.set(user.name, { name: user.name, groups: user.groups, servers: servers.sort(), serversVisible: m.servers !== undefined });
      }
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Stops a user's server (`DELETE /users/<name>/server`, or `/servers/<server>` for a named
   * one; delete:servers): 'stopped' (204), or 'stopping' when the hub has begun and answers
   * before it is done (202). HubRefused with the hub's reason otherwise.
   */
  async stopServer(user: string, server = ''): Promise<'stopped' | 'stopping'> {
    const path = server === '' ? `/users/${encodeURIComponent(user)}/server` : `/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(server)}`;
    const r = await this.call('DELETE', path, this.settings.apiToken);
    if (r.status === 204) return 'stopped';
    if (r.status === 202) return 'stopping';
    const message = (r.json as { message?: unknown } | null)?.message;
    throw new HubRefused(`the hub answered HTTP ${r.status}${typeof message === 'string' ? ` (${message})` : ''}${r.status === 403 ? "; the token's role needs delete:servers" : ''}`);
  }
}

/** The hub's paginated form of lists (JupyterHub 2.0 and later). */
const PAGINATED = 'application/jupyterhub-pagination+json';

/** A user with at least one active server, as the hub lists them. */
export interface RunningUser {
  name: string;
  groups: string[];
  /** The servers seen running and ready: '' for the default one, else the named server's name. */
  servers: string[];
  /** Whether the token sees every server (read:servers); without it only the default one. */
  serversVisible: boolean;
}

/**
 * Settings for using the hub's REST API only, with a token of one's own (a cron job on the
 * hub, an admin script): no OAuth client, so no token reaches this service through them.
 */
export function hubApiSettings(apiUrl: string, apiToken: string): HubSettings {
  return {
    serviceName: '',
    apiUrl: trimSlash(apiUrl),
    apiToken,
    prefix: '/',
    clientId: '',
    callbackUrl: '',
    authorizeUrl: '',
    accessScopes: [],
    cookieKey: createHmac('sha256', apiToken).update('hourmeter session cookies').digest(),
  };
}
