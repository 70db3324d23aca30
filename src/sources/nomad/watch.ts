import type { JournalEvent } from '../../snapshots/journal.js';
import { formatTimestamp, parseInstant } from '../../util/time.js';
import { jobKey, type CaptureResult } from './capture.js';
import { parseNomadJson } from './json.js';
import { jobNameFromAllocation, mapAllocation, type MappingOptions } from './map.js';
import type { NomadAllocStub } from './types.js';
import { abortableSleep, backoffMs, emptyCounts, reason, streamLines, WatchRefused, type WatchCounts } from '../watch.js';

export { ServerClock, WatchRefused, type WatchCounts } from '../watch.js';

/**
 * The watch loop (`hourmeter watch`): follows Nomad's event stream and hands every
 * allocation change to the journal, exactly as its payload dates it. On start and after
 * every drop it lists the cluster again (a snapshot) before trusting the stream: Nomad's
 * event buffer is small, and a resumed index that left it starts the stream further on
 * without a word (docs/accounting.md#watched-history). The network, the files and the
 * clock come in as dependencies.
 */

/** One journal line (docs/snapshot-format.md#journals). */
export type WatchLine = JournalEvent;

export interface WatchDeps {
  /** Lists the cluster (a snapshot capture). */
  capture(): Promise<CaptureResult>;
  /** Writes the capture as a snapshot file; returns its name in the folder. */
  saveSnapshot(result: CaptureResult): Promise<string>;
  /** Opens the event stream from `index`; rejects with WatchRefused when the credentials are refused. */
  openStream(index: number, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  /** A job's name and meta, for an allocation whose job the watcher has not seen (null: unknown). */
  readJob(namespace: string, id: string): Promise<{ name: string | null; meta: Record<string, string> | null } | null>;
  journal: { append(line: WatchLine): void; flush(): void };
  /** The watcher's clock in µs: the server's (see ServerClock), so that markers and payload times agree. */
  nowUs(): number;
  /** Payload times seen, for the clock. */
  sawServerTime(us: number): void;
  /** Waits between attempts (default: a timer the stop cuts short). */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  /** Progress and trouble, one line each (stderr). */
  note(line: string): void;
}

export interface WatchOptions {
  /** The server's heartbeat interval: silence past twice this is a dropped stream. */
  heartbeatMs: number;
  /** The first wait before connecting again, doubled up to maxBackoffMs. */
  firstBackoffMs: number;
  maxBackoffMs: number;
  mapping: MappingOptions;
  /** Which jobs the capture keeps (--job-prefix); namespaces are those the list covered. */
  keepJob(name: string | null): boolean;
}

interface StreamEvent {
  Topic?: string;
  Type?: string;
  Key?: string;
  Namespace?: string;
  Index?: number;
  Payload?: { Allocation?: NomadAllocStub; Job?: { ID?: string; Name?: string; Namespace?: string; Meta?: Record<string, string> | null } };
}

/** Follows the stream until `stop` aborts; returns what it did. Throws WatchRefused on refused credentials. */
export async function watchNomad(opts: WatchOptions, deps: WatchDeps, stop: AbortSignal): Promise<WatchCounts> {
  const counts = emptyCounts();
  let failures = 0;
  while (!stop.aborted) {
    const connection = new AbortController();
    const onStop = () => connection.abort(new Error('stopped'));
    stop.addEventListener('abort', onStop, { once: true });
    // Only a stream that opened can be lost: a failed attempt to connect again writes nothing.
    let opened = false;
    try {
      await followOnce(opts, deps, connection, counts, {
        opened: () => (opened = true),
        resynced: () => (failures = 0),
      });
      if (!stop.aborted) throw new Error('the server closed the stream');
    } catch (e) {
      if (e instanceof WatchRefused) {
        if (opened) deps.journal.append({ type: 'disconnected', at: formatTimestamp(deps.nowUs()), reason: e.message });
        throw e;
      }
      const why = stop.aborted ? 'stopped' : reason(connection.signal.aborted ? connection.signal.reason : e);
      if (opened) deps.journal.append({ type: 'disconnected', at: formatTimestamp(deps.nowUs()), reason: why });
      if (stop.aborted) break;
      counts.drops++;
      failures++;
      const waitMs = backoffMs(failures, opts.firstBackoffMs, opts.maxBackoffMs);
      deps.note(`stream dropped (${why}); listing again in ${(waitMs / 1000).toFixed(1)} s`);
      try {
        await (deps.sleep ?? abortableSleep)(waitMs, stop);
      } catch {
        break;
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      connection.abort(new Error('done'));
    }
  }
  return counts;
}

/**
 * One connection: the stream opened first, then the cluster listed at index N and written
 * as a snapshot, then every event after N. Events that arrive while the list runs wait
 * their turn; those at or below N are already in the list. Returns when the stream ends.
 */
async function followOnce(
  opts: WatchOptions,
  deps: WatchDeps,
  connection: AbortController,
  counts: WatchCounts,
  on: { opened: () => void; resynced: () => void },
): Promise<void> {
  const body = await deps.openStream(1, connection.signal);
  counts.connections++;
  on.opened();
  deps.journal.append({ type: 'connected', at: formatTimestamp(deps.nowUs()) });

  // Silence past two heartbeats drops the stream.
  let silence: NodeJS.Timeout | undefined;
  const silenceMs = 2 * opts.heartbeatMs;
  const heard = () => {
    clearTimeout(silence);
    silence = setTimeout(() => connection.abort(new Error(`no heartbeat for ${Math.round(silenceMs / 1000)} s`)), silenceMs);
  };
  heard();

  let listedIndex = Infinity;
  let lastIndex = 0;
  let covered: ReadonlySet<string> = new Set();
  let jobs = new Map<string, { name: string | null; meta: Record<string, string> | null }>();
  let resync!: () => void;
  const listed = new Promise<void>((resolve) => (resync = resolve));
  // Lines are handled one after another, in order, once the list is in.
  let chain: Promise<void> = listed;
  let failed: unknown = null;
  const fail = (e: unknown) => {
    failed ??= e;
    connection.abort(e);
  };
  const handle = async (text: string) => {
    const line = parseNomadJson(text) as { Index?: number; Events?: StreamEvent[] } | null;
    if (!line || typeof line !== 'object' || !Array.isArray(line.Events)) {
      // The heartbeat, {}: the stream is alive and complete up to now.
      deps.journal.append({ type: 'alive', at: formatTimestamp(deps.nowUs()), index: lastIndex });
      return;
    }
    for (const ev of line.Events) {
      const index = ev.Index ?? line.Index ?? 0;
      if (index <= listedIndex) continue;
      lastIndex = Math.max(lastIndex, index);
      if (ev.Topic === 'Job' && ev.Payload?.Job?.ID) {
        const job = ev.Payload.Job;
        // A deregistered job keeps its owner: its allocations may still report.
        jobs.set(jobKey(job.Namespace ?? ev.Namespace ?? 'default', job.ID!), { name: job.Name ?? null, meta: job.Meta ?? null });
        continue;
      }
      const a = ev.Payload?.Allocation;
      if (ev.Topic !== 'Allocation' || !a?.ID || !a.JobID) continue;
      const namespace = a.Namespace ?? 'default';
      // The stream carries every namespace; the journal holds those the list covered.
      if (!covered.has(namespace)) continue;
      const key = jobKey(namespace, a.JobID);
      let job = jobs.get(key);
      if (!job) {
        job = (await deps.readJob(namespace, a.JobID)) ?? { name: null, meta: null };
        jobs.set(key, job);
      }
      const jobName = job.name ?? jobNameFromAllocation(a.Name);
      if (!opts.keepJob(jobName)) continue;
      const record = mapAllocation(a, jobName, job.meta, opts.mapping);
      // The payload's own time of the change (its ModifyTime), never the time it arrived.
      const modifiedUs = parseInstant(record.modified);
      if (modifiedUs !== null) deps.sawServerTime(modifiedUs);
      const at = formatTimestamp(modifiedUs ?? deps.nowUs());
      deps.journal.append({ type: 'allocation', at, index, event: ev.Type ?? 'AllocationUpdated', allocation: record });
      counts.events++;
    }
  };

  const pump = (async () => {
    // After a line failed, the rest wait for nothing: the stream is being cut.
    for await (const text of streamLines(body, heard)) chain = chain.then(() => (failed ? undefined : handle(text))).catch(fail);
  })();
  pump.catch(() => {});

  try {
    const result = await deps.capture();
    if (result.index === null) throw new Error('the allocation list came without an X-Nomad-Index, so the stream cannot be joined to it');
    const name = await deps.saveSnapshot(result);
    listedIndex = result.index;
    lastIndex = result.index;
    covered = new Set(result.snapshot.scope.namespaces);
    jobs = new Map(result.jobs);
    counts.resyncs++;
    deps.journal.append({ type: 'resynchronised', at: result.snapshot.captured_at, index: result.index, snapshot: name, namespaces: result.snapshot.scope.namespaces });
    // At once: an index that folds the list's snapshot before its marker must start over.
    deps.journal.flush();
    on.resynced();
    resync();
    await pump;
    await chain;
  } finally {
    clearTimeout(silence);
  }
  if (failed) throw failed;
  if (connection.signal.aborted) throw connection.signal.reason;
}
