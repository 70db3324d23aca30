import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/store/postgres/schema.js';
import { INDEX_TABLES } from '../../src/store/postgres/index-replica.js';
import { openIndex } from '../../src/store/schema.js';

/**
 * The PostgreSQL store's index tables hold what the SQLite index holds, column for column:
 * a column the SQLite schema gains and the list of index tables lacks would be lost on its
 * way through the store, silently. This compares the three: the SQLite schema, the list the
 * copy and the write-back use, and the migration that creates the tables.
 */
describe('the index tables of the PostgreSQL store', () => {
  const db = openIndex(':memory:', { create: true });
  const sqliteTables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]);
  const ddl = MIGRATIONS.map((m) => m.sql).join('\n');

  it('are every table of the SQLite index, with its columns in its order', () => {
    expect(INDEX_TABLES.map((t) => t.name).sort()).toEqual(sqliteTables);
    for (const t of INDEX_TABLES) {
      const columns = (db.prepare(`PRAGMA table_info("${t.name}")`).all() as { name: string }[]).map((c) => c.name);
      expect(t.columns, t.name).toEqual(columns);
      expect(t.types, t.name).toHaveLength(columns.length);
    }
  });

  it('are created by the migrations with the same columns', () => {
    for (const t of INDEX_TABLES) {
      // live_allocations is made LIKE allocations.
      const like = new RegExp(`CREATE TABLE index_${t.name} \\(LIKE index_(\\w+)`).exec(ddl);
      const create = new RegExp(`CREATE TABLE index_${like ? like[1] : t.name} \\(([^;]*?)\\);`).exec(ddl);
      const body = create ? create[1]! : '';
      expect(body, t.name).not.toBe('');
      const declared = body
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('PRIMARY KEY'))
        .flatMap((line) => line.split(/,\s*(?![^(]*\))/))
        .map((part) => part.trim().split(/\s+/)[0]!.replace(/"/g, ''))
        .filter((name) => name !== '' && name !== 'PRIMARY');
      const expected = t.key === 'rowid' ? ['rowid', ...t.columns] : [...t.columns];
      expect(declared, t.name).toEqual(expected);
    }
  });
});
