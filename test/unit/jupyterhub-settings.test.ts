import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cookie, hubSettings, readCookie, signValue, verifyValue, viaHttps } from '../../src/server/jupyterhub.js';
import { UsageError } from '../../src/util/errors.js';

/** What JupyterHub 3.0 sets for a managed service named quota (seen on a real hub, see test/e2e/jupyterhub-harness.test.ts). */
const HUB_ENV = {
  JUPYTERHUB_SERVICE_NAME: 'quota',
  JUPYTERHUB_SERVICE_URL: 'http://127.0.0.1:10101',
  JUPYTERHUB_SERVICE_PREFIX: '/services/quota/',
  JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api',
  JUPYTERHUB_API_TOKEN: '0123456789abcdef0123456789abcdef',
  JUPYTERHUB_CLIENT_ID: 'service-quota',
  JUPYTERHUB_HOST: '',
  JUPYTERHUB_BASE_URL: '/',
  JUPYTERHUB_OAUTH_CALLBACK_URL: '/services/quota/oauth_callback',
  JUPYTERHUB_OAUTH_SCOPES: '["access:services", "access:services!service=quota"]',
  JUPYTERHUB_OAUTH_ACCESS_SCOPES: '["access:services", "access:services!service=quota"]',
};

describe('the settings a hub gives its service', () => {
  it('are read from the environment when the hub names the service', () => {
    const s = hubSettings(HUB_ENV, false)!;
    expect({ ...s, cookieKey: s.cookieKey.length }).toEqual({
      serviceName: 'quota',
      apiUrl: 'http://127.0.0.1:8081/hub/api',
      apiToken: HUB_ENV.JUPYTERHUB_API_TOKEN,
      prefix: '/services/quota/',
      clientId: 'service-quota',
      callbackUrl: '/services/quota/oauth_callback',
      authorizeUrl: '/hub/api/oauth2/authorize',
      accessScopes: ['access:services', 'access:services!service=quota'],
      cookieKey: 32,
    });
    // A hub under a base URL on a named host.
    expect(hubSettings({ ...HUB_ENV, JUPYTERHUB_HOST: 'https://hub.example.org', JUPYTERHUB_BASE_URL: '/jh/' }, false)!.authorizeUrl).toBe('https://hub.example.org/jh/hub/api/oauth2/authorize');
  });

  it("stay off in a single-user server's environment, which has JUPYTERHUB_* variables but names no service", () => {
    const { JUPYTERHUB_SERVICE_NAME: _, ...singleUser } = HUB_ENV;
    expect(hubSettings({ ...singleUser, JUPYTERHUB_USER: 'alice' }, false)).toBeNull();
    expect(hubSettings({}, false)).toBeNull();
  });

  it('--jupyterhub without the hub around says what is missing and how to run it', () => {
    expect(() => hubSettings({}, true)).toThrow(UsageError);
    expect(() => hubSettings({ JUPYTERHUB_SERVICE_NAME: 'quota' }, true)).toThrow(
      /^--jupyterhub needs the environment JupyterHub gives a managed service; missing JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_SERVICE_PREFIX, JUPYTERHUB_CLIENT_ID, JUPYTERHUB_OAUTH_CALLBACK_URL: run serve as a service of the hub/,
    );
    expect(() => hubSettings({ ...HUB_ENV, JUPYTERHUB_OAUTH_ACCESS_SCOPES: 'access:services' }, false)).toThrow('JUPYTERHUB_OAUTH_ACCESS_SCOPES is not a JSON list of scopes');
  });

  it('sign cookies with a key of their own, the same for every replica of the service', () => {
    const a = hubSettings(HUB_ENV, false)!.cookieKey;
    expect(hubSettings(HUB_ENV, false)!.cookieKey.equals(a)).toBe(true);
    expect(a.toString('hex')).not.toContain(HUB_ENV.JUPYTERHUB_API_TOKEN);
    expect(hubSettings({ ...HUB_ENV, HOURMETER_COOKIE_SECRET: 'another' }, false)!.cookieKey.equals(a)).toBe(false);
  });
});

describe('signed cookie values', () => {
  const key = Buffer.alloc(32, 7);
  const NOW = 1_800_000_000_000;

  it('read back until they expire', () => {
    const v = signValue(key, { u: 'alice' }, NOW + 1000);
    expect(verifyValue(key, v, NOW)).toEqual({ u: 'alice', exp: NOW + 1000 });
    expect(verifyValue(key, v, NOW + 1000)).toBeNull();
  });

  it('altered, forged, signed with another key, or not a value at all: refused', () => {
    const v = signValue(key, { u: 'alice' }, NOW + 1000);
    const [payload, signature] = v.split('.') as [string, string];
    const asBob = Buffer.from(JSON.stringify({ u: 'bob', exp: NOW + 1000 })).toString('base64url');
    expect(verifyValue(key, `${asBob}.${signature}`, NOW)).toBeNull();
    expect(verifyValue(key, `${payload}.${signature.slice(0, -2)}AA`, NOW)).toBeNull();
    expect(verifyValue(Buffer.alloc(32, 8), v, NOW)).toBeNull();
    for (const junk of ['', '.', 'abc', `${payload}.`, `.${signature}`]) expect(verifyValue(key, junk, NOW)).toBeNull();
  });
});

describe('cookies on the wire', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('are HttpOnly, SameSite=Lax and scoped to the prefix; Secure behind https', () => {
    expect(cookie('s', 'v', { path: '/services/quota/', maxAgeS: 60, secure: true })).toBe('s=v; Path=/services/quota/; Max-Age=60; HttpOnly; SameSite=Lax; Secure');
    expect(cookie('s', '', { path: '/services/quota/', maxAgeS: 0, secure: false })).toBe('s=; Path=/services/quota/; Max-Age=0; HttpOnly; SameSite=Lax');
    expect(viaHttps(req({ 'x-forwarded-proto': 'https' }))).toBe(true);
    expect(viaHttps(req({ 'x-forwarded-proto': 'https, http' }))).toBe(true);
    expect(viaHttps(req({ 'x-forwarded-proto': 'http' }))).toBe(false);
    expect(viaHttps(req({}))).toBe(false);
  });

  it('are found by name among the others', () => {
    expect(readCookie(req({ cookie: 'a=1; hourmeter-session=x.y; b=2' }), 'hourmeter-session')).toBe('x.y');
    expect(readCookie(req({ cookie: 'hourmeter-session-old=1' }), 'hourmeter-session')).toBeNull();
    expect(readCookie(req({}), 'hourmeter-session')).toBeNull();
  });
});
