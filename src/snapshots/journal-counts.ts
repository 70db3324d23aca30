import { listJournals, readJournalFile, type JournalPosition } from './journal.js';

/**
 * What each watcher's journal says about the watcher, counted as the journal grows: a
 * reader keeps where it stopped in each file and reads only what was appended since.
 */

export interface WatcherCounts {
  source: string;
  /** Allocation changes recorded. */
  events: number;
  /** Streams opened, lists taken (resyncs), and streams lost other than by a stop (each a gap until the next list). */
  connections: number;
  resyncs: number;
  disconnections: number;
  /** The time of the last line (µs), or null before the first. */
  lastUs: number | null;
}

export class JournalCounts {
  private readonly read = new Map<string, JournalPosition>();
  private readonly counts = new Map<string, WatcherCounts>();

  /** Reads what was appended to the folder's journals since the last call; every watcher's counts. */
  update(folder: string): WatcherCounts[] {
    for (const j of listJournals(folder)) {
      let c = this.counts.get(j.sourceId);
      if (!c) this.counts.set(j.sourceId, (c = { source: j.sourceId, events: 0, connections: 0, resyncs: 0, disconnections: 0, lastUs: null }));
      for (const f of j.files) {
        const r = readJournalFile(f.path, this.read.get(f.path));
        this.read.set(f.path, r.end);
        for (const e of r.entries) {
          const t = e.line.type;
          if (t === 'journal') continue;
          if (t === 'allocation') c.events++;
          else if (t === 'connected') c.connections++;
          else if (t === 'resynchronised') c.resyncs++;
          // A watcher stopped on purpose leaves no gap to close.
          else if (t === 'disconnected' && e.line.reason !== 'stopped') c.disconnections++;
          c.lastUs = Math.max(c.lastUs ?? -Infinity, e.atUs);
        }
      }
    }
    return [...this.counts.values()].sort((a, b) => (a.source < b.source ? -1 : 1));
  }
}

/** The counts in Prometheus text format; nothing when no watcher journals here. */
export function watcherMetrics(counts: readonly WatcherCounts[]): string {
  if (counts.length === 0) return '';
  const family = (name: string, type: string, help: string, value: (c: WatcherCounts) => number | null) => {
    const samples = counts.flatMap((c) => {
      const v = value(c);
      return v === null ? [] : [`${name}{source="${c.source}"} ${v}`];
    });
    return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples].map((l) => l + '\n').join('');
  };
  return (
    family('hourmeter_watch_events_total', 'counter', 'Allocation changes a watcher recorded in its journal.', (c) => c.events) +
    family('hourmeter_watch_connections_total', 'counter', "Event streams a watcher opened (the first, then one per reconnection).", (c) => c.connections) +
    family('hourmeter_watch_resyncs_total', 'counter', 'Lists a watcher took and wrote as snapshots, on start and after each drop.', (c) => c.resyncs) +
    family('hourmeter_watch_gaps_total', 'counter', 'Streams a watcher lost: each leaves a gap until its next list (see docs/accounting.md#watched-history).', (c) => c.disconnections) +
    family('hourmeter_watch_last_line_timestamp_seconds', 'gauge', "Time of the last line in a watcher's journal.", (c) => (c.lastUs === null ? null : c.lastUs / 1e6))
  );
}
