import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from '../helpers/browser.js';
import { BIN, ROOT, run } from '../helpers/cli.js';
import { hubLogin, startHub, type Hub } from '../helpers/jupyterhub.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * `hourmeter serve` as the managed service of a real JupyterHub 3.0 (Debian's, on 127.0.0.1),
 * seen through a real headless Chromium (playwright-core): the hub's login and OAuth flow,
 * each user's own page, the admin page, and what is refused.
 */

const executablePath = findChromium();
const hubInstalled = existsSync('/usr/bin/jupyterhub') && existsSync('/usr/bin/configurable-http-proxy');
if (process.env.CI && (!executablePath || !hubInstalled)) throw new Error('chromium, jupyterhub and configurable-http-proxy are needed: .ci/run installs them');
const PASSWORD = 'hub-test-password';

let hub: Hub;
let browser: Browser;
let cwd: string;
const paths = () => ['--snapshots', join(cwd, 'snapshots'), '--quota', join(cwd, 'quota.yaml'), '--userdb', join(cwd, 'userdb'), '--db', join(cwd, 'index.sqlite'), '--now', QUOTA_NOW];

beforeAll(async () => {
  // The folder outlives each test (tempDir's are removed after every one): the service reads it throughout.
  cwd = mkdtempSync(join(tmpdir(), 'hourmeter-hub-'));
  cpSync(quotaFolder(), cwd, { recursive: true });
  // Members of "auditors" see everyone, as hub admins do.
  appendFileSync(join(cwd, 'quota.yaml'), 'admins: [auditors]\n');
  hub = await startHub({
    users: ['alice', 'bob', 'carol', 'dave'],
    password: PASSWORD,
    admins: ['ada'],
    // As the quota file's groups say: the hub's groups are the ones the service uses.
    groups: { regular: ['alice'], gpu: ['bob'], auditors: ['dave'] },
    service: { name: 'quota', command: [process.execPath, BIN, 'serve', '--workers', '1', ...paths()] },
    other: { name: 'other' },
  });
  browser = await chromium.launch({ executablePath: executablePath!, args: ['--no-sandbox'] });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

const service = () => `${hub.url}${hub.servicePrefix}`;

/** A fresh browser that logs in through the hub's form, starting from the service's page. */
async function loggedIn(user: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(service());
  expect(page.url()).toMatch(new RegExp(`^${hub.url}/hub/login\\?next=`));
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(service()), page.click('[type=submit]')]);
  return { context, page };
}

/** The cards of the page: resource, window and the four figures as shown. */
async function cards(page: Page): Promise<string[][]> {
  return page.$$eval('section.card', (sections) =>
    sections.map((s) => [s.getAttribute('data-resource')!, s.getAttribute('data-window')!, ...['used', 'limit', 'remaining', 'percent'].map((f) => s.querySelector(`[data-field=${f}]`)?.textContent ?? '')]),
  );
}

describe.skipIf(!executablePath || !hubInstalled)('hourmeter serve as a JupyterHub service, in a browser', () => {
  it('alice logs in through the hub and sees her own numbers, those of `quota show --user alice`', async () => {
    const { context, page } = await loggedIn('alice');
    const show = run(['quota', 'show', '--user', 'alice', ...paths()], { cwd });
    expect(show.code).toBe(0);
    const shown = await cards(page);
    // alice (hand-worked in quota-folder.ts): in "regular", 24 GiB-hours of her 30 (the default is for those no policy matches).
    expect(shown).toEqual([['memory', '1d', '24.00', '30.00', '6.00', '80.0%']]);
    for (const [resource, window, ...figures] of shown) {
      const line = show.stdout.split('\n').find((l) => l.includes(resource!) && l.includes(window!));
      expect(line, `quota show's line for ${resource} ${window}`).toBeDefined();
      let at = 0;
      for (const f of figures) {
        at = line!.indexOf(f, at);
        expect(at, `${f} in ${line}`).toBeGreaterThanOrEqual(0);
      }
    }
    expect(await page.textContent('h1')).toContain('alice');
    // Readable on a phone: nothing wider than its 390 px screen.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // Self-contained: the page asked for nothing but itself.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.reload();
    expect(requests).toEqual([service()]);
    const shot = process.env.UPDATE_SCREENSHOTS ? join(ROOT, 'docs', 'images') : join(ROOT, 'test-artifacts');
    mkdirSync(shot, { recursive: true });
    await page.screenshot({ path: join(shot, 'jupyterhub-quota-page.png'), fullPage: true });
    await context.close();
  }, 60_000);

  it("alice's session asking for bob, or for /admin, gets 403; an admin and an auditor see everyone", async () => {
    const { context, page } = await loggedIn('alice');
    const own = await page.request.get(`${service()}quota/alice`);
    expect(own.status()).toBe(200);
    expect(((await own.json()) as { user: string }).user).toBe('alice');
    expect((await page.request.get(`${service()}quota/bob`)).status()).toBe(403);
    const admin = await page.goto(`${service()}admin`);
    expect(admin!.status()).toBe(403);
    expect(await page.textContent('body')).toContain('Only hub admins');
    await context.close();

    for (const who of ['ada', 'dave']) {
      const { context: c, page: p } = await loggedIn(who);
      const r = await p.goto(`${service()}admin`);
      expect(r!.status()).toBe(200);
      const users = await p.$$eval('table tbody tr', (rows) => rows.map((row) => row.querySelector('td')?.textContent ?? ''));
      expect(new Set(users)).toEqual(new Set(['alice', 'bob', 'carol']));
      expect((await p.request.get(`${service()}quota/bob`)).status()).toBe(200);
      await c.close();
    }
  }, 90_000);

  it("a logged-out browser is sent to the hub's login", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${service()}admin`);
    expect(page.url()).toMatch(new RegExp(`^${hub.url}/hub/login\\?next=${encodeURIComponent('/hub/api/oauth2/authorize?').replace(/[?]/g, '\\?')}`));
    expect(await page.isVisible('input[name=password]')).toBe(true);
    await context.close();
  }, 30_000);

  it('a forged or altered session cookie is not taken: the browser logs in again, as itself', async () => {
    const { context, page } = await loggedIn('alice');
    const session = (await context.cookies()).find((c) => c.name === 'hourmeter-session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: hub.servicePrefix });
    // Altered: the payload names bob, the signature is alice's.
    const [payload, signature] = session.value.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const altered = `${Buffer.from(JSON.stringify({ ...claims, u: 'bob' })).toString('base64url')}.${signature}`;
    for (const value of [altered, `${payload}.${Buffer.from('forged').toString('base64url')}`]) {
      await context.addCookies([{ ...session, value }]);
      expect((await page.request.get(`${service()}quota/bob`)).status()).toBe(401);
      await page.goto(service());
      // The hub logs alice in again (she still has its session): her page, never bob's.
      expect(await page.textContent('h1')).toContain('alice');
      expect(await page.textContent('h1')).not.toContain('bob');
    }
    await context.close();
  }, 60_000);
});

describe.skipIf(!hubInstalled)('hourmeter serve as a JupyterHub service: the OAuth flow refuses what it must', () => {
  /** Starts a login at the service and follows it to the hub, logged in as `user`: the callback's URL and the state cookie. */
  async function toCallback(hubCookie: string): Promise<{ callback: URL; stateCookie: string }> {
    const start = await fetch(service(), { redirect: 'manual' });
    expect(start.status).toBe(302);
    const stateCookie = start.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('hourmeter-oauth-state='))!;
    const authorize = await fetch(new URL(start.headers.get('location')!, hub.url), { headers: { cookie: hubCookie }, redirect: 'manual' });
    expect(authorize.status).toBe(302);
    return { callback: new URL(authorize.headers.get('location')!, hub.url), stateCookie };
  }

  it('a wrong state, a replayed code, and tokens of another service are each refused', async () => {
    const hubCookie = await hubLogin(hub, 'alice', PASSWORD);
    // A wrong state: the code is never even taken to the hub.
    const first = await toCallback(hubCookie);
    const forgedState = new URL(first.callback);
    forgedState.searchParams.set('state', 'not-the-state');
    expect((await fetch(forgedState, { headers: { cookie: first.stateCookie }, redirect: 'manual' })).status).toBe(403);
    // The right one logs in; the same code, brought back with a fresh state, is refused by the hub.
    const ok = await fetch(first.callback, { headers: { cookie: first.stateCookie }, redirect: 'manual' });
    expect(ok.status).toBe(302);
    expect(ok.headers.getSetCookie().some((c) => c.startsWith('hourmeter-session=') && c.includes('HttpOnly') && c.includes('SameSite=Lax'))).toBe(true);
    const second = await toCallback(hubCookie);
    const replay = new URL(second.callback);
    replay.searchParams.set('code', first.callback.searchParams.get('code')!);
    const replayed = await fetch(replay, { headers: { cookie: second.stateCookie }, redirect: 'manual' });
    expect(replayed.status).toBe(403);
    expect(await replayed.text()).toContain('The hub did not accept this login');
    // A callback without its state cookie (another browser) is refused too.
    expect((await fetch(second.callback, { redirect: 'manual' })).status).toBe(403);

    // The other service's own token, and alice's token for the other service: no key here.
    const other = hub.other!;
    const ask = (token: string) => fetch(`${service()}quota/alice`, { headers: { authorization: `token ${token}` } });
    expect((await ask(other.token)).status).toBe(401);
    const authorize = await fetch(
      `${hub.url}/hub/api/oauth2/authorize?${new URLSearchParams({ client_id: other.clientId, redirect_uri: other.redirectUri, response_type: 'code', state: 'x' })}`,
      { headers: { cookie: hubCookie }, redirect: 'manual' },
    );
    const code = new URL(authorize.headers.get('location')!, hub.url).searchParams.get('code')!;
    const exchanged = await fetch(`${hub.url}/hub/api/oauth2/token`, {
      method: 'POST',
      body: new URLSearchParams({ client_id: other.clientId, client_secret: other.token, grant_type: 'authorization_code', code, redirect_uri: other.redirectUri }),
    });
    const { access_token: foreign } = (await exchanged.json()) as { access_token: string };
    expect((await ask(foreign)).status).toBe(401);
    // alice's own hub token sees alice, and only alice.
    const made = await fetch(`${hub.apiUrl}/users/alice/tokens`, { method: 'POST', headers: { authorization: `token ${hub.adminToken}` }, body: JSON.stringify({ note: 'test' }) });
    const { token: own } = (await made.json()) as { token: string };
    expect((await ask(own)).status).toBe(200);
    expect((await fetch(`${service()}quota/bob`, { headers: { authorization: `token ${own}` } })).status).toBe(403);
    // POST /quota/check takes it too, for alice only.
    const check = (user: string) =>
      fetch(`${service()}quota/check`, { method: 'POST', headers: { authorization: `Bearer ${own}`, 'content-type': 'application/json' }, body: JSON.stringify({ user, request: 'memory=4GiB', hours: 2 }) });
    const mine = await check('alice');
    expect(mine.status).toBe(200);
    // 24 GiB-hours used of 30; 4 GiB for 2 h more would make 32: denied.
    expect(await mine.json()).toMatchObject({ user: 'alice', decision: 'denied', reason_code: 'over_limit', groups: ['regular'] });
    expect((await check('bob')).status).toBe(403);

    // No token, code or cookie secret reached the logs.
    const log = hub.log();
    for (const secret of [own, foreign, first.callback.searchParams.get('code')!]) expect(log).not.toContain(secret);
  }, 60_000);

  it('behind https (the proxy says so) its cookies are Secure; over plain http they are not', async () => {
    const secure = await fetch(`${hub.serviceUrl}${hub.servicePrefix}`, { headers: { 'x-forwarded-proto': 'https' }, redirect: 'manual' });
    expect(secure.headers.getSetCookie()).toEqual([expect.stringMatching(/^hourmeter-oauth-state=[^;]+; Path=\/services\/quota\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/)]);
    const plain = await fetch(`${hub.serviceUrl}${hub.servicePrefix}`, { redirect: 'manual' });
    expect(plain.headers.getSetCookie()).toEqual([expect.stringMatching(/^hourmeter-oauth-state=[^;]+; Path=\/services\/quota\/; Max-Age=600; HttpOnly; SameSite=Lax$/)]);
    // The way to the hub's authorize endpoint, with this service's client and a fresh state.
    const to = new URL(plain.headers.get('location')!, hub.url);
    expect([to.pathname, to.searchParams.get('client_id'), to.searchParams.get('redirect_uri'), to.searchParams.get('response_type')]).toEqual([
      '/hub/api/oauth2/authorize', 'service-quota', '/services/quota/oauth_callback', 'code',
    ]);
    expect(to.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{24}$/);
  }, 30_000);
});
