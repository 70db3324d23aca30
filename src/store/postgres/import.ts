import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type pg from 'pg';
import { formatTimestamp } from '../../util/time.js';
import { SCHEMA_VERSION } from './schema.js';

/**
 * Loads a snapshot folder's captures into the PostgreSQL store: snapshot files as they are
 * (gzipped ones still gzipped) and the watchers' journal lines, each complete line by its file
 * and line number. Only what is not stored yet is added, with `ON CONFLICT DO NOTHING`, in
 * multi-row inserts of a few MB, each its own transaction: an import stopped anywhere (even
 * by kill -9) leaves whole batches, and the next run adds the rest. A capture is never
 * rewritten: a file whose name is stored with other bytes is reported and skipped.
 */

export interface ImportDocument {
  /** The path in the snapshot folder, with / between parts: the row's key. */
  name: string;
  path: string;
  /** The capture time from the file name, in microseconds. */
  timeUs: number;
  bytes?: number;
}

export interface ImportJournalFile {
  /** The source's folder name under journal/. */
  source: string;
  /** `journal/<source>/<hour>Z.jsonl`, the file's path in the snapshot folder. */
  file: string;
  path: string;
}

export interface ImportProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

export interface ImportOptions {
  /** Refuse the whole import, before writing, when a stored capture differs from its file. */
  strict: boolean;
  warn: (line: string) => void;
  progress?: { update(p: ImportProgress): void; done(): void } | null;
  /** Flush a batch at this many bytes or rows (default 4 MB, 1000 rows). */
  batchBytes?: number;
  batchRows?: number;
}

export interface ImportResult {
  /** Snapshot files added, already stored with the same bytes, stored with other bytes (skipped). */
  files: number;
  filesPresent: number;
  filesChanged: number;
  /** Bytes of the files added, as stored. */
  bytes: number;
  lines: number;
  linesPresent: number;
  /** Journal files whose stored lines differ from the file's: skipped whole. */
  journalsChanged: number;
  /** Lines the store cannot hold as text (not UTF-8, or a NUL byte): reported and skipped. */
  linesUnreadable: number;
  /** Journal files ending in a line without its newline yet: that line waits for the next import. */
  unfinished: number;
  seconds: number;
}

/** Refused before or while writing, for a reason the user must fix: exit 3. */
export class ImportRefused extends Error {}

const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/**
 * Checks the schema and the role's grants for writing captures, so that a refusal names what
 * to fix; `verb` says what was refused ("import", "capture").
 */
export async function checkCaptureStore(client: pg.Client, verb: string): Promise<void> {
  let version: number;
  try {
    const r = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
    version = r.rows[0]?.version ?? 0;
  } catch (e) {
    if ((e as { code?: string }).code !== '42P01') throw e;
    version = 0;
  }
  if (version < SCHEMA_VERSION) {
    throw new ImportRefused(`the store's schema is at version ${version}, and ${verb === 'import' ? 'importing' : `to ${verb}`} needs version ${SCHEMA_VERSION}: run \`hourmeter store migrate\` as the database's owner first`);
  }
  if (version > SCHEMA_VERSION) {
    throw new ImportRefused(`the store's schema is at version ${version}, newer than this hourmeter knows (${SCHEMA_VERSION}): upgrade hourmeter`);
  }
  const r = await client.query<{ user: string; table: string; privilege: string; granted: boolean }>(
    `SELECT current_user AS user, t AS table, p AS privilege, has_table_privilege(t, p) AS granted
       FROM unnest($1::text[]) AS t, unnest($2::text[]) AS p`,
    [['snapshot_documents', 'journal_lines'], ['SELECT', 'INSERT']],
  );
  const missing = r.rows.filter((row) => !row.granted);
  if (missing.length > 0) {
    const user = r.rows[0]!.user;
    const lacks = missing.map((m) => `${m.privilege} on ${m.table}`).join(', ');
    throw new ImportRefused(
      `user "${user}" may not ${verb}: it lacks ${lacks}; ${verb} as the writer role, or have the tables' owner run ` +
        `GRANT SELECT, INSERT ON snapshot_documents, journal_lines TO "${user}" (README, "hourmeter store")`,
    );
  }
}

/** The complete lines of a journal file (without their newline), and the bytes after the last one. */
function completeLines(data: Buffer): { lines: Buffer[]; pending: number } {
  const lines: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) break;
    lines.push(data.subarray(pos, nl));
    pos = nl + 1;
  }
  return { lines, pending: data.length - pos };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The line as text, or null when a text column cannot hold it exactly. */
function lineText(line: Buffer): string | null {
  if (line.includes(0)) return null;
  try {
    return utf8.decode(line);
  } catch {
    return null;
  }
}

/**
 * Multi-row inserts, one batch on the wire while the next is read: the files are read
 * asynchronously, so the socket drains meanwhile. A failed batch fails the next add or finish.
 */
class Batches<Row> {
  private rows: Row[] = [];
  private bytes = 0;
  private inflight: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | null = null;

  constructor(
    private readonly send: (rows: Row[]) => Promise<void>,
    private readonly maxBytes: number,
    private readonly maxRows: number,
  ) {}

  async add(row: Row, bytes: number): Promise<void> {
    this.rows.push(row);
    this.bytes += bytes;
    if (this.rows.length >= this.maxRows || this.bytes >= this.maxBytes) await this.flush();
  }

  private async flush(): Promise<void> {
    await this.inflight;
    if (this.failure) throw this.failure.error;
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    this.bytes = 0;
    this.inflight = this.send(rows).catch((error: unknown) => {
      this.failure = { error };
    });
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.inflight;
    if (this.failure) throw this.failure.error;
  }
}

/** `($1, $2, $3), ($4, $5, $6), ...` for rows of `width` parameters. */
function placeholders(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) out.push(`(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
  return out.join(', ');
}

interface DocumentRow {
  doc: ImportDocument;
  content: Buffer;
  digest: Buffer;
}

interface LineRow {
  journal: ImportJournalFile;
  lineNumber: number;
  text: string;
  digest: Buffer;
}

export async function importCaptures(client: pg.Client, documents: readonly ImportDocument[], journals: readonly ImportJournalFile[], opts: ImportOptions): Promise<ImportResult> {
  const started = performance.now();
  await checkCaptureStore(client, 'import');
  const result: ImportResult = { files: 0, filesPresent: 0, filesChanged: 0, bytes: 0, lines: 0, linesPresent: 0, journalsChanged: 0, linesUnreadable: 0, unfinished: 0, seconds: 0 };

  const journalSizes = await Promise.all(journals.map((j) => stat(j.path).then((s) => s.size, () => 0)));
  const progress: ImportProgress = {
    files: 0,
    totalFiles: documents.length + journals.length,
    bytes: 0,
    totalBytes: documents.reduce((sum, d) => sum + (d.bytes ?? 0), 0) + journalSizes.reduce((a, b) => a + b, 0),
  };
  const advance = (bytes: number): void => {
    progress.files++;
    progress.bytes += bytes;
    opts.progress?.update(progress);
  };

  const changedDocument = (name: string): string =>
    `${name}: the store already holds other bytes under this name; a capture is never rewritten, so the file is skipped (if it is another capture, give it its own name)`;
  const changedJournal = (file: string, line: number): string =>
    `${file}: line ${line} differs from the line the store holds; a capture is never rewritten, so the file is skipped (a journal is only ever appended to: check where this copy comes from)`;

  try {
    // Pass 1: what is stored already. Only these captures can differ from their files, so
    // --strict can refuse before anything is written.
    const storedDocs = new Map<string, Buffer>();
    for (const row of (await client.query<{ name: string; digest: Buffer }>('SELECT name, content_sha256 AS digest FROM snapshot_documents')).rows) storedDocs.set(row.name, row.digest);
    const storedJournals = new Set<string>();
    for (const row of (await client.query<{ source: string; file: string }>('SELECT DISTINCT source, file FROM journal_lines')).rows) storedJournals.add(`${row.source}\0${row.file}`);

    const problems: string[] = [];
    const toAdd: ImportDocument[] = [];
    for (const doc of documents) {
      const stored = storedDocs.get(doc.name);
      if (!stored) {
        toAdd.push(doc);
        continue;
      }
      const content = await readFile(doc.path);
      if (sha256(content).equals(stored)) result.filesPresent++;
      else {
        result.filesChanged++;
        problems.push(changedDocument(doc.name));
      }
      advance(content.length);
    }
    /** Per journal file with stored lines: the digests of its stored lines, by line number. */
    const storedLines = new Map<ImportJournalFile, Map<number, Buffer>>();
    const skippedJournals = new Set<ImportJournalFile>();
    for (const journal of journals) {
      if (!storedJournals.has(`${journal.source}\0${journal.file}`)) continue;
      const r = await client.query<{ line_number: number; digest: Buffer }>(
        "SELECT line_number, sha256(convert_to(line, 'UTF8')) AS digest FROM journal_lines WHERE source = $1 AND file = $2",
        [journal.source, journal.file],
      );
      const digests = new Map(r.rows.map((row) => [row.line_number, row.digest]));
      const { lines } = completeLines(await readFile(journal.path));
      const differs = [...digests].find(([n, digest]) => n > lines.length || !sha256(lines[n - 1]!).equals(digest));
      if (differs) {
        skippedJournals.add(journal);
        result.journalsChanged++;
        problems.push(changedJournal(journal.file, differs[0]));
      } else storedLines.set(journal, digests);
    }
    if (problems.length > 0 && opts.strict) {
      throw new ImportRefused(`${problems.length} stored capture(s) differ from their files, and --strict refuses to import around them; nothing was written: ${problems.join('; ')}`);
    }
    for (const p of problems) opts.warn(p);

    // Pass 2: the new captures. A name stored meanwhile by another import comes back
    // unreturned from ON CONFLICT DO NOTHING and is compared as in pass 1.
    const docBatches = new Batches<DocumentRow>(
      async (rows) => {
        const params: unknown[] = [];
        for (const r of rows) params.push(r.doc.name, formatTimestamp(r.doc.timeUs), r.content);
        const inserted = await client.query<{ name: string }>(
          `INSERT INTO snapshot_documents (name, captured_at, content) VALUES ${placeholders(rows.length, 3)} ON CONFLICT (name) DO NOTHING RETURNING name`,
          params,
        );
        const added = new Set(inserted.rows.map((row) => row.name));
        const raced = rows.filter((r) => !added.has(r.doc.name));
        for (const r of rows) {
          if (!added.has(r.doc.name)) continue;
          result.files++;
          result.bytes += r.content.length;
        }
        if (raced.length === 0) return;
        const now = await client.query<{ name: string; digest: Buffer }>('SELECT name, content_sha256 AS digest FROM snapshot_documents WHERE name = ANY($1::text[])', [raced.map((r) => r.doc.name)]);
        const digests = new Map(now.rows.map((row) => [row.name, row.digest]));
        for (const r of raced) {
          if (digests.get(r.doc.name)?.equals(r.digest)) result.filesPresent++;
          else {
            result.filesChanged++;
            opts.warn(changedDocument(r.doc.name));
          }
        }
      },
      opts.batchBytes ?? 4e6,
      opts.batchRows ?? 1000,
    );
    for (const doc of toAdd) {
      const content = await readFile(doc.path);
      await docBatches.add({ doc, content, digest: sha256(content) }, content.length);
      advance(content.length);
    }
    await docBatches.finish();

    const lineBatches = new Batches<LineRow>(
      async (rows) => {
        const params: unknown[] = [];
        for (const r of rows) params.push(r.journal.source, r.journal.file, r.lineNumber, r.text);
        const inserted = await client.query<{ source: string; file: string; line_number: number }>(
          `INSERT INTO journal_lines (source, file, line_number, line) VALUES ${placeholders(rows.length, 4)} ON CONFLICT (source, file, line_number) DO NOTHING RETURNING source, file, line_number`,
          params,
        );
        const key = (source: string, file: string, line: number): string => `${source}\0${file}\0${line}`;
        const added = new Set(inserted.rows.map((row) => key(row.source, row.file, row.line_number)));
        result.lines += added.size;
        for (const r of rows) {
          if (added.has(key(r.journal.source, r.journal.file, r.lineNumber))) continue;
          const now = await client.query<{ digest: Buffer }>(
            "SELECT sha256(convert_to(line, 'UTF8')) AS digest FROM journal_lines WHERE source = $1 AND file = $2 AND line_number = $3",
            [r.journal.source, r.journal.file, r.lineNumber],
          );
          if (now.rows[0]?.digest.equals(r.digest)) result.linesPresent++;
          else opts.warn(changedJournal(r.journal.file, r.lineNumber));
        }
      },
      opts.batchBytes ?? 4e6,
      opts.batchRows ?? 1000,
    );
    for (const [i, journal] of journals.entries()) {
      if (skippedJournals.has(journal)) {
        advance(journalSizes[i]!);
        continue;
      }
      const data = await readFile(journal.path);
      const { lines, pending } = completeLines(data);
      if (pending > 0) result.unfinished++;
      const stored = storedLines.get(journal);
      for (const [index, line] of lines.entries()) {
        const lineNumber = index + 1;
        if (stored?.has(lineNumber)) {
          result.linesPresent++;
          continue;
        }
        const text = lineText(line);
        if (text === null) {
          result.linesUnreadable++;
          opts.warn(`${journal.file}: line ${lineNumber} is not UTF-8 text or holds a NUL byte, which the store cannot keep exactly; it is skipped`);
          continue;
        }
        await lineBatches.add({ journal, lineNumber, text, digest: sha256(line) }, line.length);
      }
      advance(data.length);
    }
    await lineBatches.finish();
  } finally {
    opts.progress?.done();
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/**
 * Which of these documents the store holds with exactly these bytes (by SHA-256, hex): a
 * spooled file so held may go, having arrived once.
 */
export async function storedAlike(client: pg.Client, documents: readonly { name: string; sha256: string }[]): Promise<Set<string>> {
  if (documents.length === 0) return new Set();
  const r = await client.query<{ name: string }>(
    "SELECT d.name FROM snapshot_documents d JOIN unnest($1::text[], $2::text[]) AS f(name, sha) ON d.name = f.name AND encode(d.content_sha256, 'hex') = f.sha",
    [documents.map((d) => d.name), documents.map((d) => d.sha256)],
  );
  return new Set(r.rows.map((row) => row.name));
}
