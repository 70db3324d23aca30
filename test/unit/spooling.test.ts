import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Forwarded } from '../../src/history/spool.js';
import { SpoolingCaptures, type StoreLink } from '../../src/history/spooling.js';
import { UnconfirmedWrite, type CaptureSink } from '../../src/snapshots/captures.js';
import type { JournalEvent } from '../../src/snapshots/journal.js';
import type { PostgresCaptures } from '../../src/store/postgres/captures.js';
import { tempDir } from '../helpers/cli.js';
import { sleep } from '../helpers/watch.js';

/**
 * The sink of `watch --store` (history/spooling.ts) on a store kept in memory: which writes
 * go to the store, which to the spool, and in what order, when the store goes away and comes
 * back. The forward itself is PostgreSQL's (test/e2e/postgres-watch-outage.test.ts).
 */

const SOURCE = { kind: 'nomad', address: 'http://127.0.0.1:4646', region: null };
const ID = 'nomad-127.0.0.1-4646';
const HOUR = '2024-09-01T05';
const FILE = `journal/${ID}/${HOUR}Z.jsonl`;
const NOW = new Date(`${HOUR}:10:00.000Z`);

/** A connection refused: the store is away. */
class Refused extends Error {
  readonly code = 'ECONNREFUSED';
}

const alive = (index: number): JournalEvent => ({ type: 'alive', at: `${HOUR}:10:0${index}.000000Z`, index });
const header = (at: string) => JSON.stringify({ type: 'journal', at, format: 'hourmeter.journal', version: 1, source: SOURCE });

/** The store's journal lines by file; `commitLost` makes the next append be stored, then fail as a lost confirmation. */
class MemoryStore {
  files = new Map<string, string[]>();
  commitLost = false;
  forwards = 0;

  link(onForward: () => Partial<Forwarded> = () => ({})): StoreLink {
    const captures = {
      rows: {
        lineCount: async (_source: string, file: string) => this.files.get(file)?.length ?? 0,
        appendLines: async (_source: string, file: string, first: number, lines: string[]) => {
          const held = this.files.get(file) ?? [];
          expect(first).toBe(held.length + 1);
          this.files.set(file, [...held, ...lines]);
          if (this.commitLost) {
            this.commitLost = false;
            throw new UnconfirmedWrite(new Error('Connection terminated unexpectedly'));
          }
        },
      },
      lockJournal: async () => async () => undefined,
      lockSnapshots: async () => async () => undefined,
      writeSnapshot: async () => true,
      where: (name: string) => `${name} in the store`,
    } as unknown as PostgresCaptures;
    return {
      captures,
      forward: async () => {
        this.forwards++;
        return { files: 0, kept: [], journalFiles: 0, lines: 0, keptJournals: [], busy: [], users: 0, ...onForward() };
      },
      mergeSightings: async () => undefined,
      close: async () => undefined,
    };
  }
}

/** Waits (bounded, 5 s) for a condition the sink reaches in the background. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (done()) return;
    await sleep(10);
  }
  throw new Error(`waited 5 s for ${what}`);
}

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').slice(0, -1);

describe('watch --store: the store, the spool, and back', () => {
  it('a batch whose commit was not confirmed goes on into the spool with a note; once back, the spool is forwarded before the next batch', async () => {
    const spool = join(tempDir(), 'spool');
    const store = new MemoryStore();
    const notes: string[] = [];
    let tries = 0;
    const back = store.link(() => {
      // The forward added the spooled file after the lines the store held, the copy of the unconfirmed batch skipped.
      const spooled = join(spool, 'journal', ID, `${HOUR}Z.jsonl`);
      store.files.set(FILE, [...store.files.get(FILE)!, lines(spooled)[0]!]);
      rmSync(spooled);
      return { journalFiles: 1, lines: 0 };
    });
    const sink = new SpoolingCaptures(
      {
        spool,
        connect: async () => {
          if (++tries < 3) throw new Refused('connect ECONNREFUSED 127.0.0.1:5432');
          return back;
        },
        away: (e) => e instanceof Refused,
        firstBackoffMs: 5,
        maxBackoffMs: 10,
        note: (line) => notes.push(line),
      },
      store.link(),
    );
    const errors: Error[] = [];
    const journal = await sink.openJournal({ source: SOURCE, now: () => NOW, lockWaitMs: 1000, onError: (e) => errors.push(e) });
    expect(store.forwards).toBe(1);

    journal.append(alive(1));
    journal.flush();
    await sink.run(async () => undefined);
    expect(store.files.get(FILE)).toEqual([header(`${HOUR}:10:00.000000Z`), JSON.stringify(alive(1))]);

    // The store takes the next batch, but its confirmation is lost with the connection.
    store.commitLost = true;
    journal.append(alive(2));
    journal.flush();
    await sink.run(async () => undefined);
    expect(sink.away).toBe(true);
    expect(notes).toEqual([`the store cannot be reached (Connection terminated unexpectedly); journal lines and lists wait in the spool ${spool} until it answers again`]);
    const spooled = join(spool, 'journal', ID, `${HOUR}Z.jsonl`);
    // The spool's header is stamped after the store's, so the forward can tell them apart.
    expect(lines(spooled)).toEqual([header(`${HOUR}:10:00.001000Z`), JSON.stringify(alive(2))]);
    expect(JSON.parse(readFileSync(join(spool, 'journal', ID, `.${HOUR}Z.jsonl.unconfirmed`), 'utf8'))).toEqual([
      { file: FILE, line: 3, lines: [JSON.stringify(alive(2))], at: 2, count: 1 },
    ]);

    // Lists and their owners wait in the spool too.
    expect(await sink.writeSnapshot(`${HOUR}:10:00Z.json`, Buffer.from('{}'), NOW.getTime() * 1000)).toBe(true);
    expect(readFileSync(join(spool, `${HOUR}:10:00Z.json`), 'utf8')).toBe('{}');
    await sink.recordSightings([{ id: 'u1', name: 'U One', email: null, group: 'g' }], `${HOUR}:10:00Z`);
    expect(Object.keys(JSON.parse(readFileSync(join(spool, 'userdb', 'users.json'), 'utf8')) as object)).toEqual(['u1']);

    await until('the store to be back', () => notes.length === 2);
    expect(tries).toBe(3);
    expect(store.forwards).toBe(2);
    expect(notes[1]).toBe(`the store answers again: forwarded 0 journal lines and 0 snapshots from the spool ${spool} to the store`);
    expect(sink.away).toBe(false);
    journal.append(alive(3));
    await journal.close();
    await sink.close();
    expect(errors).toEqual([]);
    // The store's hour file: its lines, the forwarded spool, then a new opening for the lines after.
    expect(store.files.get(FILE)).toEqual([
      header(`${HOUR}:10:00.000000Z`),
      JSON.stringify(alive(1)),
      JSON.stringify(alive(2)),
      header(`${HOUR}:10:00.001000Z`),
      header(`${HOUR}:10:00.002000Z`),
      JSON.stringify(alive(3)),
    ]);
    // Its lock let go when the spool was forwarded.
    expect(existsSync(join(spool, 'journal', ID, '.lock'))).toBe(false);
  });

  it('started while the store cannot be reached, it writes to the spool and says what waits when it stops', async () => {
    const spool = join(tempDir(), 'spool');
    const notes: string[] = [];
    const sink = new SpoolingCaptures(
      {
        spool,
        connect: async () => {
          throw new Refused('connect ECONNREFUSED 127.0.0.1:5432');
        },
        away: (e) => e instanceof Refused,
        firstBackoffMs: 5,
        maxBackoffMs: 10,
        note: (line) => notes.push(line),
      },
      null,
      'connect ECONNREFUSED 127.0.0.1:5432',
    );
    const captures: CaptureSink = sink;
    const journal = await captures.openJournal({ source: SOURCE, now: () => NOW, lockWaitMs: 1000 });
    journal.append(alive(1));
    journal.append(alive(2));
    await sleep(30);
    await journal.close();
    await sink.close();
    expect(lines(join(spool, 'journal', ID, `${HOUR}Z.jsonl`))).toEqual([header(`${HOUR}:10:00.000000Z`), JSON.stringify(alive(1)), JSON.stringify(alive(2))]);
    expect(readdirSync(join(spool, 'journal', ID))).toEqual([`${HOUR}Z.jsonl`]);
    expect(notes).toEqual([
      `the store cannot be reached (connect ECONNREFUSED 127.0.0.1:5432); journal lines and lists wait in the spool ${spool} until it answers again`,
      `the store could not be reached until the end: what was journaled waits in the spool ${spool}; the next \`hourmeter watch --store\`, \`snapshot --store\` or \`store push\` that reaches the store forwards it`,
    ]);
  });
});
