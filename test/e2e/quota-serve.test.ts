import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, startServe } from '../helpers/cli.js';
import { QUOTA_FILE, QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * The quota endpoints of `hourmeter serve` over real HTTP, and their security boundary: the
 * admin token sees every user, a token from `hourmeter quota token --user U` only U's quota.
 */

const ADMIN = 'admin-s3cret';
async function serve(cwd: string): Promise<string> {
  writeFileSync(join(cwd, 'token'), `${ADMIN}\n`);
  return (await startServe(cwd, ['--token-file', 'token', '--quota', 'quota.yaml', '--now', QUOTA_NOW, '--workers', '1'])).url;
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const post = (url: string, token: string, body: unknown) =>
  fetch(`${url}/quota/check`, { method: 'POST', headers: { ...bearer(token), 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('hourmeter serve --quota', () => {
  it('a user token sees its own quota and nothing else: 403 for another user and for every other endpoint', async () => {
    const cwd = quotaFolder();
    const alice = run(['quota', 'token', '--user', 'alice'], { cwd }).stdout.trim();
    const bob = run(['quota', 'token', '--user', 'bob'], { cwd }).stdout.trim();
    const url = await serve(cwd);

    const own = await fetch(`${url}/quota/alice`, { headers: bearer(alice) });
    expect(own.status).toBe(200);
    expect(own.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await own.json()).toMatchObject({ user: 'alice', decision: 'allowed', groups: ['regular'], policies: [{ resource: 'memory', used: 24, limit: 30, remaining: 6 }] });

    const other = await fetch(`${url}/quota/bob`, { headers: bearer(alice) });
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: 'this token may only ask about alice' });
    expect((await post(url, alice, { user: 'bob' })).status).toBe(403);
    // A user may not claim groups: the file and the user database say which apply.
    const claim = await post(url, alice, { user: 'alice', groups: ['gpu'] });
    expect(claim.status).toBe(403);
    expect(((await claim.json()) as { error: string }).error).toContain('groups may be given only with the admin token');

    // Refused for the token before the parameters are looked at.
    for (const path of ['/stats', '/report/monthly', '/metrics', '/nope', '/stats?form=2024-09-01']) {
      const r = await fetch(`${url}${path}`, { headers: bearer(bob) });
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({ error: 'this token may only ask about its own quota: GET /quota/<user>, POST /quota/check' });
    }
    // The admin token still reaches them.
    expect((await fetch(`${url}/report/monthly`, { headers: bearer(ADMIN) })).status).toBe(200);
  });

  it('no token or a wrong one: 401 on the quota endpoints as everywhere; /health stays open', async () => {
    const url = await serve(quotaFolder());
    for (const headers of [{}, bearer('hmq_not-a-token'), bearer('wrong')] as Record<string, string>[]) {
      const r = await fetch(`${url}/quota/alice`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await fetch(`${url}/quota/check`, { method: 'POST', body: '{"user":"alice"}' })).status).toBe(401);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('POST /quota/check decides as the CLI does; the admin token may ask about anyone', async () => {
    const cwd = quotaFolder();
    const alice = run(['quota', 'token', '--user', 'alice'], { cwd }).stdout.trim();
    const url = await serve(cwd);
    const r = await post(url, alice, { user: 'alice', request: 'memory=4GiB', hours: 2 });
    expect(r.status).toBe(200);
    const d = (await r.json()) as Record<string, unknown>;
    expect(d).toMatchObject({ decision: 'denied', exit_code: 1, retry_at: '2024-10-02T00:30:00.000000Z', policies: [{ used: 24, requested: 8, limit: 30, allowed: false }] });
    // The same JSON as the CLI, coverage of the 1d window included.
    const cli = run(['quota', 'check', '--user', 'alice', '--request', 'memory=4GiB', '--hours', '2', '--now', QUOTA_NOW, '-o', 'json'], { cwd });
    expect(d).toEqual(JSON.parse(cli.stdout));
    expect(d.coverage).toEqual({
      covered_fraction: 1,
      max_gap_hours: 34.5,
      stretches: [{ start: '2024-10-01T00:00:00.000000Z', end: '2024-10-02T00:00:00.000000Z', kind: 'sampled' }],
      until: null,
      warning: null,
    });

    const admin = await post(url, ADMIN, { user: 'bob', groups: 'gpu', request: { gpu: 1 }, hours: '2' });
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ user: 'bob', decision: 'allowed', groups_from: 'caller', policies: [{ resource: 'gpu', used: 18, requested: 2, limit: 20 }] });
    expect((await fetch(`${url}/quota/carol`, { headers: bearer(ADMIN) })).status).toBe(200);
  });

  it.each([
    ['not json', 400, 'the body is not JSON'],
    [{ request: 'cpu=1' }, 400, 'user: give the user name as a string'],
    [{ user: 'alice', request: 'memory=4GB' }, 400, 'request: memory=4GB: give a size with its unit'],
    [{ user: 'alice', hours: 0 }, 400, 'hours: "0": give more than 0 hours'],
    [{ user: 'alice', cpu: 2 }, 400, 'unknown field "cpu"'],
  ])('POST /quota/check %j: %i with a JSON error', async (body, status, message) => {
    const url = await serve(quotaFolder());
    const r = await post(url, ADMIN, body);
    expect(r.status).toBe(status);
    expect(((await r.json()) as { error: string }).error).toContain(message);
  });

  it('the quota endpoints take no query parameters: 400 naming the one given', async () => {
    const cwd = quotaFolder();
    const alice = run(['quota', 'token', '--user', 'alice'], { cwd }).stdout.trim();
    const url = await serve(cwd);
    const show = await fetch(`${url}/quota/alice?resource=memory`, { headers: bearer(alice) });
    expect(show.status).toBe(400);
    expect(await show.json()).toEqual({ error: 'unknown parameter "resource": /quota/alice takes no parameters' });
    const check = await fetch(`${url}/quota/check?user=bob`, { method: 'POST', headers: bearer(ADMIN), body: '{"user":"alice"}' });
    expect(check.status).toBe(400);
    expect(await check.json()).toEqual({ error: 'unknown parameter "user": /quota/check takes no parameters' });
  });

  it('GET /quota/check is 405 (POST only); the rest of the API stays read-only', async () => {
    const url = await serve(quotaFolder());
    const r = await fetch(`${url}/quota/check`, { headers: bearer(ADMIN) });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    const s = await fetch(`${url}/stats`, { method: 'POST', headers: bearer(ADMIN), body: '{}' });
    expect(s.status).toBe(405);
    expect(s.headers.get('allow')).toBe('GET, HEAD');
  });

  it('re-reads the quota file when it changes, and keeps the last good one when the change has a mistake', async () => {
    const cwd = quotaFolder();
    const url = await serve(cwd);
    const limit = async () => (((await (await fetch(`${url}/quota/alice`, { headers: bearer(ADMIN) })).json()) as { policies: { limit: number }[] }).policies[0]!.limit);
    expect(await limit()).toBe(30);
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('limit: 30 GiB-hours', 'limit: 45.5 GiB-hours'));
    expect(await limit()).toBe(45.5);
    writeFileSync(join(cwd, 'quota.yaml'), QUOTA_FILE.replace('limit: 30 GiB-hours', 'limit: lots'));
    expect(await limit()).toBe(45.5);
  });

  it('--quota needs --token-file: exit 2', () => {
    const cwd = quotaFolder();
    const r = run(['serve', '--quota', 'quota.yaml', '--port', '0'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('hourmeter: --quota needs --token-file: the admin token sees every user, and per-user tokens only their own quota\n');
  });
});

describe('hourmeter serve: a client that hangs up', () => {
  it('mid-body is not logged as an internal error, and the server goes on answering', async () => {
    const cwd = quotaFolder();
    writeFileSync(join(cwd, 'token'), `${ADMIN}\n`);
    const { url, child } = await startServe(cwd, ['--token-file', 'token', '--quota', 'quota.yaml', '--now', QUOTA_NOW, '--workers', '1']);
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const { hostname, port } = new URL(url);
    // Announce 1,000 bytes of body, send 10, and hang up: the server is left reading.
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => {
        socket.write(`POST /quota/check HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"user": "`);
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
      socket.on('error', reject);
    });
    // The next request is answered, after the server has seen the first one end.
    const after = await post(url, ADMIN, { user: 'alice' });
    expect(after.status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(stderr).not.toContain('internal error');
    expect(stderr).toBe('');
  });
});
