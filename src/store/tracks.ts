import { reachUs, type StoredTrack, type Track } from '../accounting/reconstruct.js';
import { resource, RESOURCES, type Amounts } from '../accounting/resources.js';
import { BULK_INDEXES, type Db } from './schema.js';
import { HashedKeys } from './hashed-keys.js';
import { SegmentWriter, type Slot } from './segments.js';

/**
 * Allocation tracks in and out of the index: `allocations` holds the sealed ones (out of
 * memory, changed only if listed again), `live_allocations` the ones still live, which
 * every ingest takes back into memory and writes again.
 */

/** Each resource's column (resources.ts), e.g. cpu_milli: its amount in base units. */
type AmountColumns = Record<(typeof RESOURCES)[number]['column'], number>;

interface TrackRow extends AmountColumns {
  key: string;
  namespace: string;
  job_id: string;
  job_name: string | null;
  user: string | null;
  grp: string | null;
  component: string | null;
  node: string | null;
  start_us: number | null;
  state: Track['state'];
  last_holding_us: number | null;
  end_us: number | null;
  next_us: number | null;
  listed_terminal: number;
  next_kind: Track['nextKind'];
  listed_holding: number;
  listed: number;
  unlisted_holding: number;
  segment: number | null;
  slot: number | null;
}

/**
 * Rows are read as arrays of values in COLUMNS order: better-sqlite3 makes an array about
 * twice as fast as a row object, and every ingest reads back all the live tracks.
 */
type RowValues = readonly unknown[];

const col = <K extends keyof TrackRow>(v: RowValues, column: K): TrackRow[K] => v[AT[column]] as TrackRow[K];

function toTrack(v: RowValues): StoredTrack {
  const amounts = {} as Amounts;
  for (const res of RESOURCES) amounts[res.amount] = col(v, res.column);
  return {
    key: col(v, 'key'),
    namespace: col(v, 'namespace'),
    jobId: col(v, 'job_id'),
    jobName: col(v, 'job_name'),
    user: col(v, 'user'),
    group: col(v, 'grp'),
    component: col(v, 'component'),
    node: col(v, 'node'),
    amounts,
    startUs: col(v, 'start_us'),
    state: col(v, 'state'),
    lastHoldingUs: col(v, 'last_holding_us'),
    endUs: col(v, 'end_us'),
    nextUs: col(v, 'next_us'),
    listedTerminal: col(v, 'listed_terminal') === 1,
    nextKind: col(v, 'next_kind'),
    listedHolding: col(v, 'listed_holding') === 1,
    last: null,
    listed: col(v, 'listed') === 1,
    unlistedHolding: col(v, 'unlisted_holding') === 1,
  };
}

/** A track's column values, in COLUMNS order (positional binding is the fast path). */
function toValues(t: Track, f: { listed: boolean; unlistedHolding: boolean; lastHoldingUs: number | null }, at: Slot | null): unknown[] {
  const values: unknown[] = [t.key, t.namespace, t.jobId, t.jobName, t.user, t.group, t.component, t.node];
  for (const r of RESOURCES) values.push(t.amounts[r.amount]);
  values.push(
    t.startUs, t.state, f.lastHoldingUs, t.endUs, t.nextUs, t.listedTerminal ? 1 : 0, t.nextKind,
    t.listedHolding ? 1 : 0, f.listed ? 1 : 0, f.unlistedHolding ? 1 : 0,
    at?.segment ?? null, at?.slot ?? null,
  );
  return values;
}

const COLUMNS: readonly (keyof TrackRow)[] = [
  'key', 'namespace', 'job_id', 'job_name', 'user', 'grp', 'component', 'node',
  ...RESOURCES.map((r) => r.column),
  'start_us', 'state', 'last_holding_us', 'end_us', 'next_us', 'listed_terminal', 'next_kind',
  'listed_holding', 'listed', 'unlisted_holding', 'segment', 'slot',
];

/** Each column's place in RowValues. */
const AT = Object.fromEntries(COLUMNS.map((c, i) => [c, i])) as Record<keyof TrackRow, number>;
/** The columns, for a SELECT that reads RowValues. */
const SELECTED = COLUMNS.join(', ');

/**
 * The `allocations` table: every track's reconstruction state, saved by the ingest and
 * loaded back when an allocation is listed again. Tracks that held resources are also
 * packed into segments (segments.ts), which is what reports read.
 */
export class TrackTable {
  private readonly upsert;
  private readonly putLive;
  private readonly dropSealed;
  private readonly byKey;
  private readonly byRowid;
  private readonly segments: SegmentWriter;
  /** Every key in `allocations` with its row, when tracked (from an empty table on); null means ask the table. */
  private known: HashedKeys | null;
  /** The rows of the sealed tracks loaded back and not saved since: saving one replaces (or, live, deletes) its row. */
  private readonly reloaded = new Map<string, number>();
  /** Filling an empty table without its lookup indexes (see bulkLoad). */
  private bulk = false;

  constructor(
    private readonly db: Db,
    segmentTracks?: number,
  ) {
    // The row id is given when known, else new: a key saved again replaces its row, by the
    // row id while filling in bulk, by the unique key index otherwise.
    this.upsert = db.prepare(`INSERT OR REPLACE INTO allocations (rowid, ${COLUMNS.join(', ')}) VALUES (?, ${COLUMNS.map(() => '?').join(', ')})`);
    this.putLive = db.prepare(`INSERT INTO live_allocations (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
    this.dropSealed = db.prepare('DELETE FROM allocations WHERE rowid = ?');
    // An empty table stays known in memory: a cold ingest then never asks SQLite about
    // allocations it has not saved (most of them are simply new).
    const empty = db.prepare('SELECT 1 FROM allocations UNION ALL SELECT 1 FROM live_allocations LIMIT 1').get() === undefined;
    this.known = empty ? new HashedKeys() : null;
    // The row id comes after the columns.
    this.byKey = db.prepare(`SELECT ${SELECTED}, rowid FROM allocations WHERE key = ?`).raw(true);
    this.byRowid = db.prepare(`SELECT ${SELECTED}, rowid FROM allocations WHERE rowid = ?`).raw(true);
    this.segments = new SegmentWriter(db, segmentTracks);
  }

  /** Saves one track; a Reconstructor's flush() feeds it. */
  readonly save = (t: Track, flags: { listed: boolean; unlistedHolding: boolean; lastHoldingUs: number | null }): void => {
    const row = this.reloaded.get(t.key);
    if (row !== undefined) this.reloaded.delete(t.key);
    if (flags.listed || flags.unlistedHolding) {
      this.segments.liveTrack(t, flags.lastHoldingUs);
      this.putLive.run(toValues(t, flags, null));
      // Listed again after it was sealed: it is live now, and only there.
      if (row !== undefined) this.dropSealed.run(row);
      return;
    }
    const values = toValues(t, flags, this.segments.sealed(t, flags.lastHoldingUs));
    values.unshift(row ?? null);
    const rowid = Number(this.upsert.run(values).lastInsertRowid);
    if (row === undefined) this.known?.add(t.key, rowid);
  };

  /** A sealed track, by its key (live ones are in the reconstruction's memory already). */
  load(key: string): StoredTrack | undefined {
    let r: RowValues | undefined;
    if (this.known) {
      for (const rowid of this.known.candidates(key)) {
        const row = this.byRowid.get(rowid) as RowValues | undefined;
        if (!row || col(row, 'key') !== key) continue;
        r = row;
        break;
      }
    } else {
      r = this.byKey.get(key) as RowValues | undefined;
    }
    if (!r) return undefined;
    this.reloaded.set(key, r[COLUMNS.length] as number);
    const segment = col(r, 'segment');
    const slot = col(r, 'slot');
    if (segment !== null && slot !== null) this.segments.reopened({ segment, slot });
    return toTrack(r);
  }

  /**
   * The tracks a resumed reconstruction keeps in memory, taken out of the table: the
   * ingest's last flush writes every one of them again, live or sealed.
   */
  takeLiveTracks(): StoredTrack[] {
    const rows = this.db.prepare(`SELECT ${SELECTED} FROM live_allocations`).raw(true).all() as RowValues[];
    this.db.exec('DELETE FROM live_allocations');
    return rows.map(toTrack);
  }

  /**
   * When the table is empty (a first ingest, a rebuild): drops the lookup indexes of the
   * allocations and the names, which finish() makes again. Every key and name is then
   * known in memory, so nothing is looked up in the table meanwhile.
   */
  bulkLoad(): void {
    if (!this.known || this.bulk || !this.segments.names.keepAll()) return;
    for (const index of BULK_INDEXES) this.db.exec(`DROP INDEX IF EXISTS ${index.name}`);
    this.bulk = true;
  }

  /** After the ingest's final flush: writes the segments that changed, and the indexes a bulk load dropped. */
  finish(): void {
    this.segments.finish();
    if (this.bulk) for (const index of BULK_INDEXES) this.db.exec(index.sql);
    this.bulk = false;
  }

  clear(): void {
    this.db.exec('DELETE FROM allocations; DELETE FROM live_allocations');
    this.segments.clear();
    this.known = new HashedKeys();
    this.reloaded.clear();
  }
}

/**
 * The tracks that may have held resources in [startUs, endUs), read from the table one
 * row at a time: for reports that need each allocation's identity (monthly details).
 */
export function* tracksOverlapping(db: Db, window: { startUs: number; endUs: number }): Generator<StoredTrack> {
  const rows = db
    .prepare(`SELECT ${SELECTED} FROM allocations WHERE start_us IS NOT NULL AND start_us < @end UNION ALL SELECT ${SELECTED} FROM live_allocations WHERE start_us IS NOT NULL AND start_us < @end`)
    .raw(true)
    .iterate({ end: window.endUs }) as IterableIterator<RowValues>;
  for (const r of rows) {
    const t = toTrack(r);
    const reach = reachUs(t);
    if (reach !== null && reach > window.startUs) yield t;
  }
}

export interface NamespaceHolding {
  namespace: string;
  /** Allocations holding resources in the latest snapshot. */
  allocations: number;
  gpus: number;
}

/** What the allocations listed in the latest snapshot hold, per namespace, sorted by namespace. */
export function holdingByNamespace(db: Db): NamespaceHolding[] {
  return db
    .prepare(`SELECT namespace, count(*) AS allocations, sum(${resource('gpu').column}) AS gpus FROM live_allocations WHERE listed = 1 AND state = 'holding' GROUP BY namespace ORDER BY namespace`)
    .all() as NamespaceHolding[];
}
