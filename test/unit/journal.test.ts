import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  JournalWriter,
  listJournals,
  readJournalFile,
  readJournals,
  sourceId,
  type AllocationLine,
  type JournalSource,
} from '../../src/snapshots/journal.js';
import { LockBusy } from '../../src/snapshots/lock.js';
import type { NativeAllocation } from '../../src/snapshots/format.js';
import { DataError } from '../../src/util/errors.js';
import { ROOT, tempDir } from '../helpers/cli.js';

const SOURCE: JournalSource = { kind: 'nomad', address: 'http://127.0.0.1:4646', region: 'global' };
const ID = 'nomad-127.0.0.1-4646';
const HEADER_SOURCE = '"source":{"kind":"nomad","address":"http://127.0.0.1:4646","region":"global"}';

/** A clock the test moves by hand. */
function clock(iso: string): { now: () => Date; set: (iso: string) => void } {
  let t = new Date(iso);
  return { now: () => t, set: (next) => (t = new Date(next)) };
}

const writers: JournalWriter[] = [];
afterEach(() => {
  for (const w of writers.splice(0)) {
    try {
      w.close();
    } catch {
      /* a test that made it fail */
    }
  }
});

async function open(folder: string, now: () => Date, opts: { lockWaitMs?: number; flushEveryMs?: number } = {}): Promise<JournalWriter> {
  const w = await JournalWriter.open({ folder, source: SOURCE, now, ...opts });
  writers.push(w);
  return w;
}

const RECORD: NativeAllocation = {
  id: '5d1a7e2c-0b8e-4f0a-9d43-2f7c1e9b6a10',
  namespace: 'ai4eosc',
  job_id: 'module-42',
  job_name: 'module-42',
  user: 'alice@example.org',
  group: null,
  component: null,
  node: 'gpu-node-1',
  status: 'running',
  created: '2026-12-05T18:19:58.100000Z',
  start: '2026-12-05T18:19:59.987654Z',
  end: null,
  modified: '2026-12-05T18:19:59.987654Z',
  resources: { cpu_cores: 4, cpu_mhz: 0, memory_mib: 8000, disk_mib: 10000, gpu: 1 },
};

function allocationLine(at: string, index: number, id = RECORD.id): AllocationLine {
  return { type: 'allocation', at, index, event: 'AllocationUpdated', allocation: { ...RECORD, id } };
}

describe('sourceId', () => {
  it('is kind, host and port, with other characters made -', () => {
    expect(sourceId({ kind: 'nomad', address: 'http://127.0.0.1:4646' })).toBe('nomad-127.0.0.1-4646');
    expect(sourceId({ kind: 'nomad', address: 'https://Nomad.Example.org:4646/' })).toBe('nomad-nomad.example.org-4646');
    // The scheme's default port when the address names none; the scheme itself is not part of it.
    expect(sourceId({ kind: 'nomad', address: 'https://nomad.example.org' })).toBe('nomad-nomad.example.org-443');
    expect(sourceId({ kind: 'nomad', address: 'http://[::1]:4646' })).toBe('nomad----1--4646');
    expect(sourceId({ kind: 'nomad', address: '10.0.0.5:4646' })).toBe('nomad-10.0.0.5-4646');
  });
});

describe('writing and reading back', () => {
  it('writes a header and the lines exactly, and reads them back with their times in µs', async () => {
    const folder = tempDir();
    const c = clock('2026-12-05T18:20:00.123Z');
    const w = await open(folder, c.now);
    expect(w.dir).toBe(join(folder, 'journal', ID));
    w.append({ type: 'connected', at: '2026-12-05T18:20:00.123000Z' });
    w.append({ type: 'resynchronised', at: '2026-12-05T18:20:01.000000Z', index: 412, snapshot: '2026-12-05T18:20:01Z.json', namespaces: ['default', 'ai4eosc'] });
    w.append(allocationLine('2026-12-05T18:19:59.987654Z', 415));
    w.append({ type: 'alive', at: '2026-12-05T18:20:30.000001Z', index: 415 });
    w.append({ type: 'disconnected', at: '2026-12-05T18:20:31.500000Z', reason: 'SIGTERM' });
    // Nothing is written before a flush (the timer's first tick is a second away).
    expect(existsSync(join(w.dir, '2026-12-05T18Z.jsonl'))).toBe(false);
    c.set('2026-12-05T18:20:31.600Z');
    w.close();

    const path = join(folder, 'journal', ID, '2026-12-05T18Z.jsonl');
    const lines = [
      `{"type":"journal","at":"2026-12-05T18:20:31.600000Z","format":"hourmeter.journal","version":1,${HEADER_SOURCE}}`,
      '{"type":"connected","at":"2026-12-05T18:20:00.123000Z"}',
      '{"type":"resynchronised","at":"2026-12-05T18:20:01.000000Z","index":412,"snapshot":"2026-12-05T18:20:01Z.json","namespaces":["default","ai4eosc"]}',
      `{"type":"allocation","at":"2026-12-05T18:19:59.987654Z","index":415,"event":"AllocationUpdated","allocation":${JSON.stringify(RECORD)}}`,
      '{"type":"alive","at":"2026-12-05T18:20:30.000001Z","index":415}',
      '{"type":"disconnected","at":"2026-12-05T18:20:31.500000Z","reason":"SIGTERM"}',
    ];
    expect(readFileSync(path, 'utf8')).toBe(lines.join('\n') + '\n');
    // The lock is released on close.
    expect(readdirSync(join(folder, 'journal', ID))).toEqual(['2026-12-05T18Z.jsonl']);

    const read = readJournalFile(path);
    expect(read.problems).toEqual([]);
    expect(read.torn).toBe(0);
    expect(read.pending).toBe(0);
    expect(read.entries.map((e) => e.line.type)).toEqual(['journal', 'connected', 'resynchronised', 'allocation', 'alive', 'disconnected']);
    expect(read.entries.map((e) => e.line)).toEqual(lines.map((l) => JSON.parse(l)));
    // 2026-12-05T18:00:00Z is 20,792 days and 18 hours after the epoch: 1,796,493,600 s.
    const hour = 1_796_493_600_000_000;
    expect(read.entries.map((e) => e.atUs)).toEqual([
      hour + 20 * 60e6 + 31_600_000,
      hour + 20 * 60e6 + 123_000,
      hour + 20 * 60e6 + 1_000_000,
      hour + 19 * 60e6 + 59_987_654,
      hour + 20 * 60e6 + 30_000_001,
      hour + 20 * 60e6 + 31_500_000,
    ]);
    expect(read.entries.map((e) => e.lineNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    let offset = 0;
    expect(read.entries.map((e) => e.end)).toEqual(lines.map((l, i) => ({ offset: (offset += Buffer.byteLength(l) + 1), line: i + 1 })));
    expect(read.end).toEqual({ offset: statSync(path).size, line: 6 });
  });

  it('rotates by the UTC hour of the clock at write time, with a header in each file', async () => {
    const folder = tempDir();
    const c = clock('2026-12-05T18:59:59.500Z');
    const w = await open(folder, c.now);
    w.append({ type: 'alive', at: '2026-12-05T18:59:59.500000Z', index: 7 });
    w.flush();
    // Appended before the hour, written after it: it goes to the new hour's file.
    w.append({ type: 'alive', at: '2026-12-05T18:59:59.900000Z', index: 8 });
    c.set('2026-12-05T19:00:00.200Z');
    w.flush();
    w.append({ type: 'alive', at: '2026-12-05T19:00:00.300000Z', index: 9 });
    w.close();

    const [journal] = listJournals(folder);
    expect(journal!.sourceId).toBe(ID);
    expect(journal!.files.map((f) => [f.name, f.hourUs])).toEqual([
      ['2026-12-05T18Z.jsonl', 1_796_493_600_000_000],
      ['2026-12-05T19Z.jsonl', 1_796_497_200_000_000],
    ]);
    expect(readFileSync(journal!.files[0]!.path, 'utf8')).toBe(
      `{"type":"journal","at":"2026-12-05T18:59:59.500000Z","format":"hourmeter.journal","version":1,${HEADER_SOURCE}}\n` +
        '{"type":"alive","at":"2026-12-05T18:59:59.500000Z","index":7}\n',
    );
    expect(readFileSync(journal!.files[1]!.path, 'utf8')).toBe(
      `{"type":"journal","at":"2026-12-05T19:00:00.200000Z","format":"hourmeter.journal","version":1,${HEADER_SOURCE}}\n` +
        '{"type":"alive","at":"2026-12-05T18:59:59.900000Z","index":8}\n' +
        '{"type":"alive","at":"2026-12-05T19:00:00.300000Z","index":9}\n',
    );
    const reads = [...readJournals(folder)];
    expect(reads.map((r) => [r.sourceId, r.entries.map((e) => (e.line.type === 'alive' ? e.line.index : 'header'))])).toEqual([
      [ID, ['header', 7]],
      [ID, ['header', 8, 9]],
    ]);
  });

  it('a writer restarted within the hour appends a header after the old lines', async () => {
    const folder = tempDir();
    const c = clock('2026-12-05T18:10:00Z');
    const first = await open(folder, c.now);
    first.append({ type: 'connected', at: '2026-12-05T18:10:00.000000Z' });
    first.append({ type: 'alive', at: '2026-12-05T18:10:30.000000Z', index: 3 });
    first.close();
    c.set('2026-12-05T18:40:00Z');
    const second = await open(folder, c.now);
    second.append({ type: 'connected', at: '2026-12-05T18:40:00.000000Z' });
    second.close();

    const read = readJournalFile(join(folder, 'journal', ID, '2026-12-05T18Z.jsonl'));
    expect(read.problems).toEqual([]);
    expect(read.entries.map((e) => `${e.lineNumber} ${e.line.type} ${e.line.at}`)).toEqual([
      '1 journal 2026-12-05T18:10:00.000000Z',
      '2 connected 2026-12-05T18:10:00.000000Z',
      '3 alive 2026-12-05T18:10:30.000000Z',
      '4 journal 2026-12-05T18:40:00.000000Z',
      '5 connected 2026-12-05T18:40:00.000000Z',
    ]);
  });

  it('flushes within about a second without being asked', async () => {
    const folder = tempDir();
    const w = await open(folder, () => new Date('2026-12-05T18:00:00Z'), { flushEveryMs: 1000 });
    w.append({ type: 'connected', at: '2026-12-05T18:00:00.000000Z' });
    const path = join(w.dir, '2026-12-05T18Z.jsonl');
    // Bounded wait, generous for a busy machine: the point is that no flush() was called.
    for (let waited = 0; waited < 10_000 && !existsSync(path); waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(path, 'utf8').split('\n')[1]).toBe('{"type":"connected","at":"2026-12-05T18:00:00.000000Z"}');
  });
});

describe('damaged journals', () => {
  function header(at: string, version = 1): string {
    return `{"type":"journal","at":"${at}","format":"hourmeter.journal","version":${version},${HEADER_SOURCE}}\n`;
  }

  it('ignores a torn last line, and a writer that restarts ends it before its header', async () => {
    const folder = tempDir();
    const c = clock('2026-12-05T18:10:00Z');
    const w = await open(folder, c.now);
    w.append({ type: 'alive', at: '2026-12-05T18:10:00.000000Z', index: 1 });
    w.close();
    const path = join(folder, 'journal', ID, '2026-12-05T18Z.jsonl');
    const whole = statSync(path).size;
    const fragment = '{"type":"alive","at":"2026-12-05T18:10:';
    appendFileSync(path, fragment);

    let read = readJournalFile(path);
    expect(read.problems).toEqual([]);
    expect(read.torn).toBe(0);
    expect(read.entries.map((e) => e.line.type)).toEqual(['journal', 'alive']);
    expect(read.end).toEqual({ offset: whole, line: 2 });
    expect(read.pending).toBe(fragment.length);

    c.set('2026-12-05T18:20:00Z');
    const again = await open(folder, c.now);
    again.append({ type: 'connected', at: '2026-12-05T18:20:00.000000Z' });
    again.close();
    expect(readFileSync(path, 'utf8').slice(whole)).toBe(`${fragment}\n${header('2026-12-05T18:20:00.000000Z')}{"type":"connected","at":"2026-12-05T18:20:00.000000Z"}\n`);
    read = readJournalFile(path);
    expect(read.problems).toEqual([]);
    expect(read.torn).toBe(1);
    expect(read.entries.map((e) => `${e.lineNumber} ${e.line.type}`)).toEqual(['1 journal', '2 alive', '4 journal', '5 connected']);
    expect(read.pending).toBe(0);
  });

  it('reports an invalid line with its file and line number and reads the others', () => {
    const folder = tempDir();
    const dir = join(folder, 'journal', ID);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, '2026-12-05T18Z.jsonl');
    writeFileSync(
      path,
      header('2026-12-05T18:00:00.000000Z') +
        '{"type":"connected","at":"2026-12-05T18:00:00.000000Z"}\n' +
        '{"type":"alive","at":"2026-12-05T18:00:30.000000Z"}\n' +
        'not json\n' +
        '{"type":"alive","at":"2026-12-05T18:01:00.000000Z","index":2}\n' +
        '{"type":"paused","at":"2026-12-05T18:01:10.000000Z"}\n' +
        '{"type":"alive","at":"yesterday","index":3}\n' +
        `${JSON.stringify({ type: 'allocation', at: '2026-12-05T18:01:20.000000Z', index: 4, event: 'AllocationUpdated', allocation: { ...RECORD, job_id: undefined } })}\n` +
        '{"type":"disconnected","at":"2026-12-05T18:01:30.000000Z","reason":"server closed the stream"}\n',
    );
    const read = readJournalFile(path);
    expect(read.problems).toEqual([
      { file: path, line: 3, reason: 'alive: "index" must be an integer ≥ 0; the line is skipped' },
      { file: path, line: 4, reason: 'not valid JSON; the line is skipped' },
      { file: path, line: 6, reason: 'unknown line type "paused"; the line is skipped' },
      { file: path, line: 7, reason: '"at" is not a time: "yesterday"; the line is skipped' },
      { file: path, line: 8, reason: 'allocation: the record lacks "job_id"; the line is skipped' },
    ]);
    expect(read.torn).toBe(0);
    expect(read.entries.map((e) => `${e.lineNumber} ${e.line.type}`)).toEqual(['1 journal', '2 connected', '5 alive', '9 disconnected']);
    expect(read.end.line).toBe(9);
  });

  it('skips a file of an unknown version, and the part of a file after such a header', () => {
    const folder = tempDir();
    const dir = join(folder, 'journal', ID);
    mkdirSync(dir, { recursive: true });
    const newer = join(dir, '2026-12-05T18Z.jsonl');
    writeFileSync(newer, header('2026-12-05T18:00:00.000000Z', 2) + '{"type":"connected","at":"2026-12-05T18:00:00.000000Z"}\n');
    const mixed = join(dir, '2026-12-05T19Z.jsonl');
    const known = header('2026-12-05T19:00:00.000000Z') + '{"type":"connected","at":"2026-12-05T19:00:00.000000Z"}\n';
    writeFileSync(mixed, known + header('2026-12-05T19:30:00.000000Z', 2) + '{"type":"connected","at":"2026-12-05T19:30:00.000000Z"}\n');
    const reads = [...readJournals(folder)];
    const unsupported = '(this hourmeter reads hourmeter.journal version 1; upgrade hourmeter); the rest of the file is skipped';
    expect(reads.map((r) => [r.file, r.entries.length, r.problems.map((p) => `${p.line}: ${p.reason}`), r.end])).toEqual([
      [newer, 0, [`1: unsupported journal format "hourmeter.journal" version 2 ${unsupported}`], { offset: 0, line: 0 }],
      // Reading stops before the newer header, so that a newer hourmeter reads on from there.
      [mixed, 2, [`3: unsupported journal format "hourmeter.journal" version 2 ${unsupported}`], { offset: Buffer.byteLength(known), line: 2 }],
    ]);
  });

  it('reads on from an offset: only the later lines, and the new offset', async () => {
    const folder = tempDir();
    const w = await open(folder, () => new Date('2026-12-05T18:00:00Z'));
    w.append({ type: 'connected', at: '2026-12-05T18:00:00.000000Z' });
    w.append({ type: 'alive', at: '2026-12-05T18:00:30.000000Z', index: 1 });
    w.flush();
    const path = w.currentFile!;
    const first = readJournalFile(path);
    expect(first.entries.length).toBe(3);
    expect(first.end).toEqual({ offset: statSync(path).size, line: 3 });
    // Nothing new: nothing read, the same position.
    expect(readJournalFile(path, first.end)).toMatchObject({ entries: [], problems: [], end: first.end });

    w.append({ type: 'alive', at: '2026-12-05T18:01:00.000000Z', index: 2 });
    w.append(allocationLine('2026-12-05T18:01:10.000000Z', 3));
    w.flush();
    appendFileSync(path, '{"type":"ali');
    const next = readJournalFile(path, first.end);
    expect(next.problems).toEqual([]);
    expect(next.entries.map((e) => `${e.lineNumber} ${e.line.type}`)).toEqual(['4 alive', '5 allocation']);
    expect(next.end).toEqual({ offset: statSync(path).size - '{"type":"ali'.length, line: 5 });
    expect(next.pending).toBe('{"type":"ali'.length);

    // An offset that is not at the start of a line: the file is not what was read before.
    const wrong = readJournalFile(path, { offset: first.end.offset - 3, line: 3 });
    expect(wrong.entries).toEqual([]);
    expect(wrong.problems.map((p) => p.reason)).toEqual([`the file no longer matches what was read before (no line ends at byte ${first.end.offset - 3}); read it again from the start`]);
  });
});

describe('the journal lock', () => {
  it('a second writer of the same source waits a bounded time, then fails naming the folder and the owner', async () => {
    const folder = tempDir();
    await open(folder, () => new Date('2026-12-05T18:00:00Z'));
    const dir = join(folder, 'journal', ID);
    const second = JournalWriter.open({ folder, source: SOURCE, now: () => new Date('2026-12-05T18:00:00Z'), lockWaitMs: 300 });
    await expect(second).rejects.toThrow(LockBusy);
    await expect(JournalWriter.open({ folder, source: SOURCE, now: () => new Date(), lockWaitMs: 300 })).rejects.toThrow(
      `another watcher is writing the journal ${dir} (pid ${process.pid} on ${hostname()} since `,
    );
    // Another source of the same folder has its own lock.
    const other = await JournalWriter.open({ folder, source: { ...SOURCE, address: 'http://10.0.0.5:4646' }, now: () => new Date(), lockWaitMs: 300 });
    other.close();
  });

  it('takes over the lock of a process that is gone', async () => {
    const folder = tempDir();
    const dir = join(folder, 'journal', ID);
    mkdirSync(dir, { recursive: true });
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    await new Promise((r) => child.once('spawn', r));
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: child.pid, host: hostname(), since: '2026-12-05T17:00:00Z' }));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await open(folder, () => new Date('2026-12-05T18:00:00Z'), { lockWaitMs: 300 });
    expect(JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')).pid).toBe(process.pid);
  });
});

/** A real small file system where this machine allows mounting one (CI runs as root). */
const mounted: string[] = [];
afterEach(() => {
  while (mounted.length) {
    try {
      execFileSync('umount', [mounted.pop()!]);
    } catch {
      /* already unmounted */
    }
  }
});

function tinyFs(): string {
  const dir = join(tempDir(), 'fs');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    throw new Error('this test needs to mount a tmpfs (run as root, as CI does)');
  }
  mounted.push(dir);
  return dir;
}

describe('storage failures', () => {
  it('a full disk fails the flush with a message naming the file; the lines written before stay', async () => {
    const folder = tinyFs();
    // Closed here, not after the test: an open file would keep the file system from unmounting.
    const w = await JournalWriter.open({ folder, source: SOURCE, now: () => new Date('2026-12-05T18:00:00Z') });
    w.append({ type: 'connected', at: '2026-12-05T18:00:00.000000Z' });
    w.flush();
    const path = join(w.dir, '2026-12-05T18Z.jsonl');
    const before = readFileSync(path, 'utf8');
    w.append({ type: 'disconnected', at: '2026-12-05T18:00:01.000000Z', reason: 'x'.repeat(200_000) });
    expect(() => w.flush()).toThrow(DataError);
    expect(() => w.append({ type: 'connected', at: '2026-12-05T18:00:02.000000Z' })).toThrow(`cannot write ${path}: the disk is full (ENOSPC); free space there and start the watcher again`);
    expect(() => w.close()).toThrow(DataError);
    expect(existsSync(join(w.dir, '.lock'))).toBe(false);
    expect(readFileSync(path, 'utf8').startsWith(before)).toBe(true);
    const read = readJournalFile(path);
    expect(read.entries.map((e) => e.line.type)).toEqual(['journal', 'connected']);
    expect(read.problems).toEqual([]);
  });

  it('a read-only file system fails the open, naming the folder', async () => {
    const folder = tinyFs();
    execFileSync('mount', ['-o', 'remount,ro', folder]);
    await expect(JournalWriter.open({ folder, source: SOURCE, now: () => new Date() })).rejects.toThrow(
      `cannot write ${join(folder, 'journal', ID)}: the file system is read-only (EROFS); mount it read-write, or use a snapshot folder on a writable one`,
    );
  });
});

describe('a writer killed with -9', () => {
  it('leaves journals that always read back: every complete line valid, each run a whole prefix of its lines', async () => {
    const built = join(ROOT, 'dist/snapshots/journal.js');
    if (!existsSync(built)) throw new Error(`${built} is missing: run npm run build first`);
    const folder = tempDir();
    const script = join(folder, 'writer.mjs');
    // Lines of about 1 kB, written 40 at a time and as fast as the loop goes: a kill often
    // lands in the middle of a write.
    writeFileSync(
      script,
      `const { JournalWriter } = await import(${JSON.stringify(pathToFileURL(built).href)});
const [folder, run] = process.argv.slice(2);
const w = await JournalWriter.open({ folder, source: ${JSON.stringify(SOURCE)}, now: () => new Date(), lockWaitMs: 5000 });
process.stdout.write('ready\\n');
const record = ${JSON.stringify(RECORD)};
const raw = { pad: 'x'.repeat(800) };
let seq = 0;
const tick = () => {
  for (let i = 0; i < 40; i++, seq++) {
    const at = new Date().toISOString().slice(0, 23) + '000Z';
    w.append({ type: 'allocation', at, index: seq, event: 'AllocationUpdated', allocation: { ...record, id: run + '-' + seq, raw } });
  }
  w.flush();
  setTimeout(tick, 2);
};
tick();
`,
    );
    const rounds = 5;
    for (let run = 0; run < rounds; run++) {
      const child = spawn(process.execPath, [script, folder, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', () => reject(new Error(`the writer exited early: ${err}`)));
      });
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 300)));
      child.kill('SIGKILL');
      await exited;
    }

    let headers = 0;
    let torn = 0;
    const seen = new Map<string, number[]>();
    for (const read of readJournals(folder)) {
      expect(read.problems).toEqual([]);
      torn += read.torn;
      for (const e of read.entries) {
        if (e.line.type === 'journal') headers++;
        else if (e.line.type === 'allocation') {
          const [run, seq] = e.line.allocation.id.split('-').map(Number) as [number, number];
          expect(e.line.index).toBe(seq);
          seen.set(String(run), [...(seen.get(String(run)) ?? []), seq]);
        } else throw new Error(`unexpected line ${e.line.type}`);
      }
    }
    // One header per run (more if a run crossed an hour), at most one torn line per kill.
    expect(headers).toBeGreaterThanOrEqual(rounds);
    expect(torn).toBeLessThanOrEqual(rounds);
    expect([...seen.keys()].sort()).toEqual(['0', '1', '2', '3', '4']);
    for (const seqs of seen.values()) expect(seqs).toEqual(seqs.map((_, i) => i));
  }, 60_000);
});

describe('docs/snapshot-format.md#journals', () => {
  it('shows one example of each line type, each read as valid', () => {
    const markdown = readFileSync(join(ROOT, 'docs/snapshot-format.md'), 'utf8');
    const section = markdown.slice(markdown.indexOf('\n## Journals\n'));
    const examples = [...section.matchAll(/^ {2}```json\n {2}(.*)\n {2}```$/gm)].map((m) => m[1]!);
    const dir = join(tempDir(), 'journal', ID);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, '2026-12-05T18Z.jsonl');
    writeFileSync(path, examples.join('\n') + '\n');
    const read = readJournalFile(path);
    expect(read.problems).toEqual([]);
    expect(read.entries.map((e) => e.line.type)).toEqual(['journal', 'connected', 'resynchronised', 'allocation', 'alive', 'disconnected']);
  });
});
