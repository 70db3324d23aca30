import type { JournalEvent } from '../../snapshots/journal.js';
import { formatTimestamp, parseInstant } from '../../util/time.js';
import { ApiHttpError } from '../http.js';
import { abortableSleep, backoffMs, emptyCounts, reason, streamLines, WatchRefused, type WatchCounts } from '../watch.js';
import type { KubernetesCaptureResult } from './capture.js';
import { mapDeletedPod, mapPod, podChangedAt, podDeletedAt, PodResourceError, type AttributionConfig } from './map.js';
import type { Pod } from './types.js';

/**
 * The Kubernetes watch loop (`hourmeter watch --source kubernetes`): lists the pods (a
 * snapshot), then watches them from the list's resourceVersion and hands every change to the
 * journal (docs/accounting.md#watched-history). A watch that ends, drops or stalls goes on
 * from the last resourceVersion or bookmark it saw, so nothing is missed and nothing is
 * listed again; only 410 Gone (the version left the server's history) makes it list again,
 * and only that leaves a gap. The client library's informer is not used: it does not
 * restart after errors, dates the deletes it infers at a re-list, and can stall silently
 * (the evidence is in the README, "hourmeter watch").
 *
 * The network, the files and the clock come in as dependencies.
 */

export interface KubernetesWatchDeps {
  /** Lists namespaces and pods (a snapshot capture), with the resourceVersion of each pod list. */
  capture(): Promise<KubernetesCaptureResult>;
  /** Writes the capture as a snapshot file; returns its name in the folder. */
  saveSnapshot(result: KubernetesCaptureResult): Promise<string>;
  /**
   * Opens a watch of the pods of `namespace` (null: all) from `resourceVersion`, with
   * bookmarks. Rejects with ApiHttpError (its status: 410 when the version expired) or
   * WatchRefused when the credentials are refused.
   */
  openWatch(namespace: string | null, resourceVersion: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  journal: { append(line: JournalEvent): void; flush(): void };
  /** The watcher's clock in µs: the server's (see ServerClock). */
  nowUs(): number;
  /** Times the server showed (in objects), for the clock. */
  sawServerTime(us: number): void;
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  /** Progress and trouble, one line each (stderr). */
  note(line: string): void;
}

export interface KubernetesWatchOptions {
  /** A watch with no event and no bookmark for this long has stalled: it is restarted. */
  stallMs: number;
  /** The first wait before opening a watch again after a failure, doubled up to maxBackoffMs. */
  firstBackoffMs: number;
  maxBackoffMs: number;
  attribution: AttributionConfig;
  /** Namespaces left out of a watch of all of them (--exclude-namespace). */
  excludeNamespaces: readonly string[];
}

/** The server answered 410 Gone: the resourceVersion left its history; list again. */
export class WatchExpired extends Error {}

/** A watch event line: `{"type": ..., "object": ...}`. */
interface WatchEvent {
  type?: string;
  object?: { kind?: string; code?: number; message?: string; metadata?: { resourceVersion?: string; namespace?: string; uid?: string } };
}

/** A resourceVersion as the journal's index: the etcd revision it is in practice, else 0 (it is opaque). */
export function versionIndex(rv: string): number {
  return /^\d{1,15}$/.test(rv) ? Number(rv) : 0;
}

/** Follows the cluster until `stop` aborts; returns what it did. Throws WatchRefused on refused credentials. */
export async function watchKubernetes(opts: KubernetesWatchOptions, deps: KubernetesWatchDeps, stop: AbortSignal): Promise<WatchCounts> {
  const counts = emptyCounts();
  const sleep = deps.sleep ?? abortableSleep;
  const now = () => formatTimestamp(deps.nowUs());
  let listFailures = 0;
  while (!stop.aborted) {
    let listed = false;
    try {
      const result = await deps.capture();
      if (result.resourceVersions.size === 0) throw new Error('no pod list came with a resourceVersion, so a watch cannot go on from it');
      const name = await deps.saveSnapshot(result);
      listed = true;
      counts.resyncs++;
      listFailures = 0;
      const versions = new Map(result.resourceVersions);
      deps.journal.append({
        type: 'resynchronised',
        at: result.snapshot.captured_at,
        index: Math.max(...[...versions.values()].map(versionIndex)),
        snapshot: name,
        namespaces: result.snapshot.scope.namespaces,
      });
      // At once: an index that folds the list's snapshot before its marker must start over.
      deps.journal.flush();
      await followAll(opts, deps, versions, counts, stop);
    } catch (e) {
      if (e instanceof WatchRefused) {
        if (listed) deps.journal.append({ type: 'disconnected', at: now(), reason: e.message });
        throw e;
      }
      if (stop.aborted) {
        if (listed) deps.journal.append({ type: 'disconnected', at: now(), reason: 'stopped' });
        break;
      }
      if (e instanceof WatchExpired) {
        // The history between the last line and the next list is lost: say so, then list.
        deps.journal.append({ type: 'disconnected', at: now(), reason: e.message });
        counts.drops++;
        deps.note(`${e.message}; listing again`);
        continue;
      }
      if (listed) deps.journal.append({ type: 'disconnected', at: now(), reason: reason(e) });
      listFailures++;
      const waitMs = backoffMs(listFailures, opts.firstBackoffMs, opts.maxBackoffMs);
      deps.note(`${reason(e)}; listing again in ${(waitMs / 1000).toFixed(1)} s`);
      try {
        await sleep(waitMs, stop);
      } catch {
        break;
      }
    }
  }
  return counts;
}

/**
 * One watch per pod list (all namespaces, or each --namespace), each going on from its own
 * resourceVersion. Returns when `stop` aborts; the first 410 or refusal ends them all.
 */
async function followAll(opts: KubernetesWatchOptions, deps: KubernetesWatchDeps, versions: Map<string | null, string>, counts: WatchCounts, stop: AbortSignal): Promise<void> {
  const all = new AbortController();
  const onStop = () => all.abort(stop.reason);
  stop.addEventListener('abort', onStop, { once: true });
  let failure: unknown = null;
  try {
    await Promise.all(
      [...versions].map(([namespace, rv]) =>
        followScope(opts, deps, namespace, rv, counts, all.signal).catch((e) => {
          failure ??= e;
          all.abort(e);
        }),
      ),
    );
  } finally {
    stop.removeEventListener('abort', onStop);
  }
  if (stop.aborted) throw stop.reason;
  if (failure) throw failure;
}

/** Watches one pod list until `signal` aborts, going on from the latest resourceVersion after every end, drop or stall. */
async function followScope(opts: KubernetesWatchOptions, deps: KubernetesWatchDeps, namespace: string | null, startRv: string, counts: WatchCounts, signal: AbortSignal): Promise<void> {
  const sleep = deps.sleep ?? abortableSleep;
  const label = namespace === null ? 'the watch of all pods' : `the watch of namespace ${namespace}`;
  const excluded = new Set(opts.excludeNamespaces);
  let rv = startRv;
  let failures = 0;
  while (!signal.aborted) {
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let stall: NodeJS.Timeout | undefined;
    const heard = () => {
      clearTimeout(stall);
      stall = setTimeout(() => attempt.abort(new Error(`${label} stalled: no event or bookmark for ${Math.round(opts.stallMs / 1000)} s`)), opts.stallMs);
    };
    let lines = 0;
    const openedMs = Date.now();
    try {
      const body = await openOrExpire(deps, namespace, rv, attempt.signal);
      counts.connections++;
      deps.journal.append({ type: 'connected', at: formatTimestamp(deps.nowUs()) });
      heard();
      for await (const text of streamLines(body)) {
        heard();
        lines++;
        rv = handleLine(opts, deps, text, rv, excluded, counts) ?? rv;
      }
      if (attempt.signal.aborted) throw attempt.signal.reason;
      // The server's own timeout ends a watch cleanly: go on at once. A watch that ends at
      // once with nothing in it is a server in trouble: wait as after a failure.
      if (lines > 0 || Date.now() - openedMs >= 1000) {
        failures = 0;
        continue;
      }
      throw new Error(`${label} ended as soon as it opened`);
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (e instanceof WatchExpired || e instanceof WatchRefused) throw e;
      counts.drops++;
      // A stall is the network's fault, not the server's: restart at once the first time.
      const stalled = attempt.signal.aborted;
      failures++;
      const waitMs = stalled && failures === 1 ? 0 : backoffMs(failures, opts.firstBackoffMs, opts.maxBackoffMs);
      deps.note(`${reason(stalled ? attempt.signal.reason : e)}; watching again from resourceVersion ${rv}${waitMs > 0 ? ` in ${(waitMs / 1000).toFixed(1)} s` : ''}`);
      if (waitMs > 0) await sleep(waitMs, signal);
    } finally {
      clearTimeout(stall);
      signal.removeEventListener('abort', onAbort);
      attempt.abort(new Error('done'));
    }
  }
}

/** Opens a watch; 410 Gone as an HTTP status becomes WatchExpired. */
async function openOrExpire(deps: KubernetesWatchDeps, namespace: string | null, rv: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
  try {
    return await deps.openWatch(namespace, rv, signal);
  } catch (e) {
    if (e instanceof ApiHttpError && e.status === 410) throw new WatchExpired(`resourceVersion ${rv} has expired (HTTP 410 Gone)`);
    throw e;
  }
}

/**
 * One line of a watch: a change of a pod becomes an allocation line, a bookmark an `alive`
 * line (the watch is complete up to now), an ERROR with code 410 WatchExpired. Returns the
 * resourceVersion the line brings, if any.
 */
function handleLine(opts: KubernetesWatchOptions, deps: KubernetesWatchDeps, text: string, rv: string, excluded: ReadonlySet<string>, counts: WatchCounts): string | null {
  let ev: WatchEvent;
  try {
    ev = JSON.parse(text) as WatchEvent;
  } catch {
    throw new Error(`a watch line is not JSON: ${text.slice(0, 80)}`);
  }
  const object = ev.object;
  const next = typeof object?.metadata?.resourceVersion === 'string' && object.metadata.resourceVersion !== '' ? object.metadata.resourceVersion : null;
  switch (ev.type) {
    case 'BOOKMARK':
      if (next !== null) deps.journal.append({ type: 'alive', at: formatTimestamp(deps.nowUs()), index: versionIndex(next) });
      return next;
    case 'ERROR': {
      const message = typeof object?.message === 'string' ? object.message : 'no message';
      if (object?.code === 410) throw new WatchExpired(`resourceVersion ${rv} has expired (an ERROR event with code 410: ${message})`);
      throw new Error(`the watch sent an error (code ${String(object?.code ?? 'none')}: ${message})`);
    }
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED': {
      const pod = object as unknown as Pod;
      if (!pod?.metadata?.uid || !pod.metadata.name) {
        deps.note(`a ${ev.type} event without a pod's name and uid was skipped`);
        return next;
      }
      if (excluded.has(pod.metadata.namespace ?? 'default')) return next;
      const deleted = ev.type === 'DELETED';
      // A change is dated by the object's own times; a delete by the API's record of it, else its arrival.
      const objectTime = deleted ? podDeletedAt(pod) : podChangedAt(pod);
      const objectUs = objectTime === null ? null : parseInstant(objectTime);
      if (objectUs !== null) deps.sawServerTime(objectUs);
      const at = formatTimestamp(objectUs ?? deps.nowUs());
      let record;
      try {
        record = deleted ? mapDeletedPod(pod, opts.attribution, at) : { ...mapPod(pod, opts.attribution), modified: at };
      } catch (e) {
        if (!(e instanceof PodResourceError)) throw e;
        deps.note(`${e.message}; the change was skipped`);
        return next;
      }
      deps.journal.append({ type: 'allocation', at, index: versionIndex(next ?? rv), event: ev.type, allocation: record });
      counts.events++;
      return next;
    }
    default:
      deps.note(`a watch event of unknown type ${JSON.stringify(ev.type)} was skipped`);
      return next;
  }
}
