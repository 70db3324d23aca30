import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { freePort, hubServer, hubUser, startHub, waitForHubUser, type Hub } from '../helpers/jupyterhub.js';
import { QUOTA_NOW, quotaFolder } from '../helpers/quota-folder.js';

/**
 * The shipped pre_spawn_hook (share/jupyterhub/hourmeter_quota_hook.py) inside a real
 * JupyterHub 3.0, with `hourmeter serve` as its service, seen by a real headless Chromium:
 * what a user refused sees, what starts, and what happens when the service cannot be reached.
 */

function findChromium(): string | null {
  if (process.env.HOURMETER_CHROMIUM) return process.env.HOURMETER_CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const path = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (path) return path;
    } catch {
      /* not on PATH */
    }
  }
  return null;
}

const executablePath = findChromium();
const hubInstalled = ['/usr/bin/jupyterhub', '/usr/bin/configurable-http-proxy', '/usr/bin/jupyterhub-singleuser'].every((f) => {
  try {
    return readFileSync(f).length > 0;
  } catch {
    return false;
  }
});
if (process.env.CI && (!executablePath || !hubInstalled)) throw new Error('chromium, jupyterhub and configurable-http-proxy are needed: .ci/run installs them');

const PASSWORD = 'hub-test-password';
const HOOK_DIR = join(ROOT, 'share', 'jupyterhub');
/** The hook's text when the service cannot be reached and the quota file says failure: closed. */
const UNAVAILABLE =
  'Your server was not started: quota accounting is unavailable right now, so new servers cannot be checked against your quota. This is not about your usage; please try again later.';
/** What the hook sends for the hub's spawner settings below (cpu_guarantee 1, mem_guarantee 2G). */
const REQUEST = { cpu: 1, memory: '2GiB' };

let hub: Hub;
let browser: Browser;
let cwd: string;

beforeAll(async () => {
  // The folder outlives each test (tempDir's are removed after every one): the service reads it throughout.
  cwd = mkdtempSync(join(tmpdir(), 'hourmeter-spawn-'));
  cpSync(quotaFolder(), cwd, { recursive: true });
  // alice's 24 GiB-hours of the day (quota-folder.ts) are over a 20 GiB-hour limit; bob's 18 of 20 GPU-hours are not.
  const quota = readFileSync(join(cwd, 'quota.yaml'), 'utf8');
  writeFileSync(join(cwd, 'quota.yaml'), quota.replace('limit: 30 GiB-hours', 'limit: 20 GiB-hours'));
  writeFileSync(join(cwd, 'api-token'), 'hook-admin-token-0123456789\n');
  writeFileSync(join(cwd, 'closed.yaml'), 'failure: closed\npolicies: []\n');
  writeFileSync(join(cwd, 'open.yaml'), 'failure: open # spawns go on\npolicies: []\n');
  const dead = await freePort();
  const serve = [process.execPath, BIN, 'serve', '--workers', '1', '--token-file', join(cwd, 'api-token'), '--snapshots', join(cwd, 'snapshots'), '--quota', join(cwd, 'quota.yaml'), '--userdb', join(cwd, 'userdb'), '--db', join(cwd, 'index.sqlite'), '--now', QUOTA_NOW];
  hub = await startHub({
    users: ['alice', 'bob', 'carol', 'dave'],
    password: PASSWORD,
    groups: { regular: ['alice'], gpu: ['bob'] },
    service: { name: 'quota', command: serve },
    spawner: { cpu_guarantee: 1, mem_guarantee: '2G' },
    templatePaths: [join(HOOK_DIR, 'templates')],
    // The live hook takes its token and quota file from the hub's environment; carol's and dave's hooks ask a port nothing listens on.
    hubEnvironment: { HOURMETER_TOKEN_FILE: join(cwd, 'api-token'), HOURMETER_QUOTA_FILE: join(cwd, 'quota.yaml') },
    preSpawnHook: `
import sys
sys.dont_write_bytecode = True  # nothing written into the package's share/
sys.path.insert(0, ${JSON.stringify(HOOK_DIR)})
import hourmeter_quota_hook
hourmeter_quota_hook.HOURMETER_URL = [s['url'] for s in spec['services'] if s['name'] == 'quota'][0] + '/services/quota/'
nowhere = 'http://127.0.0.1:${dead}/services/quota/'
hooks = {
    'carol': hourmeter_quota_hook.make_hook(url=nowhere, quota_file=${JSON.stringify(join(cwd, 'closed.yaml'))}),
    'dave': hourmeter_quota_hook.make_hook(url=nowhere, quota_file=${JSON.stringify(join(cwd, 'open.yaml'))}),
}
c.Spawner.pre_spawn_hook = lambda spawner: hooks.get(spawner.user.name, hourmeter_quota_hook.pre_spawn_hook)(spawner)
`,
  });
  if (executablePath) browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

/** Asks the service what the hook asks, with the hook's token; `groups` as a hook might wrongly send them. */
async function check(user: string, groups?: string[]): Promise<{ decision: string; message: string | null; groups: string[] }> {
  const r = await fetch(`${hub.serviceUrl}${hub.servicePrefix}quota/check`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${readFileSync(join(cwd, 'api-token'), 'utf8').trim()}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, request: REQUEST, ...(groups ? { groups } : {}) }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as { decision: string; message: string | null; groups: string[] };
}

/** Logs `user` in at the hub's form and presses "Start My Server" on the home page; returns the page where the browser lands. */
async function startInBrowser(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  await page.goto(`${hub.url}/hub/login`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL(`${hub.url}/hub/home`), page.click('[type=submit]')]);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/hub/home'), page.click('#start')]);
  await page.waitForLoadState();
  return page;
}

const failOpenCount = async (): Promise<number> => {
  const text = await (await fetch(`${hub.url}/hub/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('hourmeter_quota_fail_open_total '));
  expect(line, 'the fail-open counter in /hub/metrics').toBeDefined();
  return Number(line!.split(' ')[1]);
};

describe.skipIf(!executablePath || !hubInstalled)('the pre_spawn_hook in a real JupyterHub 3.0, in a browser', () => {
  it("a spawn over quota shows the service's message where the user lands, and no server starts", async () => {
    const answer = await check('alice');
    expect(answer.decision).toBe('denied');
    // 4 GiB from 10-01 00:00 to 06:00 in the day before now: 24 GiB-hours; under 20 once the window starts after 01:00.
    expect(answer.message).toBe(
      'Quota exceeded for alice: memory over the last 1d: used 24.00 of 20.00 GiB-hours: 4.00 GiB-hours over; it frees up at 2024-10-02T01:00:00.000001Z (in 1h 0m). Ask for more in #hub-help.',
    );
    const page = await startInBrowser('alice');
    expect(page.url()).toBe(`${hub.url}/hub/spawn/alice`);
    expect(await page.textContent('h1')).toContain('403');
    expect((await page.textContent('#hook-message'))!.trim()).toBe(answer.message);
    // The hub's generic text (what 3.0 shows without the template) is gone.
    expect(await page.textContent('body')).not.toContain('Failed to start your server');
    const shot = process.env.UPDATE_SCREENSHOTS ? join(ROOT, 'docs', 'images') : join(ROOT, 'test-artifacts');
    mkdirSync(shot, { recursive: true });
    await page.screenshot({ path: join(shot, 'jupyterhub-spawn-refused.png') });
    // Later visits to the pending page show the same reason (the hub's own "Spawn failed" page).
    await page.goto(`${hub.url}/hub/spawn-pending/alice`);
    expect(await page.textContent('body')).toContain(answer.message!);
    expect(await hubUser(hub, 'alice')).toMatchObject({ server: null, pending: null });
    await page.context().close();
  }, 60_000);

  it('a spawn under quota starts: the user lands on their server', async () => {
    expect((await check('bob')).decision).toBe('allowed');
    const page = await startInBrowser('bob');
    await page.waitForURL((u) => u.pathname.startsWith('/user/bob/'), { timeout: 30_000 });
    expect(await waitForHubUser(hub, 'bob', (m) => m.server !== null && m.pending === null)).toMatchObject({ server: '/user/bob/' });
    await page.context().close();
  }, 60_000);

  it('service unreachable: failure: closed refuses with the accounting-unavailable message, not an over-quota one', async () => {
    const page = await startInBrowser('carol');
    expect((await page.textContent('#hook-message'))!.trim()).toBe(UNAVAILABLE);
    expect(await page.textContent('body')).not.toContain('over');
    expect(await hubUser(hub, 'carol')).toMatchObject({ server: null, pending: null });
    await page.context().close();
  }, 60_000);

  it('service unreachable: failure: open starts the server and counts exactly one fail-open in /hub/metrics', async () => {
    const before = await failOpenCount();
    expect((await hubServer(hub, 'dave', 'POST')).status).toBeOneOf([201, 202]);
    expect(await waitForHubUser(hub, 'dave', (m) => m.server !== null && m.pending === null)).toMatchObject({ server: '/user/dave/' });
    expect(await failOpenCount()).toBe(before + 1);
    expect(hub.log()).toMatch(/hourmeter quota hook: http:\/\/127\.0\.0\.1:\d+\/services\/quota\/quota\/check unreachable \(.+\): starting dave unchecked \(failure: open\)/);
  }, 60_000);

  it("groups in the hook's request that the user is not in change nothing: the hub's groups decide", async () => {
    const plain = await check('alice');
    // In "gpu" alice would be under no memory limit; the service asks the hub, which has her in "regular" only.
    const claimed = await check('alice', ['gpu']);
    expect(claimed).toEqual(plain);
    expect([claimed.decision, claimed.groups]).toEqual(['denied', ['regular']]);
  }, 30_000);
});
