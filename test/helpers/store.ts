import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { FIXTURES, run, tempDir } from './cli.js';
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

/**
 * `total` distinct AI4OS legacy files of about 16 kB each, 6-hourly from 2022, into `dir`: a
 * folder large enough to take several import batches, for runs killed halfway.
 */
export function writeLegacyFiles(dir: string, total: number): void {
  const body = readFileSync(join(FIXTURES, 'ai4os/snapshots/2024-09-01T00:01:01.json'));
  for (let i = 0; i < total; i++) {
    const at = new Date(Date.UTC(2022, 0, 1) + i * 6 * 3600_000).toISOString().slice(0, 19);
    writeFileSync(join(dir, `${at}.json`), Buffer.concat([body, Buffer.from(`\n${i}`)]));
  }
}

/** What a test of captures starts and must stop after it: fake clusters and CLI processes. */
export interface Started {
  fakes: { close(): Promise<void> }[];
  children: { kill(signal: NodeJS.Signals): boolean }[];
}

/** Lists to push a test's fake clusters and processes into; after each test they are killed and closed. */
export function stoppedAfterEach(): Started {
  const started: Started = { fakes: [], children: [] };
  afterEach(async () => {
    for (const c of started.children.splice(0)) c.kill('SIGKILL');
    await Promise.all(started.fakes.splice(0).map((f) => f.close()));
  });
  return started;
}
