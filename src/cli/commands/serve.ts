import { Command, Option } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { startServer } from '../../server/app.js';
import { DataError, UsageError } from '../../util/errors.js';
import { parseDuration } from '../../util/time.js';
import { addDbOption, DB, indexPath } from '../index-options.js';
import { localCopyPath, STORE, storeConnection } from '../store-options.js';
import { openUserDirectory } from '../user-directory.js';
import type { CliIO } from '../io.js';
import type { QuotaConfig } from '../../quota/policy.js';
import { MAX_AGE } from './check.js';
import { loadQuotaFile, QUOTA_FILE } from './quota.js';
import { addConfigOption, addNowOption, addSnapshotsOption, NOW, nowFrom, Settings, SNAPSHOTS, USERDB, type SharedOption } from '../options.js';
import { progressBar } from '../progress-bar.js';

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 8080;
const DEFAULT_REFRESH = '60s';
/** Query workers by default: one per CPU, up to this many. */
const DEFAULT_WORKERS_AT_MOST = 4;

const HOST: SharedOption<string> = {
  name: 'host',
  option: () => new Option('--host <address>', `address to listen on (default: ${DEFAULT_HOST})`),
  read: (s) => s.string('host', DEFAULT_HOST),
};

const PORT: SharedOption<number> = {
  name: 'port',
  option: () => new Option('--port <port>', `port to listen on, 0 for any free one (default: ${DEFAULT_PORT})`),
  read: (s) => {
    const text = s.string('port', String(DEFAULT_PORT));
    const port = Number(text);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${s.source('port')} ${JSON.stringify(text)}: give a port number from 0 to 65535`);
    return port;
  },
};

/** --token-file: the file holding the bearer token every path but /health needs; undefined for none. */
const TOKEN_FILE: SharedOption<string | undefined> = {
  name: 'token-file',
  option: () => new Option('--token-file <file>', 'require this bearer token (the file holds it) on everything but /health').env('HOURMETER_TOKEN_FILE'),
  read: (s) => s.string('token-file'),
};

/** --refresh in microseconds. */
const JUPYTERHUB: SharedOption<boolean> = {
  name: 'jupyterhub',
  option: () =>
    new Option('--jupyterhub', "run as a JupyterHub-managed service: users log in through the hub and see their own quota at the service's prefix (on by itself when the hub sets JUPYTERHUB_SERVICE_NAME)"),
  read: (s) => s.flag('jupyterhub'),
};

const REFRESH: SharedOption<number> = {
  name: 'refresh',
  option: () => new Option('--refresh <duration>', `how often to read new snapshot files into the index (default: ${DEFAULT_REFRESH})`),
  read: (s) => {
    const refresh = parseDuration(s.string('refresh', DEFAULT_REFRESH));
    if (refresh === null || refresh < 1_000_000) throw new UsageError(`${s.source('refresh')}: give a duration of at least 1s, e.g. 60s or 5m`);
    return refresh;
  },
};

const WORKERS: SharedOption<number> = {
  name: 'workers',
  option: () => new Option('--workers <n>', `query workers answering in parallel (default: the CPU count, at most ${DEFAULT_WORKERS_AT_MOST})`),
  read: (s) => {
    const workers = Number(s.string('workers', String(Math.min(DEFAULT_WORKERS_AT_MOST, availableParallelism()))));
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError(`${s.source('workers')}: give a number of workers from 1 to 64`);
    return workers;
  },
};

export function serveCommand(program: Command, io: CliIO): Command {
  const cmd = new Command('serve')
    .summary('a read-only HTTP API: monthly reports, stats, health and Prometheus metrics')
    .description(
      'Serves the index over HTTP, read-only, on 127.0.0.1:8080 by default:\n' +
        '  GET /report/monthly                 months with snapshots, ["2020/8","2020/9"]\n' +
        '  GET /report/monthly/2020/9          the monthly CSV (see `hourmeter report monthly`)\n' +
        '  GET /report/monthly/details/2020/9  one row per allocation\n' +
        '  GET /stats?from=&to=&by=            the JSON of `hourmeter stats -o json` (also tz, namespace, user, group)\n' +
        '  GET /health                         the latest snapshot and its age: "ok", or "stale" past --max-age\n' +
        '  GET /metrics                        Prometheus text format\n' +
        'With --quota FILE (needs --token-file):\n' +
        '  GET /quota/<user>                   the JSON of `hourmeter quota show --user <user> -o json`\n' +
        '  POST /quota/check                   {"user", "groups", "request", "hours"}: the JSON of `quota check`\n' +
        'With --token-file every path but /health needs "Authorization: Bearer <token>". A token from ' +
        '`hourmeter quota token --user U` opens only /quota/U and POST /quota/check for U (else 403). ' +
        'An unknown query parameter gets 400, naming it. New snapshot files are read into the index every --refresh.\n\n' +
        'With --jupyterhub (or run by the hub as a service; needs --quota): <prefix>/ shows the logged-in user their quota, ' +
        '<prefix>/admin every user to hub admins and the groups the quota file names under "admins"; the API also takes ' +
        'hub tokens, each for its own user.\n\n' +
        'With --store, the user database (groups) and the quota tokens are read from the PostgreSQL store on every ' +
        'request, so that several serve hosts behind one address agree on them.',
    )
    .addOption(HOST.option())
    .addOption(PORT.option())
    .addOption(TOKEN_FILE.option())
    .addOption(REFRESH.option())
    .addOption(MAX_AGE.option('how old the latest snapshot may be before /health says "stale", as for check'))
    .addOption(WORKERS.option())
    .addOption(USERDB.option('user database folder: groups, and the hashes of quota tokens'))
    .addOption(QUOTA_FILE.option())
    .addOption(JUPYTERHUB.option());
  addSnapshotsOption(cmd);
  addDbOption(cmd);
  cmd.addOption(STORE.option());
  addNowOption(cmd, 'take this instant as now for ages in /health and /metrics');
  addConfigOption(cmd);
  cmd.addHelpText('after', '\nExamples:\n  hourmeter serve\n  hourmeter serve --jupyterhub --quota /etc/hourmeter/quota.yaml   (as a JupyterHub service)\n  hourmeter serve --port 9090 --token-file /etc/hourmeter/api-token\n  hourmeter serve --token-file /etc/hourmeter/api-token --quota /etc/hourmeter/quota.yaml\n  curl -H "Authorization: Bearer $(cat /etc/hourmeter/api-token)" http://127.0.0.1:9090/report/monthly/2024/9');
  cmd.action(async () => {
    const s = Settings.of(cmd, program);
    const port = s.get(PORT);
    const refresh = s.get(REFRESH);
    const maxAgeUs = s.get(MAX_AGE).us;
    const workers = s.get(WORKERS);
    let token: string | null = null;
    const tokenFile = s.get(TOKEN_FILE);
    if (tokenFile !== undefined) {
      try {
        token = readFileSync(tokenFile, 'utf8').trim();
      } catch (e) {
        throw new UsageError(`${s.sourceOf(TOKEN_FILE)} ${tokenFile}: ${(e as Error).message}`);
      }
      if (token === '') throw new UsageError(`${s.sourceOf(TOKEN_FILE)} ${tokenFile} is empty: put the token in it`);
    }
    const { hubSettings } = await import('../../server/jupyterhub.js');
    const hub = hubSettings(io.env, s.get(JUPYTERHUB));
    if (hub !== null && !s.given(QUOTA_FILE)) throw new UsageError('--jupyterhub needs --quota FILE: the service shows what the quota file allows');
    let quota = null;
    if (s.given(QUOTA_FILE)) {
      if (token === null && hub === null) throw new UsageError(`--quota needs --token-file: the admin token sees every user, and per-user tokens only their own quota`);
      // With --store, the users and tokens every serve host shares; else the --userdb folder.
      quota = { config: watchQuotaFile(s, io), users: await openUserDirectory(s, io) };
    }
    const fixedNow = s.given(NOW) ? nowFrom(s) : null;
    const dir = s.get(SNAPSHOTS);
    // The hub says where it expects its service (JUPYTERHUB_SERVICE_URL), unless told otherwise.
    const serviceUrl = hub && io.env.JUPYTERHUB_SERVICE_URL ? new URL(io.env.JUPYTERHUB_SERVICE_URL) : null;
    const host = serviceUrl && !s.given(HOST) ? serviceUrl.hostname.replace(/^\[|\]$/g, '') : s.get(HOST);
    const listenPort = serviceUrl && !s.given(PORT) ? Number(serviceUrl.port || (serviceUrl.protocol === 'https:' ? 443 : 80)) : port;
    const listening = startServer({
      host,
      port: listenPort,
      token,
      snapshots: dir,
      dbPath: indexPath(s, dir),
      store: s.get(STORE) === undefined ? null : { ...storeConnection(s, io)!, copyPath: await localCopyPath(s, io, s.get(DB)) },
      refreshMs: refresh / 1000,
      workers,
      io,
      progress: progressBar,
      now: () => fixedNow ?? Date.now(),
      maxAgeUs,
      quota,
      hub,
    });
    const server = await listening.catch(async (e: NodeJS.ErrnoException) => {
      await quota?.users.close();
      const where = `${host}:${listenPort}`;
      if (e.code === 'EADDRINUSE') throw new DataError(`cannot listen on ${where}: the port is already in use; stop what holds it, or give another ${s.sourceOf(PORT)}`);
      if (e.code === 'EACCES') throw new DataError(`cannot listen on ${where}: ports below 1024 need privileges; give ${s.sourceOf(PORT)} 1024 or above`);
      if (e.code === 'EADDRNOTAVAIL') throw new DataError(`cannot listen on ${where}: this machine has no such address; fix ${s.sourceOf(HOST)}`);
      throw e;
    });
    // Serve until told to stop; then finish what is in flight and return (exit 0). The
    // handlers are in place before the address is printed: a supervisor may stop us at once.
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    io.stdout(`listening on ${server.url}\n`);
    await stopped;
    await server.close();
    await quota?.users.close();
  });
  return cmd;
}

/**
 * The quota file, read at start (a mistake there stops serve with exit 2) and again whenever
 * it changes; a changed file with a mistake is reported and the last good one kept.
 */
function watchQuotaFile(s: Settings, io: CliIO): () => QuotaConfig {
  const file = s.get(QUOTA_FILE);
  const stamp = (): string => {
    try {
      const st = statSync(file);
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  };
  let seen = stamp();
  let config = loadQuotaFile(s);
  return () => {
    const now = stamp();
    if (now === seen) return config;
    seen = now;
    try {
      config = loadQuotaFile(s);
      io.warn(`re-read the quota file ${file}`);
    } catch (e) {
      io.warn(`${(e as Error).message}; keeping the quota file as it was before this change`);
    }
    return config;
  };
}
