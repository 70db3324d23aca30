import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runAsync } from '../helpers/cli.js';
import { freePort, startHub, type Hub } from '../helpers/jupyterhub.js';
import { hubSnapshot } from '../helpers/monthly-folder.js';

/**
 * `quota enforce` against a real JupyterHub 3.0 with three real single-user servers running
 * (jupyterhub-singleuser, spawner "simple"), and a token holding exactly list:users,
 * read:users and delete:servers.
 *
 * Usage (UTC, now = 2024-10-02T00:00Z, latest snapshot 23:00, a 1d window, all three in the
 * hub group "regular" with 30 GiB-hours of memory): each user has one allocation from
 * 10-01 16:00, still running at the latest snapshot. Counted up to the snapshot (7 h) as
 * `quota show` does, then up to now (8 h):
 * - alice, 1 GiB: 7 and 8 GiB-hours;
 * - bob, 4 GiB: 28 and 32 GiB-hours: over the limit only because running counts up to now;
 * - carol, 2 GiB: 14 and 16 GiB-hours.
 */

const NOW = '2024-10-02T00:00:00Z';
const QUOTA = `stale_after: 2h
policies:
  - name: regular-memory
    resource: memory
    limit: 30 GiB-hours
    window: 1d
    scope: groups
    groups: [regular]
`;
const BOB_OVER = 'bob: memory over the last 1d: used 32.00 of 30.00 GiB-hours';

const alloc = (user: string, memGiB: number) => ({
  id: `a-${user}`, namespace: 'hub', job_id: `job-${user}`, job_name: `nb-${user}`, user, group: null, component: 'jupyter',
  node: 'n1', status: 'running', created: null, start: '2024-10-01T16:00:00Z', end: null, modified: null,
  resources: { cpu_cores: 1, cpu_mhz: 0, memory_mib: memGiB * 1024, disk_mib: 0, gpu: 0 },
});

/** The folder every test of this file shares (tempDir's folders go after each test). */
function quotaDir(): string {
  const cwd = mkdtempSync(join(tmpdir(), 'hourmeter-enforce-'));
  mkdirSync(join(cwd, 'snapshots'));
  const running = [alloc('alice', 1), alloc('bob', 4), alloc('carol', 2)];
  const files: [string, unknown[]][] = [
    ['2024-10-01T12:00:00Z', []],
    ['2024-10-01T16:00:00Z', running],
    ['2024-10-01T23:00:00Z', running],
  ];
  for (const [at, allocations] of files) writeFileSync(join(cwd, 'snapshots', `${at}.json`), JSON.stringify(hubSnapshot(at, allocations)));
  writeFileSync(join(cwd, 'quota.yaml'), QUOTA);
  return cwd;
}

let hub: Hub;
let cwd: string;
/** list:users, read:users, delete:servers: a token of the hub admin "ops", narrowed to these. */
let enforcer: string;

async function api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(`${hub.hubUrl}/hub/api${path}`, { method, headers: { Authorization: `token ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

async function tokenFor(user: string, scopes?: string[]): Promise<string> {
  const r = await api('POST', `/users/${user}/tokens`, hub.adminToken, { note: 'test', ...(scopes ? { scopes } : {}) });
  if (r.status !== 201) throw new Error(`token for ${user}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.token as string;
}

/** Whether the user's default server is running and ready, as the hub says. */
async function running(user: string): Promise<boolean> {
  const r = await api('GET', `/users/${user}`, hub.adminToken);
  return r.json.server !== null && r.json.pending === null;
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms\n--- hub log ---\n${hub.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const enforce = (args: string[], env: Record<string, string> = {}) =>
  runAsync(['quota', 'enforce', '--now', NOW, ...args], { cwd, env: { JUPYTERHUB_API_URL: `${hub.hubUrl}/hub/api`, JUPYTERHUB_API_TOKEN: enforcer, ...env } });

beforeAll(async () => {
  cwd = quotaDir();
  hub = await startHub({
    users: ['alice', 'bob', 'carol'],
    password: 'secret',
    admins: ['ops'],
    groups: { regular: ['alice', 'bob', 'carol'] },
    service: { name: 'quota', command: [process.execPath, '-e', "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(new URL(process.env.JUPYTERHUB_SERVICE_URL).port), '127.0.0.1')"] },
  });
  enforcer = await tokenFor('ops', ['list:users', 'read:users', 'delete:servers']);
  // Each user starts their own server with a token of their own (the admin token may not start servers).
  for (const user of ['alice', 'bob', 'carol']) {
    const r = await api('POST', `/users/${user}/server`, await tokenFor(user));
    if (r.status !== 201 && r.status !== 202) throw new Error(`starting ${user}'s server: HTTP ${r.status} ${JSON.stringify(r.json)}\n${hub.log().slice(-4000)}`);
  }
  for (const user of ['alice', 'bob', 'carol']) await until(`${user}'s server is not ready`, () => running(user));
}, 120_000);

afterAll(async () => {
  await hub?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

describe('quota enforce against a real JupyterHub 3.0', () => {
  test('the token holds exactly list:users, read:users, delete:servers (read:users implies its parts), and sees the default server and groups', async () => {
    const me = await api('GET', '/user', enforcer);
    expect([...me.json.scopes].sort()).toEqual(['delete:servers', 'list:users', 'read:users', 'read:users:activity', 'read:users:groups', 'read:users:name']);
    const bob = await api('GET', '/users/bob', enforcer);
    expect(bob.json).toMatchObject({ name: 'bob', groups: ['regular'], server: '/user/bob/', pending: null });
    // Named servers are shown only to read:servers.
    expect(bob.json.servers).toBeUndefined();
  });

  test('quota show counts running allocations up to the latest snapshot: bob is within his limit there', async () => {
    const r = await runAsync(['quota', 'show', '--user', 'bob', '--groups', 'regular', '--now', NOW, '-o', 'json'], { cwd });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).policies[0]).toMatchObject({ used: 28, limit: 30, allowed: true });
  });

  test('the dry run names bob, and stops no one', async () => {
    const r = await enforce([]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${NOW} would stop ${BOB_OVER}\n`);
    expect(r.code).toBe(0);
    for (const user of ['alice', 'bob', 'carol']) expect(await running(user)).toBe(true);
  });

  test('a 10% grace (up to 33 GiB-hours) leaves bob alone', async () => {
    const r = await enforce(['--grace', '10%', '-o', 'json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ now: '2024-10-02T00:00:00.000000Z', dry_run: true, grace: '10%', latest_snapshot: '2024-10-01T23:00:00.000000Z', running: ['alice', 'bob', 'carol'], actions: [] });
  });

  test('a token without delete:servers cannot stop bob: exit 1, the hub\'s reason on stderr, nothing on stdout', async () => {
    const narrow = await tokenFor('ops', ['list:users', 'read:users']);
    const r = await enforce(['--stop'], { JUPYTERHUB_API_TOKEN: narrow });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`hourmeter: warning: ${NOW} could not stop bob: the hub answered HTTP 403`);
    expect(r.stderr).toContain("the token's role needs delete:servers");
    expect(r.stderr).toContain('1 of 1 servers over quota could not be stopped');
    expect(r.stderr).not.toContain(narrow);
    expect(await running('bob')).toBe(true);
  });

  test('the hub cannot be asked: exit 3; no hub given or a bad grace: exit 2', async () => {
    const other = await tokenFor('alice', ['read:users:name!user=alice']);
    const refused = await enforce([], { JUPYTERHUB_API_TOKEN: other });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`could not ask the hub at ${hub.hubUrl}/hub/api: the hub answered HTTP 403 when asked for the users with running servers; the token's role needs list:users and read:users`);
    expect(refused.stderr).not.toContain(other);
    const nobody = await enforce(['--hub-url', `http://127.0.0.1:${await freePort()}/hub/api`]);
    expect(nobody.code).toBe(3);
    const none = await runAsync(['quota', 'enforce', '--now', NOW], { cwd });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--hub-url: give the hub');
    const grace = await enforce(['--grace', 'ten']);
    expect(grace.code).toBe(2);
    expect(grace.stderr).toContain('--grace "ten": give a percentage of the limit, e.g. --grace 10% (or 0)');
  });

  test('--stop stops exactly bob, through the hub: the others keep running', async () => {
    // The token from a file this time, the URL from a flag.
    writeFileSync(join(cwd, 'hub-token'), `${enforcer}\n`);
    const r = await enforce(['--stop', '-o', 'json', '--hub-url', `${hub.hubUrl}/hub/api/`, '--hub-token-file', 'hub-token'], { JUPYTERHUB_API_URL: '', JUPYTERHUB_API_TOKEN: '' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ now: '2024-10-02T00:00:00.000000Z', dry_run: false, grace: '0%', running: ['alice', 'bob', 'carol'] });
    expect(out.actions).toHaveLength(1);
    expect(out.actions[0]).toMatchObject({ user: 'bob', server: '', reason: 'memory over the last 1d: used 32.00 of 30.00 GiB-hours', error: null });
    expect(['stopped', 'stopping']).toContain(out.actions[0].action);
    expect(r.stdout).not.toContain(enforcer);
    await until('bob\'s server did not stop', async () => !(await running('bob')) && (await api('GET', '/users/bob', hub.adminToken)).json.pending === null, 30_000);
    expect(await running('alice')).toBe(true);
    expect(await running('carol')).toBe(true);
    // Nothing left to do: silent, exit 0.
    const again = await enforce(['--stop']);
    expect(again).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
