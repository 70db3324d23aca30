import type { NativeAllocation, NativeQueuedJob, NativeScopeFailure, NativeSnapshot } from '../../snapshots/format.js';
import { nativeSnapshot } from '../../snapshots/format.js';
import { isObject, MalformedReply, missingField, PageGuard } from '../http.js';
import { NomadHttpError, type NomadClient } from './client.js';
import { jobNameFromAllocation, mapAllocation, mapQueuedJob, type MappingOptions } from './map.js';
import type { NomadAllocStub, NomadJobStub, NomadNamespace } from './types.js';

/**
 * One capture of a Nomad cluster in a handful of requests: the namespaces, every allocation
 * (`namespace=*`, paged) and every job with its meta (`meta=true`, paged). The request
 * count grows with pages, not with jobs. Servers older than 1.5 have no `meta=true`; their
 * job meta is fetched per job, once per job version, and kept in a cache between runs.
 */

export interface MetaCache {
  /** `namespace\u0000jobID` → the job's meta at a JobModifyIndex. */
  jobs: Record<string, { index: number; meta: Record<string, string> | null }>;
  /** Allocation ID → the meta of its job copy (for jobs already garbage-collected). */
  allocs: Record<string, Record<string, string> | null>;
}

export const emptyMetaCache = (): MetaCache => ({ jobs: {}, allocs: {} });

export interface CaptureOptions {
  /** Namespaces to capture; null for every namespace the token can read. */
  namespaces: string[] | null;
  excludeNamespaces: string[];
  /** Keep only jobs whose name starts with one of these (off when empty). */
  jobPrefixes: string[];
  perPage: number;
  /** `auto` detects servers without `meta=true`; `per-job` forces the per-job path. */
  metaMode: 'auto' | 'list' | 'per-job';
  metaConcurrency: number;
  mapping: MappingOptions;
  /** The clock, at the edge: capture start and finish. */
  now: () => Date;
  source: { kind: 'nomad'; address: string; region: string | null; cluster?: string };
}

export interface UserSighting {
  id: string;
  name: string | null;
  email: string | null;
  group: string | null;
}

export interface CaptureResult {
  snapshot: NativeSnapshot;
  users: UserSighting[];
  /** Whether every requested namespace (and the job listing) was captured. */
  complete: boolean;
  /** Meta cache to keep for the next run: only entries still in use. */
  cache: MetaCache;
  /**
   * The Raft index the allocation listing reflects (the lowest of its pages' X-Nomad-Index):
   * every change up to it is in the snapshot. Null when the server sent none.
   */
  index: number | null;
  /** The jobs listed, by namespace and ID, with their meta: what a watcher attributes later allocations with. */
  jobs: Map<string, { name: string | null; meta: Record<string, string> | null }>;
}

/** A job's key in CaptureResult.jobs. */
export const jobKey = (namespace: string, id: string): string => `${namespace}\u0000${id}`;

/** What every record of a listing must have: a record without them cannot be accounted. */
const REQUIRED: Record<string, string[]> = {
  '/v1/allocations': ['ID', 'JobID', 'ClientStatus'],
  '/v1/jobs': ['ID', 'Status'],
};

/** The Raft index a reply reflects (X-Nomad-Index), or null when absent or unreadable. */
function replyIndex(headers: Record<string, string | string[] | undefined>): number | null {
  const v = headers['x-nomad-index'];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** Every page of a listing; `indexes` gets the X-Nomad-Index of each page. */
async function allPages<T>(client: NomadClient, path: string, query: Record<string, string | number | boolean>, perPage: number, indexes: number[] = []): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  // Bounded: a server that repeats a token or a page would otherwise never end the loop.
  const guard = new PageGuard(path);
  for (;;) {
    const res = await client.get<T[]>(path, { ...query, per_page: perPage, next_token: token });
    if (!Array.isArray(res.body)) throw new MalformedReply(path, `the reply is ${kindOf(res.body)}, not a list`);
    const missing = missingField(res.body, REQUIRED[path] ?? []);
    if (missing) throw new MalformedReply(path, missing);
    out.push(...res.body);
    const index = replyIndex(res.headers);
    if (index !== null) indexes.push(index);
    const next = res.headers['x-nomad-nexttoken'];
    token = (Array.isArray(next) ? next[0] : next) || undefined;
    guard.check(res.body.map((item) => String((item as { ID?: unknown })?.ID)), token);
    if (!token) return out;
  }
}

/** What a JSON value is, for messages. */
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/** A single object's reply (a job, an allocation), checked to be one. */
function oneObject<T>(path: string, body: unknown): T {
  if (!isObject(body)) throw new MalformedReply(path, `the reply is ${kindOf(body)}, not an object`);
  return body as T;
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function bounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function captureNomad(client: NomadClient, opts: CaptureOptions, cache: MetaCache): Promise<CaptureResult> {
  const capturedAt = opts.now();
  const failed: NativeScopeFailure[] = [];
  const nextCache = emptyMetaCache();
  const indexes: number[] = [];
  const jobsSeen = new Map<string, { name: string | null; meta: Record<string, string> | null }>();
  const finish = (covered: string[], allocations: NativeAllocation[], queued: NativeQueuedJob[], users: UserSighting[]): CaptureResult => ({
    snapshot: nativeSnapshot({ capturedAt, finishedAt: opts.now(), source: opts.source, requested: opts.namespaces ?? null, covered, failed, allocations, queued }),
    users,
    complete: failed.length === 0,
    cache: nextCache,
    index: indexes.length > 0 ? Math.min(...indexes) : null,
    jobs: jobsSeen,
  });

  // 1. Which namespaces the token can read.
  let readable: string[];
  try {
    const res = await client.get<NomadNamespace[]>('/v1/namespaces');
    if (!Array.isArray(res.body)) throw new MalformedReply('/v1/namespaces', `the reply is ${kindOf(res.body)}, not a list`);
    const missing = missingField(res.body, ['Name']);
    if (missing) throw new MalformedReply('/v1/namespaces', missing);
    // Nomad always has `default`, and any token that can read it sees it listed.
    if (res.body.length === 0) throw new MalformedReply('/v1/namespaces', 'the server listed no namespace, not even default (a token without any namespace capability gets 403, not an empty list)');
    readable = res.body.map((n) => n.Name);
  } catch (e) {
    failed.push({ namespace: '*', reason: `listing namespaces: ${reason(e)}` });
    return finish([], [], [], []);
  }
  const excluded = new Set(opts.excludeNamespaces);
  let targets = readable.filter((n) => !excluded.has(n));
  if (opts.namespaces) {
    for (const n of opts.namespaces) if (!readable.includes(n)) failed.push({ namespace: n, reason: 'no such namespace, or the token cannot read it' });
    targets = targets.filter((n) => opts.namespaces!.includes(n));
  }
  const targetSet = new Set(targets);

  // 2. Allocations: all namespaces in one paged listing; if it fails, namespace by namespace,
  // so that one bad namespace does not cost the others their coverage.
  const allocQuery = { resources: true };
  let allocs: NomadAllocStub[] = [];
  const covered: string[] = [];
  const perNamespace = opts.namespaces !== null;
  let listedAll = false;
  if (!perNamespace) {
    try {
      allocs = (await allPages<NomadAllocStub>(client, '/v1/allocations', { namespace: '*', ...allocQuery }, opts.perPage, indexes)).filter((a) => targetSet.has(a.Namespace ?? 'default'));
      covered.push(...targets);
      listedAll = true;
    } catch {
      allocs = [];
      indexes.length = 0;
    }
  }
  if (!listedAll) {
    for (const ns of targets) {
      try {
        allocs.push(...(await allPages<NomadAllocStub>(client, '/v1/allocations', { namespace: ns, ...allocQuery }, opts.perPage, indexes)));
        covered.push(ns);
      } catch (e) {
        failed.push({ namespace: ns, reason: `listing allocations: ${reason(e)}` });
      }
    }
  }
  const coveredSet = new Set(covered);

  // 3. Jobs and their meta.
  let jobs: NomadJobStub[] = [];
  try {
    jobs = (await allPages<NomadJobStub>(client, '/v1/jobs', { namespace: '*', meta: true }, opts.perPage)).filter((j) => coveredSet.has(j.Namespace ?? 'default'));
  } catch (e) {
    failed.push({ namespace: '*', reason: `listing jobs (owners are unknown for this snapshot): ${reason(e)}` });
  }
  const jobsByKey = new Map(jobs.map((j) => [jobKey(j.Namespace ?? 'default', j.ID), j]));
  const metaOf = new Map<string, Record<string, string> | null>();
  // A server before 1.5 ignores meta=true: no stub carries a Meta key, even for jobs that have meta.
  const perJob = opts.metaMode === 'per-job' || (opts.metaMode === 'auto' && jobs.length > 0 && !jobs.some((j) => 'Meta' in j));
  if (perJob) {
    const missing: NomadJobStub[] = [];
    for (const j of jobs) {
      const key = jobKey(j.Namespace ?? 'default', j.ID);
      const hit = cache.jobs[key];
      if (hit && hit.index === (j.JobModifyIndex ?? -1)) {
        metaOf.set(key, hit.meta);
        nextCache.jobs[key] = hit;
      } else missing.push(j);
    }
    await bounded(missing, opts.metaConcurrency, async (j) => {
      const ns = j.Namespace ?? 'default';
      const key = jobKey(ns, j.ID);
      try {
        const path = `/v1/job/${encodeURIComponent(j.ID)}`;
        const res = await client.get<unknown>(path, { namespace: ns });
        const meta = oneObject<{ Meta?: Record<string, string> | null }>(path, res.body).Meta ?? null;
        metaOf.set(key, meta);
        nextCache.jobs[key] = { index: j.JobModifyIndex ?? -1, meta };
      } catch (e) {
        // A job purged between the two requests has no meta to give; anything else is a failure.
        if (!(e instanceof NomadHttpError && e.status === 404)) failed.push({ namespace: ns, reason: `reading job ${j.ID}: ${reason(e)}` });
      }
    });
  } else {
    for (const j of jobs) metaOf.set(jobKey(j.Namespace ?? 'default', j.ID), j.Meta ?? null);
  }
  for (const j of jobs) {
    const key = jobKey(j.Namespace ?? 'default', j.ID);
    jobsSeen.set(key, { name: j.Name ?? null, meta: metaOf.get(key) ?? null });
  }

  // 4. Allocations whose job is gone: the allocation keeps a copy of its job, meta included.
  const orphans = allocs.filter((a) => !jobsByKey.has(jobKey(a.Namespace ?? 'default', a.JobID)));
  const allocMeta = new Map<string, Record<string, string> | null>();
  const unknown: NomadAllocStub[] = [];
  for (const a of orphans) {
    if (a.ID in cache.allocs) {
      allocMeta.set(a.ID, cache.allocs[a.ID] ?? null);
      nextCache.allocs[a.ID] = cache.allocs[a.ID] ?? null;
    } else unknown.push(a);
  }
  await bounded(unknown, opts.metaConcurrency, async (a) => {
    try {
      const path = `/v1/allocation/${encodeURIComponent(a.ID)}`;
      const res = await client.get<unknown>(path, { namespace: a.Namespace ?? 'default' });
      const meta = oneObject<NomadAllocStub>(path, res.body).Job?.Meta ?? null;
      allocMeta.set(a.ID, meta);
      nextCache.allocs[a.ID] = meta;
    } catch (e) {
      if (!(e instanceof NomadHttpError && e.status === 404)) failed.push({ namespace: a.Namespace ?? 'default', reason: `reading allocation ${a.ID}: ${reason(e)}` });
    }
  });

  // 5. Records.
  const keep = (name: string | null | undefined) => opts.jobPrefixes.length === 0 || (name != null && opts.jobPrefixes.some((p) => name.startsWith(p)));
  const users = new Map<string, UserSighting>();
  const sight = (meta: Record<string, string> | null) => {
    const id = meta?.[opts.mapping.meta.user];
    if (!id) return;
    const prev = users.get(id);
    users.set(id, {
      id,
      name: meta?.[opts.mapping.meta.userName] || prev?.name || null,
      email: meta?.[opts.mapping.meta.userEmail] || prev?.email || null,
      group: meta?.[opts.mapping.meta.group] || prev?.group || null,
    });
  };
  const allocations: NativeAllocation[] = [];
  for (const a of allocs) {
    const ns = a.Namespace ?? 'default';
    const job = jobsByKey.get(jobKey(ns, a.JobID));
    const jobName = job?.Name ?? jobNameFromAllocation(a.Name);
    if (!keep(jobName)) continue;
    const meta = job ? (metaOf.get(jobKey(ns, a.JobID)) ?? null) : (allocMeta.get(a.ID) ?? null);
    sight(meta);
    allocations.push(mapAllocation(a, jobName, meta, opts.mapping));
  }
  const queued: NativeQueuedJob[] = [];
  for (const j of jobs) {
    if (!keep(j.Name)) continue;
    const meta = metaOf.get(jobKey(j.Namespace ?? 'default', j.ID)) ?? null;
    const q = mapQueuedJob(j, meta, opts.mapping.meta);
    if (q) {
      sight(meta);
      queued.push(q);
    }
  }
  return finish(covered, allocations, queued, [...users.values()]);
}
