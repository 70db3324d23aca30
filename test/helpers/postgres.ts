import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './jupyterhub.js';

/**
 * A real PostgreSQL 15 (Debian's `postgresql`) for tests: a throwaway cluster in a temporary
 * folder, listening on 127.0.0.1 and on a Unix socket in that folder, with a superuser who
 * logs in with a password (scram-sha-256), optionally with TLS.
 */

/** Debian keeps the server binaries off PATH. */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface PostgresOptions {
  /** The superuser's name (default `hourmeter_admin`) and password (default random). */
  superuser?: string;
  password?: string;
  /** A database created for the tests (default `hourmeter`), owned by the superuser. */
  database?: string;
  /** Serve TLS with this certificate and key (PEM files); plain connections stay allowed. */
  tls?: { certFile: string; keyFile: string };
  /** How long to wait for initdb, for the server to accept connections and for it to stop (default 30 s). */
  timeoutMs?: number;
}

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  /** The folder holding the Unix socket (`.s.PGSQL.<port>`), the data and the server's log. */
  socketDir: string;
  superuser: string;
  password: string;
  database: string;
  /** postgres://user:password@127.0.0.1:port/database, with `params` as its query string. */
  url(opts?: { user?: string; password?: string; database?: string; params?: Record<string, string> }): string;
  /** Runs SQL with psql over the Unix socket (as the superuser unless `user` is given); returns its stdout, throws with its stderr. */
  psql(sql: string, opts?: { user?: string; password?: string; database?: string }): string;
  /** The server's log so far. */
  log(): string;
  /** Stops the server as a crash would (`pg_ctl stop -m immediate`), keeping its data, for an outage. */
  halt(): void;
  /** Starts the halted server again, on the same data and port. */
  resume(): void;
  /** Stops the server (immediate shutdown) and removes its folder; safe to call more than once. */
  stop(): void;
}

/**
 * initdb refuses to run as root: as root, the cluster belongs to Debian's `postgres` user (made
 * by the package) or, failing that, to `nobody`.
 */
function serverAccount(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    return { name, uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  }
  throw new Error('running as root, but neither the user postgres nor nobody exists to own the test cluster');
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    throw new Error(`${PG_BIN}/initdb is missing: install Debian's postgresql (apt-get install -y postgresql)`);
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const superuser = opts.superuser ?? 'hourmeter_admin';
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const database = opts.database ?? 'hourmeter';
  const account = serverAccount();
  // /tmp is world-traversable; the folder itself belongs to the server's user.
  const dir = mkdtempSync(join(tmpdir(), 'hourmeter-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const port = await freePort();
  const own = (path: string): void => {
    if (account) chownSync(path, account.uid, account.gid);
  };
  chmodSync(dir, 0o755);
  own(dir);

  const asServer = (cmd: string, args: string[]): SpawnSyncReturns<string> => {
    const argv = account ? ['runuser', ['-u', account.name, '--', join(PG_BIN, cmd), ...args]] as const : [join(PG_BIN, cmd), args] as const;
    const r = spawnSync(argv[0], [...argv[1]], { encoding: 'utf8', timeout: timeoutMs, cwd: dir, env: { PATH: process.env.PATH ?? '', LANG: 'C.UTF-8', TZ: 'UTC' } });
    if (r.error) throw new Error(`${cmd} failed to run: ${r.error.message}`);
    return r;
  };
  const serverLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (existsSync(join(data, 'postmaster.pid'))) asServer('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', String(Math.ceil(timeoutMs / 1000))]);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    own(pwfile);
    const init = asServer('initdb', ['-D', data, '-U', superuser, '--pwfile', pwfile, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    rmSync(pwfile);
    if (init.status !== 0) throw new Error(`initdb exited with ${init.status}: ${init.stderr}${init.stdout}`);

    const conf = [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      // Speed, not durability, for a throwaway cluster; synchronous_commit stays on, so an
      // immediate stop still keeps every committed row.
      'fsync = off',
      'synchronous_commit = on',
      'full_page_writes = off',
      `log_min_messages = warning`,
    ];
    if (opts.tls) {
      // The server wants its key owned by itself and readable by nobody else.
      const cert = join(data, 'server.crt');
      const key = join(data, 'server.key');
      copyFileSync(opts.tls.certFile, cert);
      copyFileSync(opts.tls.keyFile, key);
      chmodSync(key, 0o600);
      own(cert);
      own(key);
      conf.push('ssl = on', `ssl_cert_file = 'server.crt'`, `ssl_key_file = 'server.key'`);
    }
    writeFileSync(join(data, 'postgresql.auto.conf'), `${conf.join('\n')}\n`, { flag: 'a' });
    // Every connection, over TCP or the socket, logs in with a password.
    writeFileSync(join(data, 'pg_hba.conf'), ['local all all scram-sha-256', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n'));

    const start = asServer('pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000))]);
    if (start.status !== 0) throw new Error(`pg_ctl start exited with ${start.status}: ${start.stderr}${start.stdout}`);

    const pg: Postgres = {
      host: '127.0.0.1',
      port,
      socketDir: dir,
      superuser,
      password,
      database,
      url(o = {}) {
        const user = encodeURIComponent(o.user ?? superuser);
        const pass = encodeURIComponent(o.password ?? (o.user === undefined ? password : ''));
        const query = o.params ? `?${new URLSearchParams(o.params).toString()}` : '';
        return `postgres://${user}${pass ? `:${pass}` : ''}@127.0.0.1:${port}/${encodeURIComponent(o.database ?? database)}${query}`;
      },
      psql(sql, o = {}) {
        const r = spawnSync(join(PG_BIN, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', o.user ?? superuser, '-d', o.database ?? database, '-c', sql], {
          encoding: 'utf8',
          timeout: timeoutMs,
          env: { PATH: process.env.PATH ?? '', PGPASSWORD: o.password ?? password, PGCONNECT_TIMEOUT: '10', LANG: 'C.UTF-8' },
        });
        if (r.error) throw new Error(`psql failed to run: ${r.error.message}`);
        if (r.status !== 0) throw new Error(`psql exited with ${r.status}: ${r.stderr.trim()}`);
        return r.stdout;
      },
      log: serverLog,
      halt() {
        const r = asServer('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', String(Math.ceil(timeoutMs / 1000))]);
        if (r.status !== 0) throw new Error(`pg_ctl stop exited with ${r.status}: ${r.stderr}${r.stdout}`);
      },
      resume() {
        const r = asServer('pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', String(Math.ceil(timeoutMs / 1000))]);
        if (r.status !== 0) throw new Error(`pg_ctl start exited with ${r.status}: ${r.stderr}${r.stdout}\n--- postgres log ---\n${serverLog()}`);
      },
      stop,
    };
    if (database !== 'postgres') pg.psql(`CREATE DATABASE "${database}"`, { database: 'postgres' });
    return pg;
  } catch (err) {
    const log = serverLog();
    stop();
    throw new Error(`${(err as Error).message}\n--- postgres log ---\n${log}`);
  }
}
