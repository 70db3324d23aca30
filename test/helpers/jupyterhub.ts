import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A real JupyterHub 3.0 (Debian's `jupyterhub` and `node-configurable-http-proxy`) on
 * 127.0.0.1, with DummyAuthenticator, one hub-managed service and, optionally, a second
 * (external) service whose tokens the first must refuse.
 */

/** Debian's packages are built for this interpreter, not for whatever python3 is first on PATH. */
export const HUB_PYTHON = '/usr/bin/python3';
export const HUB_PROXY = '/usr/bin/configurable-http-proxy';
export const HUB_SINGLEUSER = '/usr/bin/jupyterhub-singleuser';

export interface HubOptions {
  /** Users who may log in (DummyAuthenticator: all share `password`). */
  users: string[];
  password: string;
  /** Hub admins; they may log in too. */
  admins?: string[];
  /** Hub groups and their members. */
  groups?: Record<string, string[]>;
  /** The hub-managed service, reached through the proxy at /services/<name>/. */
  service: {
    name: string;
    /** argv: the hub runs it with the environment it gives managed services. */
    command: string[];
    environment?: Record<string, string>;
    /** Skip the hub's "Authorize access" page for this service (default true). */
    oauthNoConfirm?: boolean;
  };
  /** A second, external service: an API token and an OAuth client of its own, no process. */
  other?: { name: string };
  /** How long to wait for the hub, the proxy's route and the service (default 30 s). */
  timeoutMs?: number;
  /**
   * Python appended to jupyterhub_config.py (with `c` in scope), e.g. code that sets
   * `c.Spawner.pre_spawn_hook`. It runs in the hub's folder (`dir`).
   */
  preSpawnHook?: string;
  /** Folders of templates the hub looks in before its own (c.JupyterHub.template_paths). */
  templatePaths?: string[];
  /** Spawner traits, e.g. { cpu_guarantee: 2, mem_guarantee: '4G' } (c.Spawner.<name>). */
  spawner?: Record<string, string | number | boolean>;
  /** Extra environment of the hub process itself (not of its service). */
  hubEnvironment?: Record<string, string>;
}

export interface Hub {
  /** The proxy's public URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  /** The hub's REST API through the proxy: `${url}/hub/api`. */
  apiUrl: string;
  /** The hub itself, not through the proxy: the service's JUPYTERHUB_API_URL is `${hubUrl}/hub/api`. */
  hubUrl: string;
  /** The service's prefix, e.g. /services/quota/. */
  servicePrefix: string;
  /** The service as the hub reaches it directly, e.g. http://127.0.0.1:41235. */
  serviceUrl: string;
  /**
   * A token with admin:users, admin:groups, tokens, list:users, read:users, servers (start and
   * stop users' servers) and read:metrics: for tests only.
   */
  adminToken: string;
  /** The other service's API token, OAuth client id and redirect URI (when `other` is asked for). */
  other?: { name: string; token: string; clientId: string; redirectUri: string };
  /** The folder holding the config, the sqlite db, the cookie secret and jupyterhub.log. */
  dir: string;
  /** Everything the hub, the proxy and the service wrote so far. */
  log(): string;
  /** Stops the hub, its proxy and the service; safe to call more than once. */
  stop(): Promise<void>;
}

/** A port free on 127.0.0.1 at the time of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const token = (): string => randomBytes(24).toString('hex');

// The config reads its settings from JSON, so no value has to be quoted as Python.
const CONFIG_PY = `import json
spec = json.load(open('hub-spec.json'))
c = get_config()  # noqa
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = spec['publicPort']
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = spec['hubPort']
c.JupyterHub.db_url = 'sqlite:///jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = 'jupyterhub_cookie_secret'
c.JupyterHub.default_url = '/hub/home'
c.ConfigurableHTTPProxy.command = [spec['proxy']]
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:%d' % spec['proxyApiPort']
c.ConfigurableHTTPProxy.auth_token = spec['proxyToken']
c.ConfigurableHTTPProxy.pid_file = 'jupyterhub-proxy.pid'
c.JupyterHub.authenticator_class = 'dummy'
c.DummyAuthenticator.password = spec['password']
c.Authenticator.allowed_users = set(spec['users'])
c.Authenticator.admin_users = set(spec['admins'])
c.JupyterHub.spawner_class = 'simple'
# Debian's single-user server (notebook), as the interpreter its packages are built for.
c.Spawner.cmd = [spec['singleuser']]
c.Spawner.args = spec['spawnerArgs']
c.SimpleLocalProcessSpawner.home_dir_template = spec['homes'] + '/{username}'
for trait, value in spec['spawner'].items():
    setattr(c.Spawner, trait, value)
c.JupyterHub.template_paths = spec['templatePaths']
# Tests read /hub/metrics without a token.
c.JupyterHub.authenticate_prometheus = False
c.JupyterHub.load_groups = spec['groups']
c.JupyterHub.services = spec['services']
c.JupyterHub.load_roles = spec['roles']
`;

export async function startHub(opts: HubOptions): Promise<Hub> {
  const dir = mkdtempSync(join(tmpdir(), 'hourmeter-hub-'));
  const [publicPort, hubPort, proxyApiPort, servicePort, otherPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const name = opts.service.name;
  const url = `http://127.0.0.1:${publicPort}`;
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const adminToken = token();
  const proxyToken = token();
  const admins = opts.admins ?? [];
  const other = opts.other
    ? { name: opts.other.name, token: token(), clientId: `service-${opts.other.name}`, redirectUri: `http://127.0.0.1:${otherPort}/oauth_callback` }
    : undefined;

  const services: object[] = [
    {
      name,
      url: serviceUrl,
      command: opts.service.command,
      environment: opts.service.environment ?? {},
      oauth_no_confirm: opts.service.oauthNoConfirm ?? true,
    },
    { name: 'test-admin', api_token: adminToken },
  ];
  if (other) services.push({ name: other.name, api_token: other.token, oauth_redirect_uri: other.redirectUri, oauth_no_confirm: true });
  // Exactly what the service needs, and users may reach it (JupyterHub 3.0's 'user' role is only 'self').
  const userScopes = ['self', `access:services!service=${name}`];
  if (other) userScopes.push(`access:services!service=${other.name}`);
  const roles = [
    { name: 'user', scopes: userScopes },
    { name: `${name}-service`, scopes: ['read:users', 'list:users'], services: [name] },
    { name: 'test-admin', scopes: ['admin:users', 'admin:groups', 'tokens', 'list:users', 'read:users', 'servers', 'read:metrics'], services: ['test-admin'] },
  ];
  const spec = {
    publicPort,
    hubPort,
    proxyApiPort,
    proxyToken,
    proxy: HUB_PROXY,
    singleuser: HUB_SINGLEUSER,
    homes: join(dir, 'home'),
    spawner: opts.spawner ?? {},
    templatePaths: opts.templatePaths ?? [],
    password: opts.password,
    users: [...new Set([...opts.users, ...admins])],
    admins,
    groups: opts.groups ?? {},
    // A single-user server refuses to run as root without it.
    spawnerArgs: process.getuid?.() === 0 ? ['--allow-root'] : [],
    services,
    roles,
  };
  writeFileSync(join(dir, 'hub-spec.json'), JSON.stringify(spec, null, 2));
  writeFileSync(join(dir, 'jupyterhub_config.py'), CONFIG_PY + (opts.preSpawnHook ? `\n${opts.preSpawnHook}\n` : ''));

  let log = '';
  const logFile = createWriteStream(join(dir, 'jupyterhub.log'));
  const hub = spawn(HUB_PYTHON, ['-m', 'jupyterhub', '-f', join(dir, 'jupyterhub_config.py')], {
    cwd: dir,
    // A process group of its own, for stop() to reach whatever is left if the hub hangs.
    detached: true,
    env: {
      // The proxy is `#!/usr/bin/env node`; Debian's node modules are not on this Node's path.
      PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
      NODE_PATH: '/usr/share/nodejs',
      HOME: dir,
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      ...opts.hubEnvironment,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onData = (b: Buffer): void => {
    log += b.toString();
    logFile.write(b);
  };
  hub.stdout!.on('data', onData);
  hub.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => hub.once('exit', () => resolve()));

  // The service runs in a session of its own, out of reach of the group: its pid is noted while the hub lives.
  const children = new Set<number>();
  const noteChildren = (): void => {
    if (hub.exitCode === null) for (const pid of childrenOf(hub.pid!)) children.add(pid);
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    noteChildren();
    const proxy = readPid(join(dir, 'jupyterhub-proxy.pid'));
    // A hub that stops on SIGTERM has stopped its service and its proxy; one that died or hangs has not.
    let clean = false;
    if (hub.exitCode === null && hub.signalCode === null) {
      hub.kill('SIGTERM');
      clean = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
    }
    if (!clean) {
      for (const pid of [...children, ...(proxy ? [proxy] : [])]) kill(pid);
      kill(-hub.pid!);
    }
    logFile.end();
    rmSync(dir, { recursive: true, force: true });
  };

  const hubInfo: Hub = { url, apiUrl: `${url}/hub/api`, hubUrl: `http://127.0.0.1:${hubPort}`, servicePrefix: `/services/${name}/`, serviceUrl, adminToken, other, dir, log: () => log, stop };
  try {
    await waitFor(opts.timeoutMs ?? 30_000, hub, async () => {
      noteChildren();
      const api = await get(`${url}/hub/api`);
      if (api?.status !== 200) return false;
      const routes = await get(`http://127.0.0.1:${proxyApiPort}/api/routes`, { Authorization: `token ${proxyToken}` });
      if (routes?.status !== 200 || !(`/services/${name}` in (JSON.parse(routes.body) as object))) return false;
      return (await get(serviceUrl)) !== undefined;
    });
    noteChildren();
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- jupyterhub log ---\n${log}`);
  }
  return hubInfo;
}

async function waitFor(timeoutMs: number, hub: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hub.exitCode !== null || hub.signalCode !== null) throw new Error(`jupyterhub exited with ${hub.exitCode ?? hub.signalCode}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`jupyterhub, its proxy route or the service did not answer within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** A GET that resolves undefined when nothing answers. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | undefined> {
  try {
    const r = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(5_000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Direct children of a process (Linux /proc). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces) start with state, then ppid.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Logs `user` in through the hub's form (JupyterHub 3.0's login form has no _xsrf field) and
 * returns the Cookie header of the hub session.
 */
export async function hubLogin(hub: Hub, user: string, password: string): Promise<string> {
  const r = await fetch(`${hub.url}/hub/login`, {
    method: 'POST',
    body: new URLSearchParams({ username: user, password }),
    redirect: 'manual',
  });
  if (r.status !== 302) throw new Error(`hub login of ${user} answered ${r.status}, not 302`);
  return r.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
}

/** What the hub's API says of a user (admin token): `server` is set once their server runs. */
export interface HubUserModel {
  name: string;
  server: string | null;
  pending: string | null;
  groups: string[];
}

export async function hubUser(hub: Hub, name: string): Promise<HubUserModel> {
  const r = await fetch(`${hub.apiUrl}/users/${encodeURIComponent(name)}`, { headers: { Authorization: `token ${hub.adminToken}` } });
  if (r.status !== 200) throw new Error(`GET /hub/api/users/${name} answered ${r.status}: ${await r.text()}`);
  return (await r.json()) as HubUserModel;
}

/** Asks the hub to start (POST) or stop (DELETE) a user's default server; returns the HTTP status (201/202, 204/202, or the error). */
export async function hubServer(hub: Hub, name: string, method: 'POST' | 'DELETE'): Promise<{ status: number; body: string }> {
  const r = await fetch(`${hub.apiUrl}/users/${encodeURIComponent(name)}/server`, { method, headers: { Authorization: `token ${hub.adminToken}` } });
  return { status: r.status, body: await r.text() };
}

/** Polls the user's model until `done` holds (e.g. m => m.server !== null && !m.pending). */
export async function waitForHubUser(hub: Hub, name: string, done: (m: HubUserModel) => boolean, timeoutMs = 30_000): Promise<HubUserModel> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const model = await hubUser(hub, name);
    if (done(model)) return model;
    if (Date.now() > deadline) throw new Error(`user ${name} did not reach the awaited state within ${timeoutMs} ms: ${JSON.stringify(model)}\n--- jupyterhub log ---\n${hub.log()}`);
    await sleep(250);
  }
}
