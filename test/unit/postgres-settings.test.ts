import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  describePostgresSettings,
  explainConnectError,
  passwordFromPassfile,
  resolvePostgresSettings,
  tlsOptions,
} from '../../src/store/postgres/connect.js';

/** The libpq way of reading a store's URL and environment, without a server (see test/e2e/postgres-connect.test.ts for one). */

const DEFAULTS = { host: '/var/run/postgresql', user: 'alice', home: '/home/alice' };
const PASSWORD = 's3cr:t/p@ss%word';
const URL_WITH_PASSWORD = `postgres://writer:${encodeURIComponent(PASSWORD)}@db.example.org:6432/usage?sslmode=verify-full&sslrootcert=/etc/hourmeter/ca.pem`;

describe('resolvePostgresSettings', () => {
  it('falls back on libpq defaults: the local socket, port 5432, the account, a database named after the user, sslmode=prefer', () => {
    const s = resolvePostgresSettings(undefined, {}, DEFAULTS);
    expect({ ...s, password: s.password }).toEqual({
      host: '/var/run/postgresql',
      port: 5432,
      user: 'alice',
      database: 'alice',
      password: undefined,
      passwordFrom: 'passfile',
      passfile: '/home/alice/.pgpass',
      sslmode: 'prefer',
      sslrootcert: '/home/alice/.postgresql/root.crt',
      origin: '--store',
    });
  });

  it('takes the environment over the defaults', () => {
    const env = { PGHOST: 'db.internal', PGPORT: '5433', PGUSER: 'reader', PGDATABASE: 'acct', PGPASSFILE: '/run/pgpass', PGSSLMODE: 'verify-ca', PGSSLROOTCERT: '/etc/ca.pem' };
    const s = resolvePostgresSettings(undefined, env, DEFAULTS);
    expect([s.host, s.port, s.user, s.database, s.passfile, s.sslmode, s.sslrootcert, s.passwordFrom]).toEqual(['db.internal', 5433, 'reader', 'acct', '/run/pgpass', 'verify-ca', '/etc/ca.pem', 'passfile']);
  });

  it('takes each part the URL gives over the environment, and the rest from the environment', () => {
    const env = { PGHOST: 'db.internal', PGPORT: '5433', PGUSER: 'reader', PGDATABASE: 'acct', PGPASSWORD: 'from-env', PGSSLMODE: 'disable', PGSSLROOTCERT: '/etc/ca.pem' };
    const s = resolvePostgresSettings('postgres://writer@db.example.org/usage?sslmode=require', env, DEFAULTS);
    expect([s.host, s.port, s.user, s.database, s.sslmode, s.sslrootcert, s.passwordFrom, s.password?.reveal()]).toEqual(['db.example.org', 5433, 'writer', 'usage', 'require', '/etc/ca.pem', 'PGPASSWORD', 'from-env']);
  });

  it('decodes the password, a Unix socket folder given as host, and an IPv6 address', () => {
    const s = resolvePostgresSettings(URL_WITH_PASSWORD, {}, DEFAULTS);
    expect([s.password?.reveal(), s.passwordFrom, s.port, s.sslrootcert]).toEqual([PASSWORD, 'url', 6432, '/etc/hourmeter/ca.pem']);
    expect(resolvePostgresSettings('postgresql://%2Frun%2Fpg/usage', {}, DEFAULTS).host).toBe('/run/pg');
    expect(resolvePostgresSettings('postgres:///usage?host=/run/pg&port=7000', {}, DEFAULTS)).toMatchObject({ host: '/run/pg', port: 7000, database: 'usage' });
    expect(resolvePostgresSettings('postgres://[::1]:7000/usage', {}, DEFAULTS).host).toBe('::1');
  });

  it('refuses what it cannot honour, naming where the setting came from and never echoing the URL', () => {
    const cases: [string | undefined, Record<string, string>, string][] = [
      ['mysql://u:pw@h/db', {}, '--store: a PostgreSQL store is a URL starting with postgres:// or postgresql://'],
      ['postgres://u:pw@h/db?sslmode=verify', {}, '--store: sslmode "verify" is not one of disable, allow, prefer, require, verify-ca, verify-full'],
      [undefined, { PGSSLMODE: 'on' }, 'PGSSLMODE "on" is not one of disable, allow, prefer, require, verify-ca, verify-full'],
      [undefined, { PGPORT: '54x' }, 'PGPORT: port "54x" is not a number from 1 to 65535'],
      ['postgres://u:pw@h/db?options=-c', {}, '--store: the URL parameter "options" is not supported; known: host, port, user, password, dbname, sslmode, sslrootcert, passfile'],
      ['postgres://u:pw@h/db?sslrootcert=system&sslmode=require', {}, 'sslrootcert=system needs sslmode=verify-full, not require: set sslmode=verify-full'],
      ['postgres://u:pw@h/db?host=a,b', {}, '--store: several hosts (a,b) are not supported: give one host'],
    ];
    for (const [url, env, message] of cases) {
      expect(() => resolvePostgresSettings(url, env, DEFAULTS)).toThrow(message);
    }
  });
});

describe('describePostgresSettings', () => {
  it('describes a URL with a password without it, saying where the password comes from', () => {
    const s = resolvePostgresSettings(URL_WITH_PASSWORD, {}, DEFAULTS);
    const text = describePostgresSettings(s);
    expect(text).toBe(
      'PostgreSQL database "usage" as user "writer" at db.example.org:6432 (sslmode=verify-full: TLS, certificate signed by /etc/hourmeter/ca.pem for host db.example.org; password from the URL)',
    );
    // Nor does the settings object give it away when printed or serialised.
    for (const printed of [text, JSON.stringify(s), inspect(s, { depth: 5 }), String(s.password)]) {
      expect(printed).not.toContain(PASSWORD);
      expect(printed).not.toContain(encodeURIComponent(PASSWORD));
    }
  });

  it('describes a socket and a password file', () => {
    const s = resolvePostgresSettings(undefined, { PGPASSFILE: '/run/pgpass' }, DEFAULTS);
    expect(describePostgresSettings(s)).toBe('PostgreSQL database "alice" as user "alice" at socket /var/run/postgresql/.s.PGSQL.5432 (no TLS over a Unix socket; password from /run/pgpass if it has one)');
  });

  it('keeps the password out of a driver error that quotes it', () => {
    const s = resolvePostgresSettings(URL_WITH_PASSWORD, {}, DEFAULTS);
    const err = explainConnectError(Object.assign(new Error(`bad thing near ${PASSWORD}`), { code: 'XX000' }), s);
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).toContain('bad thing near [hidden]');
  });
});

describe('passwordFromPassfile', () => {
  const target = { host: 'db.example.org', port: 6432, database: 'usage', user: 'writer' };

  it('takes the first matching line, with * as a wildcard and \\ escaping : and \\', () => {
    const text = ['# comment', 'db.example.org:6432:usage:reader:not-this', 'other:*:*:*:nor-this', 'db.example.org:*:usage:writer:pa\\:ss\\\\word:tail', '*:*:*:*:too-late', ''].join('\n');
    expect(passwordFromPassfile(text, target)).toBe('pa:ss\\word:tail');
  });

  it('matches the default socket folder as localhost, as libpq does', () => {
    expect(passwordFromPassfile('localhost:5432:*:*:local', { host: '/var/run/postgresql', port: 5432, database: 'x', user: 'y' })).toBe('local');
    expect(passwordFromPassfile('localhost:5432:*:*:local', { host: '/tmp/other', port: 5432, database: 'x', user: 'y' })).toBeUndefined();
  });

  it('skips lines with too few fields', () => {
    expect(passwordFromPassfile('db.example.org:6432:usage\n', target)).toBeUndefined();
  });
});

describe('tlsOptions', () => {
  const at = (mode: string, sslrootcert = '/nonexistent/ca.pem') =>
    resolvePostgresSettings(`postgres://u@db.example.org/x?sslmode=${mode}&sslrootcert=${sslrootcert}`, {}, DEFAULTS);

  it('maps sslmode as libpq: no TLS, unverified TLS, or a verified one', () => {
    expect(tlsOptions(at('disable'))).toBe(false);
    expect(tlsOptions(at('prefer'))).toEqual({ rejectUnauthorized: false });
    expect(tlsOptions(at('allow'))).toEqual({ rejectUnauthorized: false });
    // require without a CA file: TLS, no verification.
    expect(tlsOptions(at('require'))).toEqual({ rejectUnauthorized: false });
    // verify-full with the system roots: Node's own CA list (ca left unset), host checked.
    expect(tlsOptions(at('verify-full', 'system'))).toEqual({ rejectUnauthorized: true, ca: undefined });
    expect(tlsOptions(resolvePostgresSettings('postgres:///x?host=/run/pg&sslmode=verify-full', {}, DEFAULTS))).toBe(false);
  });

  it('refuses verify-ca and verify-full without a readable CA file', () => {
    expect(() => tlsOptions(at('verify-ca'))).toThrow('cannot read the root certificate /nonexistent/ca.pem that sslmode=verify-ca verifies the server with (ENOENT)');
  });
});
