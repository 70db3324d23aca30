import { reachUs, type StoredTrack, type Track } from '../accounting/reconstruct.js';
import type { Db } from './schema.js';

/** Allocation tracks in and out of the index's `allocations` table. */

interface TrackRow {
  key: string;
  namespace: string;
  job_id: string;
  job_name: string | null;
  user: string | null;
  grp: string | null;
  component: string | null;
  node: string | null;
  cpu_milli: number;
  cpu_mhz: number;
  memory_bytes: number;
  disk_bytes: number;
  gpu: number;
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
  reach_us: number | null;
}

function toTrack(r: TrackRow): StoredTrack {
  return {
    key: r.key,
    namespace: r.namespace,
    jobId: r.job_id,
    jobName: r.job_name,
    user: r.user,
    group: r.grp,
    component: r.component,
    node: r.node,
    amounts: { cpuMilli: r.cpu_milli, cpuMhz: r.cpu_mhz, memoryBytes: r.memory_bytes, diskBytes: r.disk_bytes, gpu: r.gpu },
    startUs: r.start_us,
    state: r.state,
    lastHoldingUs: r.last_holding_us,
    endUs: r.end_us,
    nextUs: r.next_us,
    listedTerminal: r.listed_terminal === 1,
    nextKind: r.next_kind,
    listedHolding: r.listed_holding === 1,
    last: null,
    listed: r.listed === 1,
    unlistedHolding: r.unlisted_holding === 1,
  };
}

function toRow(t: StoredTrack): TrackRow {
  return {
    key: t.key,
    namespace: t.namespace,
    job_id: t.jobId,
    job_name: t.jobName,
    user: t.user,
    grp: t.group,
    component: t.component,
    node: t.node,
    cpu_milli: t.amounts.cpuMilli,
    cpu_mhz: t.amounts.cpuMhz,
    memory_bytes: t.amounts.memoryBytes,
    disk_bytes: t.amounts.diskBytes,
    gpu: t.amounts.gpu,
    start_us: t.startUs,
    state: t.state,
    last_holding_us: t.lastHoldingUs,
    end_us: t.endUs,
    next_us: t.nextUs,
    listed_terminal: t.listedTerminal ? 1 : 0,
    next_kind: t.nextKind,
    listed_holding: t.listedHolding ? 1 : 0,
    listed: t.listed ? 1 : 0,
    unlisted_holding: t.unlistedHolding ? 1 : 0,
    reach_us: t.state === 'none' ? null : reachUs(t),
  };
}

const COLUMNS = Object.keys(toRow({
  key: '', namespace: '', jobId: '', jobName: null, user: null, group: null, component: null, node: null,
  amounts: { cpuMilli: 0, cpuMhz: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }, startUs: null, state: 'none',
  lastHoldingUs: null, endUs: null, nextUs: null, listedTerminal: false, nextKind: null, listedHolding: false,
  last: null, listed: false, unlistedHolding: false,
}));

export class TrackTable {
  private readonly upsert;
  private readonly byKey;
  private readonly live;
  private readonly overlapping;

  constructor(private readonly db: Db) {
    this.upsert = db.prepare(`INSERT OR REPLACE INTO allocations (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => '@' + c).join(', ')})`);
    this.byKey = db.prepare('SELECT * FROM allocations WHERE key = ?');
    this.live = db.prepare('SELECT * FROM allocations WHERE listed = 1 OR unlisted_holding = 1');
    this.overlapping = db.prepare(
      "SELECT * FROM allocations WHERE reach_us > ? AND start_us < ? AND state != 'none'",
    );
  }

  save(tracks: Iterable<StoredTrack>): void {
    for (const t of tracks) this.upsert.run(toRow(t));
  }

  load(key: string): StoredTrack | undefined {
    const r = this.byKey.get(key) as TrackRow | undefined;
    return r ? toTrack(r) : undefined;
  }

  /** The tracks a resumed reconstruction keeps in memory. */
  liveTracks(): StoredTrack[] {
    return (this.live.all() as TrackRow[]).map(toTrack);
  }

  /** Tracks that may have held resources during [startUs, endUs): a superset of those that did. */
  overlappingTracks(startUs: number, endUs: number): Track[] {
    return (this.overlapping.all(startUs, endUs) as TrackRow[]).map(toTrack);
  }

  /** Every track that held resources, for whole-history readers. */
  allTracks(): Track[] {
    return (this.db.prepare("SELECT * FROM allocations WHERE reach_us IS NOT NULL AND state != 'none'").all() as TrackRow[]).map(toTrack);
  }

  clear(): void {
    this.db.exec('DELETE FROM allocations');
  }
}
