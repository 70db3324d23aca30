import type pg from 'pg';

/** How a transaction sees the database (PostgreSQL's isolation levels). */
export type Isolation = 'read committed' | 'repeatable read' | 'repeatable read, read only';

/** Runs `work` in one transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(client: pg.Client, work: () => Promise<T>, isolation: Isolation = 'read committed'): Promise<T> {
  await client.query(`BEGIN ISOLATION LEVEL ${isolation.toUpperCase().replace(',', '')}`);
  try {
    const out = await work();
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
