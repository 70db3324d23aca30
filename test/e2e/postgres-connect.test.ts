import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeServerCertificate, makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { connectPostgres, describePostgresSettings, resolvePostgresSettings, type PostgresSettings } from '../../src/store/postgres/connect.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

/**
 * Connecting to a real PostgreSQL 15 the libpq way: the URL, the environment alone, a password
 * file, and TLS that really verifies (sslmode=verify-full fails on a wrong CA or a certificate
 * for another host; verify-ca checks the CA only).
 */

const DEFAULTS = { host: '/nonexistent-socket-dir', user: 'nobody-here', home: '/nonexistent-home' };

let dir: string;
let certs: TestCertificates;
let otherCa: TestCertificates;
const servers: Postgres[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hourmeter-pg-connect-'));
  certs = await makeTestCertificates(join(dir, 'certs'));
  otherCa = await makeTestCertificates(join(dir, 'other-ca'));
});
afterAll(() => {
  for (const server of servers) server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function server(tls?: { certFile: string; keyFile: string }): Promise<Postgres> {
  const pgServer = await startPostgres({ tls });
  servers.push(pgServer);
  return pgServer;
}

interface Seen {
  user: string;
  database: string;
  ssl: boolean;
}

/** Connects, asks the server who we are and whether the connection is encrypted, disconnects. */
async function connectAndAsk(settings: PostgresSettings, warnings: string[] = []): Promise<Seen> {
  const client: pg.Client = await connectPostgres(settings, { warn: (line) => warnings.push(line), timeoutMs: 10_000 });
  try {
    const r = await client.query<{ user: string; database: string; ssl: boolean }>(
      'SELECT current_user AS "user", current_database() AS database, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return r.rows[0]!;
  } finally {
    await client.end();
  }
}

async function connectError(settings: PostgresSettings): Promise<Error & { code?: string }> {
  try {
    await connectAndAsk(settings);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('the connection succeeded, but should have failed');
}

function passfile(line: string, mode: number): string {
  const file = join(dir, `pgpass-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `# host:port:database:user:password\n${line}\n`, { mode });
  return file;
}

describe('a server whose certificate names 127.0.0.1', () => {
  let db: Postgres;
  beforeAll(async () => {
    db = await server({ certFile: certs.paths.serverCert, keyFile: certs.paths.serverKey });
  });

  it('connects with the URL alone, verify-full with the CA in sslrootcert', async () => {
    const url = db.url({ params: { sslmode: 'verify-full', sslrootcert: certs.paths.caCert } });
    const settings = resolvePostgresSettings(url, {}, DEFAULTS);
    expect(await connectAndAsk(settings)).toEqual({ user: 'hourmeter_admin', database: 'hourmeter', ssl: true });
  });

  it('connects with the libpq environment alone: the password from PGPASSFILE, verify-full with PGSSLROOTCERT', async () => {
    const env = {
      PGHOST: '127.0.0.1',
      PGPORT: String(db.port),
      PGUSER: db.superuser,
      PGDATABASE: 'hourmeter',
      PGPASSFILE: passfile(`127.0.0.1:${db.port}:hourmeter:${db.superuser}:${db.password.replace(/[:\\]/g, '\\$&')}`, 0o600),
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: certs.paths.caCert,
    };
    const warnings: string[] = [];
    expect(await connectAndAsk(resolvePostgresSettings(undefined, env, DEFAULTS), warnings)).toEqual({ user: 'hourmeter_admin', database: 'hourmeter', ssl: true });
    expect(warnings).toEqual([]);
  });

  it('takes each part from the URL over the environment', async () => {
    const env = { PGHOST: '192.0.2.1', PGPORT: '1', PGUSER: 'someone', PGDATABASE: 'nothing', PGSSLMODE: 'disable', PGSSLROOTCERT: otherCa.paths.caCert };
    const url = db.url({ params: { sslmode: 'verify-full', sslrootcert: certs.paths.caCert } });
    expect(await connectAndAsk(resolvePostgresSettings(url, env, DEFAULTS))).toEqual({ user: 'hourmeter_admin', database: 'hourmeter', ssl: true });
  });

  it('connects over the Unix socket in PGHOST (libpq never uses TLS there)', async () => {
    const env = { PGHOST: db.socketDir, PGPORT: String(db.port), PGUSER: db.superuser, PGPASSFILE: passfile(`*:*:*:${db.superuser}:${db.password}`, 0o600), PGSSLMODE: 'verify-full' };
    const settings = resolvePostgresSettings(undefined, env, DEFAULTS);
    // PGDATABASE unset: the database is named after the user, as in libpq.
    expect(settings.database).toBe('hourmeter_admin');
    expect(await connectAndAsk({ ...settings, database: 'hourmeter' })).toEqual({ user: 'hourmeter_admin', database: 'hourmeter', ssl: false });
  });

  it('ignores a password file others can read, as libpq does, and says how to fix it', async () => {
    const file = passfile(`*:*:*:*:${db.password}`, 0o644);
    const env = { PGHOST: '127.0.0.1', PGPORT: String(db.port), PGUSER: db.superuser, PGDATABASE: 'hourmeter', PGPASSFILE: file, PGSSLMODE: 'disable' };
    const warnings: string[] = [];
    const settings = resolvePostgresSettings(undefined, env, DEFAULTS);
    const err = await connectAndAsk(settings, warnings).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(warnings).toEqual([`password file ${file} can be read by others, so it is ignored: run chmod 600 ${file}`]);
    expect(err?.message).toBe(
      `the server asks user "hourmeter_admin" for a password and none is given: put it in ${file} (mode 0600, a line host:port:database:user:password) or name a password file with PGPASSFILE`,
    );
  });

  it('fails verify-full with a wrong CA, from the URL and from PGSSLROOTCERT', async () => {
    const url = db.url({ params: { sslmode: 'verify-full', sslrootcert: otherCa.paths.caCert } });
    const fromUrl = await connectError(resolvePostgresSettings(url, {}, DEFAULTS));
    expect(fromUrl.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(fromUrl.message).toContain(`the server's certificate is not signed by the CA in ${otherCa.paths.caCert}`);

    const fromEnv = await connectError(resolvePostgresSettings(db.url(), { PGSSLMODE: 'verify-full', PGSSLROOTCERT: otherCa.paths.caCert }, DEFAULTS));
    expect(fromEnv.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('checks the CA under sslmode=require when the root certificate file exists, and not when it does not (libpq)', async () => {
    const wrongCa = await connectError(resolvePostgresSettings(db.url({ params: { sslmode: 'require', sslrootcert: otherCa.paths.caCert } }), {}, DEFAULTS));
    expect(wrongCa.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const noCaFile = resolvePostgresSettings(db.url({ params: { sslmode: 'require', sslrootcert: join(dir, 'missing.pem') } }), {}, DEFAULTS);
    expect((await connectAndAsk(noCaFile)).ssl).toBe(true);
  });

  it('fails verify-full with a missing CA file, naming it', async () => {
    const missing = join(dir, 'missing.pem');
    const err = await connectError(resolvePostgresSettings(db.url({ params: { sslmode: 'verify-full', sslrootcert: missing } }), {}, DEFAULTS));
    expect(err.message).toBe(
      `cannot read the root certificate ${missing} that sslmode=verify-full verifies the server with (ENOENT): give the CA file with sslrootcert= in the URL or PGSSLROOTCERT, sslrootcert=system for the system's roots, or a weaker sslmode`,
    );
  });

  it('reports a wrong password without the password, and says where it came from', async () => {
    const wrong = 'Wr0ng-S3cret-For-Test';
    const settings = resolvePostgresSettings(db.url({ user: db.superuser, password: wrong, params: { sslmode: 'verify-full', sslrootcert: certs.paths.caCert } }), {}, DEFAULTS);
    const err = await connectError(settings);
    expect(err.code).toBe('28P01');
    expect(err.message).not.toContain(wrong);
    expect(err.stack ?? '').not.toContain(wrong);
    expect(err.message).toBe(
      `cannot connect to the ${describePostgresSettings(settings)}: password authentication failed for user "hourmeter_admin"; check the password (in --store's URL)`,
    );
    expect(describePostgresSettings(settings)).not.toContain(wrong);
    expect(db.log()).not.toContain(wrong);
  });
});

describe('a server whose certificate names another host', () => {
  let db: Postgres;
  beforeAll(async () => {
    const other = await makeServerCertificate(certs, 'elsewhere', ['DNS:db.elsewhere.invalid']);
    db = await server({ certFile: other.cert, keyFile: other.key });
  });

  it('fails verify-full with the right CA: the host name does not match', async () => {
    const settings = resolvePostgresSettings(db.url({ params: { sslmode: 'verify-full', sslrootcert: certs.paths.caCert } }), {}, DEFAULTS);
    const err = await connectError(settings);
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(err.message).toContain(
      "the server's certificate is not for host 127.0.0.1: connect with the host name the certificate names, or use sslmode=verify-ca to skip the host name check",
    );
  });

  it('fails verify-full from the environment alone too', async () => {
    const env = { PGHOST: '127.0.0.1', PGPORT: String(db.port), PGUSER: db.superuser, PGPASSWORD: db.password, PGSSLMODE: 'verify-full', PGSSLROOTCERT: certs.paths.caCert };
    expect((await connectError(resolvePostgresSettings(undefined, env, DEFAULTS))).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('passes verify-ca with the right CA: only the CA is checked', async () => {
    const settings = resolvePostgresSettings(db.url({ params: { sslmode: 'verify-ca', sslrootcert: certs.paths.caCert } }), {}, DEFAULTS);
    expect(await connectAndAsk(settings)).toEqual({ user: 'hourmeter_admin', database: 'hourmeter', ssl: true });
  });

  it('fails verify-ca with a wrong CA', async () => {
    const settings = resolvePostgresSettings(db.url({ params: { sslmode: 'verify-ca', sslrootcert: otherCa.paths.caCert } }), {}, DEFAULTS);
    expect((await connectError(settings)).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

describe('a server without TLS', () => {
  let db: Postgres;
  beforeAll(async () => {
    db = await server();
  });

  it('falls back to plain text under sslmode=prefer (the default), as libpq does', async () => {
    expect((await connectAndAsk(resolvePostgresSettings(db.url(), {}, DEFAULTS))).ssl).toBe(false);
  });

  it('refuses to go on under verify-full, and says what to change', async () => {
    const err = await connectError(resolvePostgresSettings(db.url({ params: { sslmode: 'verify-full', sslrootcert: certs.paths.caCert } }), {}, DEFAULTS));
    expect(err.message).toContain('the server does not offer TLS, which sslmode=verify-full needs: turn on ssl in the server or choose a weaker sslmode');
  });
});
