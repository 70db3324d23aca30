import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import type pg from 'pg';
import { listSnapshots } from '../snapshots/files.js';
import { JOURNAL_DIR, listJournals, readJournalFile } from '../snapshots/journal.js';
import { LockBusy, acquireLock } from '../snapshots/lock.js';
import { readUnconfirmed, removeSpooled, spooledLines, spoolLockPath, unconfirmedPath } from '../snapshots/spool-journal.js';
import { removeLeftoverTemps } from '../snapshots/write.js';
import { loadUserDb, USERDB_FILE, type Sighting } from '../userdb/store.js';

/**
 * The spool (docs/store.md#the-spool): a folder laid out as a snapshot folder, where `snapshot
 * --store` writes while the store cannot be reached, and `watch --store` its lists and journal
 * lines, until a run that reaches the store forwards what waits there. Forwarding adds each
 * document once (a name already stored is not added again) and removes from the spool only
 * what the store then holds with the very same bytes; a journal file goes on after the lines
 * the store holds for its hour file, once (store/postgres/forward.ts), and leaves the spool
 * when the store holds all of it. A forward stopped anywhere and run again forwards nothing
 * twice and loses nothing.
 */

export interface SpoolContents {
  /** Snapshot documents waiting. */
  files: number;
  /** Journal files waiting, and the journal lines in them (headers left out). */
  journalFiles: number;
  journalLines: number;
  /** The time of the oldest capture waiting (µs): a document's capture time, a journal line's; null when none waits. */
  oldestUs: number | null;
}

/** What waits in the spool; an absent spool is an empty one. */
export async function spoolContents(dir: string): Promise<SpoolContents> {
  if (!existsSync(dir)) return { files: 0, journalFiles: 0, journalLines: 0, oldestUs: null };
  const { files } = await listSnapshots(dir, '--spool', { stat: false });
  const out: SpoolContents = { files: files.length, journalFiles: 0, journalLines: 0, oldestUs: files[0]?.timeUs ?? null };
  for (const source of listJournals(dir)) {
    for (const f of source.files) {
      const entries = readJournalFile(f.path).entries;
      const lines = entries.filter((e) => e.line.type !== 'journal');
      out.journalFiles++;
      out.journalLines += lines.length;
      const first = (lines[0] ?? entries[0])?.atUs;
      if (first !== undefined && (out.oldestUs === null || first < out.oldestUs)) out.oldestUs = first;
    }
  }
  return out;
}

export interface Forwarded {
  files: number;
  /** Files the store holds under their name with other bytes: reported, kept in the spool. */
  kept: string[];
  /** Journal files forwarded (and removed from the spool), and the lines added for them (headers left out). */
  journalFiles: number;
  lines: number;
  /** Journal files the store cannot take as they are (why, per file): kept in the spool. */
  keptJournals: string[];
  /** Sources whose spooled journal another process holds (a watcher writes it, or forwards it): left for it. */
  busy: string[];
  users: number;
}

/**
 * Forwards the spool into the store: its documents, then the journals of the sources no other
 * process holds, then the owners the spooled captures saw (`<spool>/userdb/users.json`),
 * merged as sightings at their first and last time seen.
 */
export async function forwardSpool(
  client: pg.Client,
  dir: string,
  o: { warn: (line: string) => void; mergeSightings: (sightings: Sighting[], at: string) => Promise<void> },
): Promise<Forwarded> {
  const out: Forwarded = { files: 0, kept: [], journalFiles: 0, lines: 0, keptJournals: [], busy: [], users: 0 };
  if (!existsSync(dir)) return out;
  const { importCaptures, storedAlike } = await import('../store/postgres/import.js');
  const { files } = await listSnapshots(dir, '--spool', { stat: true });
  if (files.length > 0) {
    const documents = files.map((f) => ({ name: f.name.split(sep).join('/'), path: f.path, timeUs: f.timeUs, bytes: f.bytes }));
    await importCaptures(client, documents, [], { strict: false, warn: o.warn });
    const sums = documents.map((d) => ({ name: d.name, sha256: createHash('sha256').update(readFileSync(d.path)).digest('hex') }));
    const held = await storedAlike(client, sums);
    for (const d of documents) {
      if (held.has(d.name)) {
        rmSync(d.path);
        out.files++;
      } else {
        out.kept.push(d.name);
      }
    }
  }
  await forwardJournals(client, dir, out);
  const users = join(dir, 'userdb');
  if (existsSync(join(users, USERDB_FILE))) {
    const db = loadUserDb(users);
    for (const [id, u] of Object.entries(db)) {
      const groups = u.groups.length > 0 ? u.groups : [null];
      for (const at of new Set([u.first_seen, u.last_seen].filter((t): t is string => t !== null))) {
        await o.mergeSightings(groups.map((group) => ({ id, name: u.name, email: u.email, group })), at);
      }
      out.users++;
    }
    rmSync(join(users, USERDB_FILE));
  }
  return out;
}

/**
 * Forwards each source's spooled journal files, in time order, under both of its locks: the
 * spool's lock file (a watcher writing to the spool holds it) and the store's advisory lock
 * (a watcher writing to the store holds it, and forwards the spool itself first).
 */
async function forwardJournals(client: pg.Client, dir: string, out: Forwarded): Promise<void> {
  const { forwardJournal, tryJournalLock } = await import('../store/postgres/forward.js');
  const sources = listJournals(dir);
  if (sources.every((source) => source.files.length === 0)) return;
  const { checkCaptureStore } = await import('../store/postgres/import.js');
  await checkCaptureStore(client, 'import');
  for (const source of sources) {
    if (source.files.length === 0) continue;
    let releaseFolder: () => void;
    try {
      releaseFolder = await acquireLock(spoolLockPath(dir, source.sourceId), 0, 'a watcher is writing it');
    } catch (e) {
      if (!(e instanceof LockBusy)) throw e;
      out.busy.push(source.sourceId);
      continue;
    }
    try {
      const releaseStore = await tryJournalLock(client, source.sourceId);
      if (releaseStore === null) {
        out.busy.push(source.sourceId);
        continue;
      }
      try {
        // Listed again under the locks: what another process forwarded meanwhile is gone.
        const files = listJournals(dir).find((j) => j.sourceId === source.sourceId)?.files ?? [];
        for (const f of files) {
          const file = `${JOURNAL_DIR}/${source.sourceId}/${f.name}`;
          const r = await forwardJournal(client, { source: source.sourceId, file, lines: spooledLines(f.path), unconfirmed: readUnconfirmed(f.path) });
          if ('conflict' in r) {
            out.keptJournals.push(`${f.path} stays in the spool: ${r.conflict}`);
            continue;
          }
          removeSpooled(f.path);
          out.journalFiles++;
          out.lines += r.events;
        }
        // Notes whose file is gone were left by a forward stopped between the two removals;
        // temp files of notes, by a writer killed while it wrote one.
        for (const name of readdirSync(source.dir)) {
          const m = /^\.(.+)\.unconfirmed$/.exec(name);
          if (m && !existsSync(join(source.dir, m[1]!))) rmSync(unconfirmedPath(join(source.dir, m[1]!)), { force: true });
        }
        removeLeftoverTemps(source.dir, (target) => target.endsWith('.unconfirmed'), Date.now());
      } finally {
        await releaseStore();
      }
    } finally {
      releaseFolder();
    }
  }
}
