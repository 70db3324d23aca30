import type { NativeAllocation, NativeScopeFailure, NativeSnapshot } from '../../snapshots/format.js';
import { nativeSnapshot } from '../../snapshots/format.js';
import type { Sighting } from '../../userdb/store.js';
import { ApiHttpError, isObject, MalformedReply, missingField, PageGuard } from '../http.js';
import type { KubernetesClient } from './client.js';
import { mapPod, PodResourceError, queuedJobs, type AttributionConfig } from './map.js';
import type { NamespaceList, Pod } from './types.js';

/**
 * One capture of a Kubernetes cluster: every pod of every namespace in one chunked list
 * (`GET /api/v1/pods?limit=N&continue=...`), or namespace by namespace when namespaces are
 * named. The pages of a list are one consistent view; when the continue token expires
 * (410 Gone) the list starts again from its first page. The namespaces are listed too, so
 * that a namespace whose last pod went away still counts as covered.
 */

/** How many times a list may start again after its continue token expired. */
export const LIST_RESTARTS = 5;

export interface KubernetesCaptureOptions {
  /** Namespaces to capture; null for all of them. */
  namespaces: string[] | null;
  excludeNamespaces: string[];
  labelSelector: string | null;
  fieldSelector: string | null;
  /** Items per page (`limit`). */
  limit: number;
  /** How many times one list may start again after 410 Gone (default LIST_RESTARTS). */
  maxRestarts?: number;
  attribution: AttributionConfig;
  /** The clock, at the edge. */
  now: () => Date;
  source: { kind: 'kubernetes'; address: string; region: null; cluster?: string };
}

export interface KubernetesCaptureResult {
  snapshot: NativeSnapshot;
  users: Sighting[];
  /** Whether every requested namespace was captured. */
  complete: boolean;
  /** Not failures, but worth saying (a namespace listing refused, say). */
  warnings: string[];
  /** Lists started again after their continue token expired. */
  restarts: number;
  /** The pods as listed, for callers that look further than the records (the unattributed helper). */
  pods: Pod[];
  /**
   * The revision each pod list was cut at (`metadata.resourceVersion`), by the namespace it
   * listed (null: all of them), for a watch that goes on from the list.
   */
  resourceVersions: Map<string | null, string>;
}

interface ListBody<T> {
  metadata?: { continue?: string; resourceVersion?: string };
  items: T[];
}

/** Every item of a chunked list; starts again on 410 Gone, at most `maxRestarts` times. */
export async function listAll<T>(
  client: KubernetesClient,
  path: string,
  query: Record<string, string | undefined>,
  opts: { limit: number; maxRestarts: number; onRestart?: () => void; required?: string[]; onResourceVersion?: (rv: string) => void },
): Promise<T[]> {
  for (let attempt = 0; attempt <= opts.maxRestarts; attempt++) {
    if (attempt > 0) opts.onRestart?.();
    const items: T[] = [];
    let token: string | undefined;
    let expired = false;
    // Bounded: a server that repeats a continue token or a page would otherwise never end the loop.
    const guard = new PageGuard(path);
    while (!expired) {
      let body: ListBody<T>;
      try {
        body = (await client.get<ListBody<T>>(path, { ...query, limit: opts.limit, continue: token })).body;
      } catch (e) {
        if (e instanceof ApiHttpError && e.status === 410 && token !== undefined) {
          expired = true;
          continue;
        }
        throw e;
      }
      if (!isObject(body) || !Array.isArray(body.items)) throw new MalformedReply(path, 'the reply is not a list object with items');
      const missing = missingField(body.items, opts.required ?? ['metadata.name']);
      if (missing) throw new MalformedReply(path, missing);
      items.push(...body.items);
      // Every page of one list is cut at the first page's revision: a watch joins the list there.
      if (token === undefined && typeof body.metadata?.resourceVersion === 'string') opts.onResourceVersion?.(body.metadata.resourceVersion);
      // Only the presence of a continue token means more: a page may hold fewer items than the limit.
      token = body.metadata?.continue || undefined;
      guard.check(body.items.map(itemKey), token);
      if (token === undefined) return items;
    }
  }
  throw new ApiHttpError(
    `GET ${path}: the list's continue token expired (410 Gone) ${opts.maxRestarts + 1} times in a row; pages are read slower than the cluster keeps them: raise --per-page`,
    410,
  );
}

/** What a pod record must have to be accounted: its name and the uid its record is keyed by. */
const POD_FIELDS = ['metadata.name', 'metadata.uid'];

/** What tells items of a list apart: the uid, else namespace/name. */
function itemKey(item: unknown): string {
  const m = (item as { metadata?: { uid?: unknown; namespace?: unknown; name?: unknown } } | null)?.metadata;
  return String(m?.uid ?? `${String(m?.namespace)}/${String(m?.name)}`);
}

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function captureKubernetes(client: KubernetesClient, opts: KubernetesCaptureOptions): Promise<KubernetesCaptureResult> {
  const maxRestarts = opts.maxRestarts ?? LIST_RESTARTS;
  let capturedAt = opts.now();
  const failed: NativeScopeFailure[] = [];
  const warnings: string[] = [];
  const excluded = new Set(opts.excludeNamespaces);
  const selectors = { labelSelector: opts.labelSelector ?? undefined, fieldSelector: opts.fieldSelector ?? undefined };
  let restarts = 0;
  const byNamespace = new Map<string, Pod[]>();
  const resourceVersions = new Map<string | null, string>();

  if (opts.namespaces === null) {
    const names = new Set<string>();
    try {
      const list = await listAll<NamespaceList['items'][number]>(client, '/api/v1/namespaces', {}, { limit: opts.limit, maxRestarts });
      // Every cluster has `default`: an empty list is a broken reply, not an empty cluster.
      if (list.length === 0) throw new MalformedReply('/api/v1/namespaces', 'the server listed no namespace, not even default');
      for (const n of list) names.add(n.metadata.name);
    } catch (e) {
      // Refused (no RBAC to list namespaces) is common and only costs coverage; junk is a failure.
      if (e instanceof MalformedReply) failed.push({ namespace: '*', reason: `listing namespaces: ${reason(e)}` });
      else warnings.push(`listing namespaces: ${reason(e)}; only namespaces with pods count as covered by this snapshot`);
    }
    try {
      // A list started again is a newer view of the cluster: the snapshot takes its time.
      const pods = await listAll<Pod>(client, '/api/v1/pods', selectors, {
        required: POD_FIELDS,
        limit: opts.limit,
        maxRestarts,
        onRestart: () => {
          restarts++;
          capturedAt = opts.now();
        },
        onResourceVersion: (rv) => resourceVersions.set(null, rv),
      });
      for (const p of pods) names.add(p.metadata.namespace ?? 'default');
      for (const n of names) if (!excluded.has(n)) byNamespace.set(n, []);
      for (const p of pods) byNamespace.get(p.metadata.namespace ?? 'default')?.push(p);
    } catch (e) {
      failed.push({ namespace: '*', reason: `listing pods: ${reason(e)}` });
    }
  } else {
    for (const ns of opts.namespaces.filter((n) => !excluded.has(n))) {
      try {
        const pods = await listAll<Pod>(client, `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, selectors, {
          required: POD_FIELDS,
          limit: opts.limit,
          maxRestarts,
          onRestart: () => restarts++,
          onResourceVersion: (rv) => resourceVersions.set(ns, rv),
        });
        byNamespace.set(ns, pods);
      } catch (e) {
        failed.push({ namespace: ns, reason: `listing pods: ${reason(e)}` });
      }
    }
  }

  const covered: string[] = [];
  const allocations: NativeAllocation[] = [];
  const listed: Pod[] = [];
  for (const [ns, pods] of [...byNamespace].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    try {
      // All of a namespace or none of it: a namespace covered with a pod left out would end that pod.
      const records = pods.map((p) => mapPod(p, opts.attribution));
      allocations.push(...records);
      listed.push(...pods);
      covered.push(ns);
    } catch (e) {
      if (!(e instanceof PodResourceError)) throw e;
      failed.push({ namespace: ns, reason: e.message });
    }
  }

  const users = new Map<string, Sighting>();
  for (const a of allocations) {
    if (a.user === null) continue;
    users.set(a.user, { id: a.user, name: null, email: null, group: a.group ?? users.get(a.user)?.group ?? null });
  }
  return {
    snapshot: nativeSnapshot({
      capturedAt,
      finishedAt: opts.now(),
      source: opts.source,
      requested: opts.namespaces ?? null,
      covered,
      failed,
      allocations,
      queued: queuedJobs(allocations),
    }),
    users: [...users.values()],
    complete: failed.length === 0,
    warnings,
    restarts,
    pods: listed,
    resourceVersions,
  };
}
