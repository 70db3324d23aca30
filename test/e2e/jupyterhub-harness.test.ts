import { afterEach, describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubLogin, hubServer, startHub, waitForHubUser, type Hub } from '../helpers/jupyterhub.js';

/**
 * The real JupyterHub 3.0 the service's tests run against: it starts, proxies the managed
 * service at its prefix, gives it the environment the service reads, and runs the OAuth flow.
 */

// A managed service that answers with the path it was asked for and its JUPYTERHUB_* environment.
const ECHO_SERVICE = `
const http = require('node:http');
const port = Number(new URL(process.env.JUPYTERHUB_SERVICE_URL).port);
http.createServer((req, res) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('JUPYTERHUB_') || k === 'JPY_API_TOKEN' || k === 'EXTRA'));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, env }));
}).listen(port, '127.0.0.1');
`;

let hub: Hub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

const start = async (): Promise<Hub> =>
  (hub = await startHub({
    users: ['alice', 'bob'],
    password: 'secret',
    admins: ['ada'],
    groups: { staff: ['bob'] },
    service: { name: 'quota', command: [process.execPath, '-e', ECHO_SERVICE], environment: { EXTRA: 'yes' } },
    other: { name: 'other' },
  }));

async function json(url: string, token?: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { headers: token ? { Authorization: `token ${token}` } : {} });
  return { status: r.status, body: await r.json() };
}

describe('a real JupyterHub 3.0 with a managed service', () => {
  test('the hub and its proxy answer, and the service is reached through the proxy with its prefix intact', async () => {
    const h = await start();
    expect(await json(h.apiUrl)).toEqual({ status: 200, body: { version: '3.0.0' } });
    expect((await fetch(`${h.url}/hub/login`)).status).toBe(200);
    const seen = await json(`${h.url}${h.servicePrefix}probe?x=1`);
    expect(seen.status).toBe(200);
    expect(seen.body.path).toBe('/services/quota/probe?x=1');
  });

  test('the service gets exactly these JUPYTERHUB_* variables, and its token has only its role', async () => {
    const h = await start();
    const { env } = (await json(`${h.serviceUrl}/`)).body;
    const apiToken = env.JUPYTERHUB_API_TOKEN as string;
    expect(apiToken).toMatch(/^[0-9a-f]{32}$/);
    expect(env).toEqual({
      JUPYTERHUB_SERVICE_NAME: 'quota',
      JUPYTERHUB_SERVICE_URL: h.serviceUrl,
      JUPYTERHUB_SERVICE_PREFIX: '/services/quota/',
      JUPYTERHUB_API_URL: `${h.hubUrl}/hub/api`,
      JUPYTERHUB_API_TOKEN: apiToken,
      JPY_API_TOKEN: apiToken,
      JUPYTERHUB_CLIENT_ID: 'service-quota',
      JUPYTERHUB_HOST: '',
      JUPYTERHUB_BASE_URL: '/',
      JUPYTERHUB_OAUTH_CALLBACK_URL: '/services/quota/oauth_callback',
      JUPYTERHUB_OAUTH_SCOPES: '["access:services", "access:services!service=quota"]',
      JUPYTERHUB_OAUTH_ACCESS_SCOPES: '["access:services", "access:services!service=quota"]',
      JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: '[]',
      JUPYTERHUB_USER: '',
      JUPYTERHUB_SERVER_NAME: '',
      EXTRA: 'yes',
    });
    expect(await json(`${h.apiUrl}/user`, apiToken)).toEqual({
      status: 200,
      body: { kind: 'service', admin: false, name: 'quota', session_id: null, scopes: ['list:users', 'read:users', 'read:users:activity', 'read:users:groups', 'read:users:name'] },
    });
    const bob = await json(`${h.apiUrl}/users/bob`, apiToken);
    expect([bob.status, bob.body.name, bob.body.admin, bob.body.groups]).toEqual([200, 'bob', false, ['staff']]);
    expect((await json(`${h.apiUrl}/groups`, apiToken)).status).toBe(403);
    expect(await json(`${h.apiUrl}/user`, h.other!.token)).toEqual({
      status: 200,
      body: { kind: 'service', admin: false, name: 'other', session_id: null, scopes: [] },
    });
  });

  test('OAuth: a logged-out browser goes to the login; a code is exchanged once for a token naming the user', async () => {
    const h = await start();
    const authorize = `${h.url}/hub/api/oauth2/authorize?${new URLSearchParams({ client_id: 'service-quota', redirect_uri: '/services/quota/oauth_callback', response_type: 'code', state: 'st4te' })}`;
    const loggedOut = await fetch(authorize, { redirect: 'manual' });
    expect(loggedOut.status).toBe(302);
    expect(loggedOut.headers.get('location')).toBe(`/hub/login?next=${encodeURIComponent(authorize.slice(h.url.length))}`);

    const cookie = await hubLogin(h, 'bob', 'secret');
    const granted = await fetch(authorize, { headers: { cookie }, redirect: 'manual' });
    expect(granted.status).toBe(302);
    const back = new URL(granted.headers.get('location')!, h.url);
    expect(back.pathname).toBe('/services/quota/oauth_callback');
    expect(back.searchParams.get('state')).toBe('st4te');
    const code = back.searchParams.get('code')!;

    const serviceToken = (await json(`${h.serviceUrl}/`)).body.env.JUPYTERHUB_API_TOKEN as string;
    const exchange = () =>
      fetch(`${h.url}/hub/api/oauth2/token`, {
        method: 'POST',
        body: new URLSearchParams({ client_id: 'service-quota', client_secret: serviceToken, grant_type: 'authorization_code', code, redirect_uri: '/services/quota/oauth_callback' }),
      });
    const first = await exchange();
    expect(first.status).toBe(200);
    const tokens = (await first.json()) as { access_token: string; token_type: string; scope: string };
    expect(tokens.token_type).toBe('Bearer');
    // A set on the hub's side: its order varies from run to run.
    expect(tokens.scope.split(' ').sort()).toEqual(['access:services!service=quota', 'read:users:groups!user', 'read:users:name!user']);
    const replay = await exchange();
    expect([replay.status, await replay.json()]).toEqual([400, { error: 'invalid_grant' }]);

    const me = await json(`${h.apiUrl}/user`, tokens.access_token);
    expect(me.status).toBe(200);
    expect({ ...me.body, session_id: undefined }).toEqual({
      kind: 'user',
      name: 'bob',
      admin: false,
      groups: ['staff'],
      session_id: undefined,
      scopes: ['access:services!service=quota', 'read:users:groups!user=bob', 'read:users:name!user=bob'],
    });
  });

  test('users start real servers: the pre_spawn_hook sees the spawner traits, metrics are readable, the admin token stops servers', async () => {
    const h = (hub = await startHub({
      users: ['alice'],
      password: 'secret',
      service: { name: 'quota', command: [process.execPath, '-e', ECHO_SERVICE] },
      spawner: { cpu_guarantee: 2, mem_guarantee: '3G' },
      preSpawnHook: `
def record(spawner):
    with open('hook-saw.txt', 'w') as f:
        f.write('%s %s %s' % (spawner.user.name, spawner.cpu_guarantee, spawner.mem_guarantee))
c.Spawner.pre_spawn_hook = record
`,
    }));
    expect((await hubServer(h, 'alice', 'POST')).status).toBeOneOf([201, 202]);
    const running = await waitForHubUser(h, 'alice', (m) => m.server !== null && m.pending === null);
    expect(running.server).toBe('/user/alice/');
    expect(readFileSync(join(h.dir, 'hook-saw.txt'), 'utf8')).toBe(`alice 2.0 ${3 * 1024 ** 3}`);
    // The single-user server answers through the proxy (its /api needs no login).
    expect((await fetch(`${h.url}/user/alice/api`, { redirect: 'manual' })).status).toBe(200);
    const metrics = await fetch(`${h.url}/hub/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^jupyterhub_running_servers 1\.0$/m);
    expect((await hubServer(h, 'alice', 'DELETE')).status).toBeOneOf([202, 204]);
    await waitForHubUser(h, 'alice', (m) => m.server === null && m.pending === null);
  });

  test('stop() ends the hub, its proxy and the service, and may be called twice', async () => {
    const h = await start();
    await h.stop();
    await h.stop();
    for (const url of [h.url, h.hubUrl, h.serviceUrl]) await expect(fetch(url)).rejects.toThrow();
  });
});
