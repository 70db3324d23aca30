import type pg from 'pg';
import { UnconfirmedWrite, type JournalRows, type SnapshotSink } from '../../snapshots/captures.js';
import { JOURNAL_DIR, sourceId, type JournalSource } from '../../snapshots/journal.js';
import { LockBusy } from '../../snapshots/lock.js';
import { formatTimestamp } from '../../util/time.js';
import { checkCaptureStore } from './import.js';

/**
 * `snapshot --store` and `watch --store`: captures written straight into the store's rows,
 * exactly the rows `hourmeter store import` makes of the folder they would have written
 * (snapshots/captures.ts). A document is one INSERT and is never rewritten; a journal flush
 * is one transaction, numbered on from the lines its file holds. The folder's lock files are
 * session advisory locks here: one dies with its connection, so no lease is needed.
 */

/** How often a busy lock is tried again. */
const LOCK_POLL_MS = 100;
/** Lines per INSERT (4 parameters each, well under the protocol's 65535). */
const LINES_PER_INSERT = 1000;

/** `($1, $2, $3, $4), ($5, ...)` for rows of `width` parameters. */
function placeholders(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) out.push(`(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
  return out.join(', ');
}

/** The store's capture sink, with what `watch --store` builds its journal from (history/spooling.ts). */
export interface PostgresCaptures extends SnapshotSink {
  rows: JournalRows;
  /** Takes the lock of a source's journal, waiting up to `waitMs`; returns its release. */
  lockJournal(source: JournalSource, waitMs: number): Promise<() => Promise<void>>;
  /** Runs `work` on the connection with nothing else in between (a forward's transactions). */
  exclusive<T>(work: (client: pg.Client) => Promise<T>): Promise<T>;
}

/** The advisory lock of a source's journal: one writer at a time, a watcher or a forward of the spool. */
export const journalLockKey = (source: string): string => `hourmeter watch ${source}`;

/** Whether an error is the server's SQL answer (SQLSTATE), not a lost connection (classes 08 and 57, or the network's errno). */
function refusedForCertain(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57)/.test(code) && !/^E[A-Z]+$/.test(code);
}

/**
 * The store as a capture sink. Checks up front that the schema is current and the role may
 * write captures (ImportRefused names the GRANT otherwise), so that nothing is captured in vain.
 * `place` names the database in messages.
 */
export async function postgresCaptures(client: pg.Client, place: string, stateDir: string | null = null): Promise<PostgresCaptures> {
  await checkCaptureStore(client, 'capture');
  // One connection: a journal's transaction must not take in a document written meanwhile.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => undefined);
    return next;
  };

  /** Who holds the advisory lock `key`, as its connection says (its application_name names the process). */
  const holderOf = async (key: string): Promise<string> => {
    const r = await serial(() =>
      client.query<{ pid: number; application_name: string | null; since: Date | null }>(
        `SELECT l.pid, a.application_name, a.backend_start AS since
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
        [key],
      ),
    );
    const row = r.rows[0];
    if (!row) return 'its holder just let go';
    const since = row.since ? `, connected since ${formatTimestamp(row.since.getTime() * 1000)}` : '';
    return `${row.application_name ? row.application_name : `PostgreSQL backend pid ${row.pid}`}${since}`;
  };

  const lock = async (key: string, waitMs: number, holder: string): Promise<() => Promise<void>> => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const r = await serial(() => client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]));
      if (r.rows[0]!.locked) {
        return async () => {
          await serial(() => client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])).catch(() => undefined);
        };
      }
      if (Date.now() >= deadline) {
        throw new LockBusy(
          `${holder} (${await holderOf(key)}); waited ${Math.round(waitMs / 1000)} s for its lock in the ${place}. ` +
            "The lock is a session advisory lock, released as soon as that process's connection to the database ends",
        );
      }
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  };

  const rows: JournalRows = {
    lineCount: async (source, file) => {
      const r = await serial(() => client.query<{ n: number }>('SELECT coalesce(max(line_number), 0)::int AS n FROM journal_lines WHERE source = $1 AND file = $2', [source, file]));
      return r.rows[0]!.n;
    },
    appendLines: (source, file, firstLineNumber, lines) =>
      serial(async () => {
        await client.query('BEGIN');
        try {
          for (let from = 0; from < lines.length; from += LINES_PER_INSERT) {
            const chunk = lines.slice(from, from + LINES_PER_INSERT);
            const params: unknown[] = [];
            chunk.forEach((line, i) => params.push(source, file, firstLineNumber + from + i, line));
            await client.query(`INSERT INTO journal_lines (source, file, line_number, line) VALUES ${placeholders(chunk.length, 4)}`, params);
          }
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
        try {
          await client.query('COMMIT');
        } catch (e) {
          // Only an SQL error says the COMMIT was not applied; a connection lost (or a server
          // shutting down) on the way may have applied it: the spool must know (history/spooling.ts).
          if (!refusedForCertain(e)) throw new UnconfirmedWrite(e);
          await client.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      }),
  };

  const lockJournal = (source: JournalSource, waitMs: number) => {
    const id = sourceId(source);
    return lock(journalLockKey(id), waitMs, `another watcher is writing the journal ${JOURNAL_DIR}/${id}`);
  };

  return {
    rows,
    lockJournal,
    exclusive: (work) => serial(() => work(client)),
    where: (name) => `${name} in the ${place}`,
    stateDir,
    lockSnapshots: (waitMs) => lock('hourmeter snapshot', waitMs, 'another snapshot is running'),
    async writeSnapshot(name, bytes, capturedAtUs) {
      const r = await serial(() =>
        client.query('INSERT INTO snapshot_documents (name, captured_at, content) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING name', [name, formatTimestamp(capturedAtUs), bytes]),
      );
      return r.rowCount === 1;
    },
    close: () => serial(() => client.end()).catch(() => undefined),
  };
}
