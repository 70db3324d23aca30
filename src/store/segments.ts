import { checkNameId, FlavourIds, FlavourTable, TrackColumns, type NameWriter } from '../accounting/columns.js';
import type { Amounts } from '../accounting/types.js';
import type { Track } from '../accounting/reconstruct.js';
import type { Db } from './schema.js';
import { HashedKeys } from './hashed-keys.js';

/**
 * What reports read from the index: tracks packed as columns, a few thousand per segment
 * row, and the dictionary their ids point into. A year of a busy cluster is some thirty
 * blobs instead of a hundred thousand rows.
 *
 * Tracks leave the reconstruction's memory in roughly the order they end, and are packed
 * in that order into sealed segments (positive ids), which fill one after another. A
 * sealed track changes only if it is listed again: the ingest then loads it back, and its
 * row in the segment is blanked (the table says where it is packed). The tracks still live
 * (listed, or holding resources unlisted) go into live segments (negative ids), rewritten
 * by every ingest.
 */

export const SEGMENT_TRACKS = 4096;

/** The index's `names` table, with a cache. */
export class IndexNames implements NameWriter {
  private readonly ids = new Map<string, number>();
  private readonly values = new Map<number, string>();
  /** The cache holds every name in the table: a miss is a new name. */
  private complete: boolean;
  /** Every name inserted, by hash, during a bulk load (the table then has no index by value). */
  private hashed: HashedKeys | null = null;
  private readonly select;
  private readonly insert;
  private readonly byId;
  private readonly byIds;

  /** Flavours: the whole table, read on first use; written back by saveFlavours when it grew. */
  private table: FlavourTable | null = null;
  private flavourIds: FlavourIds | null = null;
  private savedFlavours = 0;
  private readonly readFlavours;
  private readonly maxId;
  private readonly writeFlavours;

  constructor(db: Db) {
    this.maxId = db.prepare('SELECT max(id) FROM names').pluck();
    this.readFlavours = db.prepare('SELECT amounts FROM flavours WHERE id = 0').pluck();
    this.writeFlavours = db.prepare('INSERT OR REPLACE INTO flavours (id, amounts) VALUES (0, ?)');
    this.select = db.prepare('SELECT id FROM names WHERE value = ?').pluck();
    this.insert = db.prepare('INSERT INTO names (value) VALUES (?)');
    this.byId = db.prepare('SELECT value FROM names WHERE id = ?').pluck();
    this.byIds = db.prepare('SELECT id, value FROM names WHERE id IN (SELECT value FROM json_each(?))');
    this.complete = db.prepare('SELECT 1 FROM names LIMIT 1').get() === undefined;
  }

  intern(value: string): number {
    let id = this.lookup(value);
    if (id === undefined) {
      id = checkNameId(Number(this.insert.run(value).lastInsertRowid));
      this.hashed?.add(value, id);
      this.remember(value, id);
    }
    return id;
  }

  lookup(value: string): number | undefined {
    let id = this.ids.get(value);
    if (id !== undefined) return id;
    if (this.hashed) {
      for (const candidate of this.hashed.candidates(value)) {
        if (this.byId.get(candidate) === value) {
          id = candidate;
          break;
        }
      }
    } else if (!this.complete) {
      id = this.select.get(value) as number | undefined;
    }
    if (id !== undefined) this.remember(value, id);
    return id;
  }

  name(id: number): string {
    let v = this.values.get(id);
    if (v === undefined) {
      v = this.byId.get(id) as string | undefined;
      if (v === undefined) throw new Error(`the index has no name with id ${id}`);
      this.values.set(id, v);
    }
    return v;
  }

  prefetch(ids: Iterable<number>): void {
    const missing = [...ids].filter((id) => id >= 0 && !this.values.has(id));
    for (let i = 0; i < missing.length; i += 10_000) {
      const rows = this.byIds.all(JSON.stringify(missing.slice(i, i + 10_000))) as { id: number; value: string }[];
      for (const r of rows) this.values.set(r.id, r.value);
    }
  }

  flavours(): FlavourTable {
    if (!this.table) {
      const stored = this.readFlavours.get() as Buffer | undefined;
      this.table = stored ? FlavourTable.decode(stored) : new FlavourTable();
      this.savedFlavours = this.table.count;
    }
    return this.table;
  }

  flavour(a: Amounts): number {
    const table = this.flavours();
    if (!this.flavourIds) {
      this.flavourIds = FlavourIds.of(table);
    }
    return this.flavourIds.idOf(table, a);
  }

  size(): number {
    return ((this.maxId.get() as number | null) ?? -1) + 1;
  }

  /** Writes the flavour table back if flavours were added (called at the end of an ingest). */
  saveFlavours(): void {
    if (!this.table || this.table.count === this.savedFlavours) return;
    this.writeFlavours.run(this.table.encode());
    this.savedFlavours = this.table.count;
  }

  /** After the tables were emptied. */
  reset(): void {
    this.ids.clear();
    this.values.clear();
    this.complete = true;
    this.table = new FlavourTable();
    this.flavourIds = new FlavourIds();
    this.savedFlavours = 0;
  }

  /** For a bulk load into the emptied table (see TrackTable.bulkLoad): names are then found by their hashes. */
  keepAll(): boolean {
    if (this.complete) this.hashed ??= new HashedKeys();
    return this.hashed !== null;
  }

  /**
   * Job ids are many: the cache is bounded, and past its size the table (or during a bulk
   * load, the hashes) answers misses.
   */
  private remember(value: string, id: number): void {
    if (this.ids.size >= 65_536) {
      this.ids.clear();
      this.complete = false;
    }
    this.ids.set(value, id);
  }
}

/** Where a sealed track is packed: its segment and row. */
export interface Slot {
  segment: number;
  slot: number;
}

/** Packs the tracks an ingest saves into segments; `finish` writes what changed. */
export class SegmentWriter {
  readonly names: IndexNames;
  private open: { id: number; columns: TrackColumns } | null = null;
  private live: TrackColumns[] = [];
  /** Rows of segments already written whose tracks were loaded back: blanked at the end. */
  private readonly blanks = new Map<number, number[]>();
  private readonly put;

  /** `capacity`: tracks per segment (small in tests, to exercise many segments). */
  constructor(
    private readonly db: Db,
    private readonly capacity = SEGMENT_TRACKS,
  ) {
    this.names = new IndexNames(db);
    this.put = db.prepare('INSERT OR REPLACE INTO segments (id, tracks, min_start_us, max_reach_us, data) VALUES (?, ?, ?, ?, ?)');
  }

  /** Packs a track that left memory; returns where, or null when it held nothing. */
  sealed(t: Track, lastHoldingUs: number | null): Slot | null {
    const open = this.openSegment();
    if (!open.columns.push(t, lastHoldingUs, this.names)) return null;
    const at = { segment: open.id, slot: open.columns.length - 1 };
    if (open.columns.full) {
      this.write(open.id, open.columns);
      this.open = { id: open.id + 1, columns: new TrackColumns(this.capacity) };
    }
    return at;
  }

  /** Packs a track still live at the end of an ingest. */
  liveTrack(t: Track, lastHoldingUs: number | null): void {
    let c = this.live[this.live.length - 1];
    if (!c || c.full) this.live.push((c = new TrackColumns(this.capacity)));
    c.push(t, lastHoldingUs, this.names);
  }

  /** A sealed track was loaded back: its old row must no longer count. */
  reopened(at: Slot): void {
    const open = this.openSegment();
    if (at.segment === open.id) open.columns.blank(at.slot);
    else this.blanks.set(at.segment, [...(this.blanks.get(at.segment) ?? []), at.slot]);
  }

  /**
   * Called after the ingest's final flush, which hands over every track in memory: writes
   * the open segment and the live ones, and blanks the rows of tracks loaded back.
   */
  finish(): void {
    if (this.open && this.open.columns.length > 0) this.write(this.open.id, this.open.columns);
    this.db.exec('DELETE FROM segments WHERE id < 0');
    this.live.forEach((c, i) => c.length > 0 && this.write(-1 - i, c));
    const stored = this.db.prepare('SELECT data FROM segments WHERE id = ?').pluck();
    for (const [id, slots] of this.blanks) {
      const c = TrackColumns.decode(stored.get(id) as Buffer);
      for (const slot of slots) c.blank(slot);
      this.write(id, c);
    }
    this.blanks.clear();
    this.live = [];
    this.names.saveFlavours();
  }

  clear(): void {
    this.db.exec('DELETE FROM segments; DELETE FROM names; DELETE FROM flavours');
    this.names.reset();
    this.open = null;
    this.live = [];
    this.blanks.clear();
  }

  /** The last sealed segment, continued if it has room, or a new one after it. */
  private openSegment(): { id: number; columns: TrackColumns } {
    if (this.open) return this.open;
    const last = this.db.prepare('SELECT id, tracks, data FROM segments WHERE id > 0 ORDER BY id DESC LIMIT 1').get() as
      | { id: number; tracks: number; data: Buffer }
      | undefined;
    const columns = new TrackColumns(this.capacity);
    if (last && last.tracks < this.capacity) {
      const saved = TrackColumns.decode(last.data);
      columns.copyRows(saved);
      this.open = { id: last.id, columns };
    } else {
      this.open = { id: (last?.id ?? 0) + 1, columns };
    }
    return this.open;
  }

  private write(id: number, c: TrackColumns): void {
    this.put.run(id, c.length, c.minStartUs, c.maxReachUs, c.encode());
  }
}

/** The segments a report over [startUs, endUs) reads, decoded; all of them for no window. */
export function* readSegments(db: Db, window: { startUs: number; endUs: number } | null): Generator<TrackColumns> {
  const rows = window
    ? db.prepare(`SELECT data FROM segments WHERE ${OVERLAPS} ORDER BY id`).pluck().iterate(window.startUs, window.endUs)
    : db.prepare('SELECT data FROM segments ORDER BY id').pluck().iterate();
  for (const data of rows as IterableIterator<Buffer>) yield TrackColumns.decode(data);
}

/**
 * Segments and the dictionary kept decoded between reports, for a long-lived reader (a
 * query worker of `serve`): a report reads only the segments it has not seen. An ingest
 * by another connection changes `PRAGMA data_version`, which empties the cache, so a report
 * never mixes two states. Up to `maxBytes` of segments are kept; past that they are read as
 * usual. The connection must not write meanwhile: its own commits leave data_version as it
 * was (SqliteHistoryStore drops the cache after an append).
 */
export class SegmentCache {
  private version: number | null = null;
  private readonly decoded = new Map<number, TrackColumns>();
  private bytes = 0;
  private dictionary: IndexNames | null = null;
  private readonly idsIn;
  private readonly allIds;
  private readonly data;

  constructor(
    private readonly db: Db,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    this.idsIn = db.prepare(`SELECT id FROM segments WHERE ${OVERLAPS} ORDER BY id`).pluck();
    this.allIds = db.prepare('SELECT id FROM segments ORDER BY id').pluck();
    this.data = db.prepare('SELECT data FROM segments WHERE id = ?').pluck();
  }

  /** The segments readSegments would read, in the same order, all from one state of the index. */
  segments(window: { startUs: number; endUs: number } | null): TrackColumns[] {
    // Outside a report's read transaction, one of its own: a commit between the version
    // check and the reads would otherwise mix two states.
    if (!this.db.inTransaction) return this.db.transaction(() => this.segments(window))();
    this.checkVersion();
    const ids = (window ? this.idsIn.all(window.startUs, window.endUs) : this.allIds.all()) as number[];
    return ids.map((id) => {
      const kept = this.decoded.get(id);
      if (kept) return kept;
      const bytes = this.data.get(id) as Buffer;
      const c = TrackColumns.decode(bytes);
      if (this.bytes + bytes.length <= this.maxBytes) {
        this.decoded.set(id, c);
        this.bytes += bytes.length;
      }
      return c;
    });
  }

  /** The dictionary, kept with the segments it belongs to. */
  names(): IndexNames {
    this.checkVersion();
    return (this.dictionary ??= new IndexNames(this.db));
  }

  private checkVersion(): void {
    const version = this.db.pragma('data_version', { simple: true }) as number;
    if (version === this.version) return;
    this.version = version;
    this.decoded.clear();
    this.bytes = 0;
    this.dictionary = null;
  }
}

/** How many rows the segments readSegments reads hold (blanked ones included). */
export function segmentRows(db: Db, window: { startUs: number; endUs: number } | null): number {
  const rows = window
    ? db.prepare(`SELECT coalesce(sum(tracks), 0) FROM segments WHERE ${OVERLAPS}`).pluck().get(window.startUs, window.endUs)
    : db.prepare('SELECT coalesce(sum(tracks), 0) FROM segments').pluck().get();
  return rows as number;
}

/** A segment that may hold time in [startUs, endUs) (the two parameters, in that order). */
const OVERLAPS = 'max_reach_us > ? AND min_start_us < ?';
