import { expect } from 'vitest';
import { run, tempDir } from './cli.js';
import type { Postgres } from './postgres.js';

let made = 0;

/**
 * A new database on `server` with the store's schema, made as an operator makes it (`hourmeter
 * store migrate`), for one test's exact counts. `name` starts the database's name.
 */
export function migratedStore(server: Postgres, name: string): { url: string; database: string; psql: (sql: string) => string } {
  const database = `${name}_${++made}`;
  server.psql(`CREATE DATABASE ${database}`, { database: 'postgres' });
  const url = server.url({ database });
  const r = run(['store', 'migrate', '--store', url, '--quiet'], { cwd: tempDir() });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return { url, database, psql: (sql) => server.psql(sql, { database }) };
}
