import { readFileSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';

/**
 * Where the PostgreSQL store lives and how to reach it, worked out as libpq (psql, pg_dump)
 * does, so a site's existing settings mean the same to hourmeter: a `postgres://` URL, then
 * the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE,
 * PGSSLMODE, PGSSLROOTCERT), then libpq's defaults.
 *
 * node-postgres only ever receives the finished settings: its own reading of URLs and of the
 * environment differs from libpq's (it treats sslmode=require as verify-full unless asked
 * otherwise, reduces PGSSLMODE to "use TLS" and never reads PGSSLROOTCERT).
 */

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** A password kept out of messages, logs and JSON: only reveal() gives it. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[hidden]';
  }
  toJSON(): string {
    return '[hidden]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[hidden]';
  }
}

export interface PostgresSettings {
  /** A host name, an IP address, or a folder holding the server's Unix socket (starts with `/`). */
  host: string;
  port: number;
  user: string;
  database: string;
  /** Given in the URL or PGPASSWORD; otherwise looked up in `passfile` when connecting. */
  password?: Secret;
  passwordFrom: 'url' | 'PGPASSWORD' | 'passfile';
  passfile: string;
  sslmode: SslMode;
  /** The CA file that verifies the server; `system` for the system's trusted roots. */
  sslrootcert: string;
  /** Where the URL came from, for messages (e.g. `--store`, `HOURMETER_STORE`). */
  origin: string;
}

export class PostgresSettingsError extends Error {}

/** What libpq falls back on; the impure part (the account, the home folder) comes in here. */
export interface PostgresDefaults {
  host: string;
  user: string;
  home: string;
}

/** Debian's libpq looks for the local server's socket here when no host is given. */
export const DEBIAN_SOCKET_DIR = '/var/run/postgresql';

export function systemDefaults(): PostgresDefaults {
  let user = 'postgres';
  try {
    user = userInfo().username;
  } catch {
    // An account without a name (a container's arbitrary uid): libpq would fail; PGUSER can say it.
  }
  let host = 'localhost';
  try {
    if (statSync(DEBIAN_SOCKET_DIR).isDirectory()) host = DEBIAN_SOCKET_DIR;
  } catch {
    // No local socket folder: libpq on such systems uses TCP to localhost.
  }
  return { host, user, home: homedir() };
}

const URL_PARAMETERS = new Set(['host', 'port', 'user', 'password', 'dbname', 'sslmode', 'sslrootcert', 'passfile']);

/**
 * The settings from a `postgres://` URL (or none) and the environment, libpq's way: each part
 * the URL gives wins over the environment, which wins over the defaults. Pure: it reads no
 * file, so a missing CA or password file is reported when connecting.
 */
export function resolvePostgresSettings(
  url: string | undefined,
  env: Record<string, string | undefined>,
  defaults: PostgresDefaults,
  origin = '--store',
): PostgresSettings {
  const fromUrl = url === undefined ? {} : parsePostgresUrl(url, origin);
  // libpq treats an empty variable as set; an empty value is never useful here, so it counts as unset.
  const envOf = (name: string): string | undefined => (env[name] ? env[name] : undefined);

  const host = fromUrl.host ?? envOf('PGHOST') ?? defaults.host;
  if (host.includes(',')) throw new PostgresSettingsError(`${origin}: several hosts (${host}) are not supported: give one host`);
  const portText = fromUrl.port ?? envOf('PGPORT') ?? '5432';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new PostgresSettingsError(`${fromUrl.port !== undefined ? origin : 'PGPORT'}: port "${portText}" is not a number from 1 to 65535`);
  }
  const user = fromUrl.user ?? envOf('PGUSER') ?? defaults.user;
  const database = fromUrl.dbname ?? envOf('PGDATABASE') ?? user;
  const sslmodeText = fromUrl.sslmode ?? envOf('PGSSLMODE') ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(sslmodeText)) {
    throw new PostgresSettingsError(
      `${fromUrl.sslmode !== undefined ? `${origin}: sslmode` : 'PGSSLMODE'} "${sslmodeText}" is not one of ${SSL_MODES.join(', ')}`,
    );
  }
  const sslmode = sslmodeText as SslMode;
  const sslrootcert = fromUrl.sslrootcert ?? envOf('PGSSLROOTCERT') ?? join(defaults.home, '.postgresql', 'root.crt');
  if (sslrootcert === 'system' && sslmode !== 'verify-full') {
    // As libpq: the public roots vouch for anyone's name, so only a host name check makes them safe.
    throw new PostgresSettingsError(`sslrootcert=system needs sslmode=verify-full, not ${sslmode}: set sslmode=verify-full`);
  }
  const passfile = fromUrl.passfile ?? envOf('PGPASSFILE') ?? join(defaults.home, '.pgpass');

  const settings: PostgresSettings = { host, port, user, database, passwordFrom: 'passfile', passfile, sslmode, sslrootcert, origin };
  const password = fromUrl.password ?? envOf('PGPASSWORD');
  if (password !== undefined) {
    settings.password = new Secret(password);
    settings.passwordFrom = fromUrl.password !== undefined ? 'url' : 'PGPASSWORD';
  }
  return settings;
}

interface UrlParts {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  dbname?: string;
  sslmode?: string;
  sslrootcert?: string;
  passfile?: string;
}

/** The parts a URL gives; its text (which may hold a password) never goes into an error. */
export function parsePostgresUrl(url: string, origin = '--store'): UrlParts {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw new PostgresSettingsError(`${origin}: a PostgreSQL store is a URL starting with postgres:// or postgresql://`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PostgresSettingsError(`${origin}: not a valid URL; write it as postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full (percent-encode special characters in the password)`);
  }
  const decode = (text: string, part: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new PostgresSettingsError(`${origin}: the ${part} in the URL has a broken %-escape`);
    }
  };
  const parts: UrlParts = {};
  if (parsed.hostname) {
    const host = decode(parsed.hostname, 'host');
    parts.host = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  }
  if (parsed.port) parts.port = parsed.port;
  if (parsed.username) parts.user = decode(parsed.username, 'user name');
  if (parsed.password) parts.password = decode(parsed.password, 'password');
  const path = parsed.pathname.replace(/^\//, '');
  if (path) parts.dbname = decode(path, 'database name');
  for (const [key, value] of parsed.searchParams) {
    if (!URL_PARAMETERS.has(key)) {
      throw new PostgresSettingsError(`${origin}: the URL parameter "${key}" is not supported; known: ${[...URL_PARAMETERS].join(', ')}`);
    }
    // As in libpq, a parameter in the query string wins over the same part before it.
    parts[key as keyof UrlParts] = value;
  }
  return parts;
}

const isSocket = (host: string): boolean => host.startsWith('/');

/** The settings in one line for messages: never the password, only where it comes from. */
export function describePostgresSettings(s: PostgresSettings): string {
  const where = isSocket(s.host) ? `socket ${join(s.host, `.s.PGSQL.${s.port}`)}` : `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
  const tls = isSocket(s.host) ? 'no TLS over a Unix socket' : tlsDescription(s);
  const password = s.passwordFrom === 'passfile' ? `password from ${s.passfile} if it has one` : `password from ${s.passwordFrom === 'url' ? 'the URL' : 'PGPASSWORD'}`;
  return `PostgreSQL database "${s.database}" as user "${s.user}" at ${where} (${tls}; ${password})`;
}

function tlsDescription(s: PostgresSettings): string {
  switch (s.sslmode) {
    case 'disable':
      return 'sslmode=disable: no TLS';
    case 'allow':
      return 'sslmode=allow: TLS only if the server insists, unverified';
    case 'prefer':
      return 'sslmode=prefer: TLS if the server offers it, unverified';
    case 'require':
      return `sslmode=require: TLS, certificate verified only if ${s.sslrootcert} exists`;
    case 'verify-ca':
      return `sslmode=verify-ca: TLS, certificate signed by ${s.sslrootcert}, any host name`;
    case 'verify-full':
      return `sslmode=verify-full: TLS, certificate signed by ${s.sslrootcert === 'system' ? 'a system-trusted CA' : s.sslrootcert} for host ${s.host}`;
  }
}

/**
 * The password libpq would take from a password file (host:port:database:user:password per
 * line, `*` matching anything, `\` escaping `:` and `\`): the first line that matches.
 */
export function passwordFromPassfile(text: string, s: Pick<PostgresSettings, 'host' | 'port' | 'user' | 'database'>): string | undefined {
  // libpq matches a connection through the default socket folder as "localhost".
  const host = s.host === DEBIAN_SOCKET_DIR ? 'localhost' : s.host;
  const wanted = [host, String(s.port), s.database, s.user];
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const fields: string[] = [];
    let field = '';
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (c === '\\' && i + 1 < line.length) field += line[++i];
      else if (c === ':' && fields.length < 4) {
        fields.push(field);
        field = '';
      } else field += c;
    }
    if (fields.length < 4) continue;
    if (fields.every((f, i) => f === '*' || f === wanted[i])) return field;
  }
  return undefined;
}

export interface ConnectOptions {
  /** Receives warnings, e.g. a password file others can read (it is then ignored, as libpq does). */
  warn: (line: string) => void;
  /** How long to wait for the server (default 10 s). */
  timeoutMs?: number;
  applicationName?: string;
}

/** The TLS options for node-postgres, libpq's way; false for no TLS. Reads the CA file. */
export function tlsOptions(s: PostgresSettings): ConnectionOptions | false {
  if (isSocket(s.host) || s.sslmode === 'disable') return false;
  const unverified: ConnectionOptions = { rejectUnauthorized: false };
  if (s.sslmode === 'allow' || s.sslmode === 'prefer') return unverified;
  const ca = readRootCert(s);
  if (s.sslmode === 'require' && ca === undefined) return unverified;
  // require with a CA file checks the CA, as libpq does; verify-full also checks the host name.
  const options: ConnectionOptions = { rejectUnauthorized: true, ca: ca ?? undefined };
  if (s.sslmode !== 'verify-full') options.checkServerIdentity = () => undefined;
  return options;
}

/** The CA file's text; null for the system roots; undefined when a `require` has none. */
function readRootCert(s: PostgresSettings): string | null | undefined {
  if (s.sslrootcert === 'system') return null;
  try {
    return readFileSync(s.sslrootcert, 'utf8');
  } catch (err) {
    if (s.sslmode === 'require' && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PostgresSettingsError(
      `cannot read the root certificate ${s.sslrootcert} that sslmode=${s.sslmode} verifies the server with (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): ` +
        'give the CA file with sslrootcert= in the URL or PGSSLROOTCERT, sslrootcert=system for the system\'s roots, or a weaker sslmode',
    );
  }
}

/** The password to send: the given one, else the password file's, when it is private to its owner. */
export function lookUpPassword(s: PostgresSettings, warn: (line: string) => void): string | undefined {
  if (s.password) return s.password.reveal();
  let text: string;
  try {
    const stat = statSync(s.passfile);
    if (!stat.isFile()) {
      warn(`password file ${s.passfile} is not a plain file; it is ignored`);
      return undefined;
    }
    if (stat.mode & 0o077) {
      warn(`password file ${s.passfile} can be read by others, so it is ignored: run chmod 600 ${s.passfile}`);
      return undefined;
    }
    text = readFileSync(s.passfile, 'utf8');
  } catch {
    // No password file is the common case: the server may not ask for a password.
    return undefined;
  }
  return passwordFromPassfile(text, s);
}

function clientConfig(s: PostgresSettings, ssl: ConnectionOptions | false, opts: ConnectOptions): pg.ClientConfig {
  const config: pg.ClientConfig = {
    host: s.host,
    port: s.port,
    user: s.user,
    database: s.database,
    ssl,
    connectionTimeoutMillis: opts.timeoutMs ?? 10_000,
    application_name: opts.applicationName ?? 'hourmeter',
    // Asked only when the server wants a password, so a password file is read only then.
    password: () => {
      const password = lookUpPassword(s, opts.warn);
      if (password !== undefined) return password;
      throw new PostgresSettingsError(
        `the server asks user "${s.user}" for a password and none is given: put it in ${s.passfile} (mode 0600, a line host:port:database:user:password) or name a password file with PGPASSFILE`,
      );
    },
  };
  return config;
}

/** Connects as the settings say, trying TLS then plain text (prefer) or the reverse (allow). */
export async function connectPostgres(s: PostgresSettings, opts: ConnectOptions): Promise<pg.Client> {
  const ssl = tlsOptions(s);
  const attempt = async (withTls: ConnectionOptions | false): Promise<pg.Client> => {
    const client = new pg.Client(clientConfig(s, withTls, opts));
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  };
  try {
    if (s.sslmode === 'allow') {
      try {
        return await attempt(false);
      } catch (err) {
        if (!refusesPlainText(err)) throw err;
        return await attempt(ssl);
      }
    }
    if (s.sslmode === 'prefer' && ssl) {
      try {
        return await attempt(ssl);
      } catch (err) {
        if (!noTlsOnServer(err)) throw err;
        return await attempt(false);
      }
    }
    return await attempt(ssl);
  } catch (err) {
    throw explainConnectError(err, s);
  }
}

const noTlsOnServer = (err: unknown): boolean => /does not support SSL/i.test((err as Error).message ?? '');
// The server's pg_hba.conf has only hostssl lines for this client: "... no encryption".
const refusesPlainText = (err: unknown): boolean => (err as { code?: string }).code === '28000' && /no encryption/i.test((err as Error).message ?? '');

/** An error that says what failed, on which settings, and what to change; never the password. */
export function explainConnectError(err: unknown, s: PostgresSettings): Error {
  if (err instanceof PostgresSettingsError) return err;
  const e = err as { code?: string; message?: string };
  const message = scrub(e.message ?? String(err), s);
  const on = describePostgresSettings(s);
  const urlOrEnv = (url: string, env: string): string => `${url} in ${s.origin}'s URL or ${env}`;
  let fix: string;
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOENT':
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      fix = `check the host and port (${urlOrEnv('host, port', 'PGHOST, PGPORT')}) and that the server is running`;
      break;
    case '28P01':
      fix = `check the password (${s.passwordFrom === 'passfile' ? `a line for this host, port, database and user in ${s.passfile}, or PGPASSFILE` : s.passwordFrom === 'url' ? `in ${s.origin}'s URL` : 'in PGPASSWORD'})`;
      break;
    case '28000':
      fix = `the server's pg_hba.conf has no entry that lets user "${s.user}" in this way: check the user, database and sslmode, or ask the database's administrator`;
      break;
    case '3D000':
      fix = `create the database or name another one (${urlOrEnv('the path', 'PGDATABASE')})`;
      break;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_SIGNATURE_FAILURE':
    case 'CERT_HAS_EXPIRED':
      fix = `the server's certificate is not signed by the CA in ${s.sslrootcert}: give the CA that signed it (${urlOrEnv('sslrootcert', 'PGSSLROOTCERT')})`;
      break;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      fix = `the server's certificate is not for host ${s.host}: connect with the host name the certificate names, or use sslmode=verify-ca to skip the host name check`;
      break;
    default:
      if (noTlsOnServer(err)) fix = `the server does not offer TLS, which sslmode=${s.sslmode} needs: turn on ssl in the server or choose a weaker sslmode`;
      else if (/timeout/i.test(message)) fix = `the server did not answer in time: check the host and port (${urlOrEnv('host, port', 'PGHOST, PGPORT')}) and firewalls`;
      else fix = 'check the settings above';
  }
  const out = new Error(`cannot connect to the ${on}: ${message}; ${fix}`);
  (out as { code?: string }).code = e.code;
  return out;
}

/** Removes the password from a driver's message, should one ever carry it. */
function scrub(message: string, s: PostgresSettings): string {
  const password = s.password?.reveal();
  return password ? message.split(password).join('[hidden]') : message;
}
