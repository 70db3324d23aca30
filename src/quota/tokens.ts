import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../util/errors.js';
import { makeFolder } from '../util/folders.js';

/**
 * Per-user API tokens for the quota endpoints of `hourmeter serve`. Only a SHA-256 of each
 * token is kept, in `<userdb>/quota-tokens.json` (mode 0600); the token itself is printed
 * once when issued. Tokens are 32 random bytes, so an unsalted hash is enough. Issuing a new
 * token for a user replaces (revokes) the old one.
 */

export const TOKENS_FILE = 'quota-tokens.json';
const PREFIX = 'hmq_';

export interface TokenEntry {
  sha256: string;
  issued_at: string;
}

/** User → entry; a Map, since a user may be called `__proto__` or `constructor`. */
export type TokenStore = Map<string, TokenEntry>;

export function tokensPath(userdbDir: string): string {
  return join(userdbDir, TOKENS_FILE);
}

export function loadTokens(path: string): TokenStore {
  if (!existsSync(path)) return new Map();
  try {
    const t = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (t === null || typeof t !== 'object' || Array.isArray(t)) throw new Error('expected an object of users');
    // JSON.parse makes every key an own property, "__proto__" included.
    return new Map(Object.entries(t as Record<string, TokenEntry>));
  } catch (e) {
    throw new DataError(`${path}: ${(e as Error).message}; fix or remove the file (then issue the tokens again)`);
  }
}

const hash = (token: string): string => createHash('sha256').update(token).digest('hex');

/** The SHA-256 (hex) kept for a token, or null when it cannot be a quota token. */
export function tokenDigest(token: string): string | null {
  return token.startsWith(PREFIX) ? hash(token) : null;
}

/** A new random token and the digest to keep of it. */
export function newToken(): { token: string; sha256: string } {
  const token = PREFIX + randomBytes(32).toString('base64url');
  return { token, sha256: hash(token) };
}

/** Issues a token for a user: stores its hash and returns the token (shown once). */
export function issueToken(userdbDir: string, user: string, nowIso: string): string {
  const path = tokensPath(userdbDir);
  const store = loadTokens(path);
  const { token, sha256 } = newToken();
  store.set(user, { sha256, issued_at: nowIso });
  makeFolder(userdbDir);
  // fromEntries defines own properties: a "__proto__" user is written as one.
  const sorted = Object.fromEntries([...store].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  // Written owner-only from the start, then renamed over the old file.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(sorted, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return token;
}

/** The user a token belongs to, or null. Every entry is compared, in constant time each. */
export function userOfToken(store: TokenStore, token: string): string | null {
  if (!token.startsWith(PREFIX)) return null;
  const given = Buffer.from(hash(token), 'hex');
  let found: string | null = null;
  for (const [user, e] of store) {
    const expected = Buffer.from(typeof e?.sha256 === 'string' ? e.sha256 : '', 'hex');
    if (expected.length === given.length && timingSafeEqual(expected, given)) found = user;
  }
  return found;
}

/** Reads the token file again only when it changed (serve issues no reload command). */
export class TokenFile {
  private cached: { mtimeMs: number; size: number; store: TokenStore } | null = null;

  constructor(readonly path: string) {}

  current(): TokenStore {
    if (!existsSync(this.path)) return new Map();
    const st = statSync(this.path);
    if (!this.cached || this.cached.mtimeMs !== st.mtimeMs || this.cached.size !== st.size) this.cached = { mtimeMs: st.mtimeMs, size: st.size, store: loadTokens(this.path) };
    return this.cached.store;
  }
}
