import type pg from 'pg';
import type { Unconfirmed } from '../../snapshots/spool-journal.js';
import { journalLockKey } from './captures.js';

/**
 * Forwards a journal file the spool holds to the store (docs/store.md#the-spool). The spooled
 * file goes on after the lines the store holds for the same hour file, in the order it was
 * written: the store's hour file then reads as a folder's would after a watcher restarted
 * there. Its first line is a header stamped with the time the spool's writer opened it, so
 * where the store holds that line an earlier forward of the file was stopped (or had finished
 * before the file could be removed): the lines from there on must be the file's first lines,
 * and only the rest is added. Lines go in INSERTs of a thousand, each all or nothing, so a
 * forward stopped anywhere (kill -9) leaves the file's first lines, and the next one adds the
 * others. A batch the store may or may not have taken (Unconfirmed) is looked up by its hour
 * file and line numbers: its copy in the spool is skipped when the store holds it.
 */

export interface SpooledJournal {
  /** The source's folder name, `journal/<source>`'s. */
  source: string;
  /** `journal/<source>/<hour>Z.jsonl`, the hour file in the store. */
  file: string;
  /** The spooled file's complete lines. */
  lines: string[];
  unconfirmed: Unconfirmed[];
}

export type JournalForward =
  | {
      /** Lines added now, and of them the journal's own (not headers); lines an earlier forward added; copies of unconfirmed batches the store holds. */
      added: number;
      events: number;
      held: number;
      skipped: number;
    }
  | { conflict: string };

/** Whether a line is a journal header (the writer's, not a line the watcher received). */
function isHeader(line: string): boolean {
  try {
    return (JSON.parse(line) as { type?: unknown } | null)?.type === 'journal';
  } catch {
    return false;
  }
}

/** Lines per INSERT (4 parameters each). */
const LINES_PER_INSERT = 1000;

function placeholders(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) out.push(`(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
  return out.join(', ');
}

const validNote = (u: Unconfirmed): boolean =>
  typeof u.file === 'string' && Array.isArray(u.lines) && u.lines.every((l) => typeof l === 'string') && [u.line, u.count].every((n) => Number.isSafeInteger(n) && n >= 1) && Number.isSafeInteger(u.at) && u.at >= 2 && u.count <= u.lines.length;

/** The stored lines of a file from line `from` on, in order. */
async function storedFrom(client: pg.Client, source: string, file: string, from: number, to = 2 ** 31 - 1): Promise<string[]> {
  const r = await client.query<{ line: string }>('SELECT line FROM journal_lines WHERE source = $1 AND file = $2 AND line_number BETWEEN $3 AND $4 ORDER BY line_number', [source, file, from, to]);
  return r.rows.map((row) => row.line);
}

/** Forwards one spooled journal file; the caller holds the source's journal lock (tryJournalLock). */
export async function forwardJournal(client: pg.Client, j: SpooledJournal): Promise<JournalForward> {
  // The copies of unconfirmed batches that the store took after all.
  const skip = new Set<number>();
  for (const u of j.unconfirmed) {
    if (!validNote(u)) continue;
    const copy = u.lines.slice(u.lines.length - u.count);
    const from = u.at - 1;
    // A note written before its lines, which a killed writer never wrote, is no copy.
    if (copy.some((line, i) => j.lines[from + i] !== line)) continue;
    const stored = await storedFrom(client, j.source, u.file, u.line, u.line + u.lines.length - 1);
    if (stored.length === u.lines.length && stored.every((line, i) => line === u.lines[i])) copy.forEach((_, i) => skip.add(from + i));
  }
  const lines = j.lines.filter((_, i) => !skip.has(i));
  if (lines.length === 0) return { added: 0, events: 0, held: 0, skipped: skip.size };

  const r = await client.query<{ n: number; first: number | null }>(
    'SELECT coalesce(max(line_number), 0)::int AS n, min(line_number) FILTER (WHERE line = $3)::int AS first FROM journal_lines WHERE source = $1 AND file = $2',
    [j.source, j.file, lines[0]],
  );
  const count = r.rows[0]!.n;
  const first = r.rows[0]!.first;
  let held = 0;
  if (first !== null) {
    const stored = await storedFrom(client, j.source, j.file, first);
    const differs = stored.findIndex((line, i) => line !== lines[i]);
    if (differs >= 0) {
      return {
        conflict:
          `line ${first + differs} of ${j.file} in the store is not line ${differs + 1} of the spooled file, though both files have the same first line (line ${first}); ` +
          'a journal is only ever appended to, so the spooled file is left as it is: check where it comes from',
      };
    }
    held = stored.length;
  }
  for (let from = held; from < lines.length; from += LINES_PER_INSERT) {
    const chunk = lines.slice(from, from + LINES_PER_INSERT);
    const params: unknown[] = [];
    chunk.forEach((line, i) => params.push(j.source, j.file, count + 1 + (from - held) + i, line));
    await client.query(`INSERT INTO journal_lines (source, file, line_number, line) VALUES ${placeholders(chunk.length, 4)}`, params);
  }
  const events = lines.slice(held).filter((line) => !isHeader(line)).length;
  return { added: lines.length - held, events, held, skipped: skip.size };
}

/**
 * Takes a source's journal lock in the store if it is free (a watcher writing to the store
 * holds it); null when it is held. A session's advisory locks nest: the watcher's own
 * connection takes it again.
 */
export async function tryJournalLock(client: pg.Client, source: string): Promise<(() => Promise<void>) | null> {
  const key = journalLockKey(source);
  const r = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
  if (!r.rows[0]!.locked) return null;
  return async () => {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
  };
}
