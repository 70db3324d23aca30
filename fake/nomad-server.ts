/**
 * A fake Nomad HTTP API over the cluster simulator, for tests, the demo and benchmarks.
 *
 *   const nomad = await startFakeNomad({ cluster, token: 's3cret', version: '1.9.3' });
 *   nomad.setNow(cluster.snapshots[3].timeUs);
 *   nomad.faults.enqueue({ kind: 'status', status: 503, times: 2, match: '/v1/allocations' });
 *   ... GET `${nomad.url}/v1/allocations?namespace=*&resources=true&per_page=100` ...
 *   await nomad.close();
 *
 * Responses use Nomad's real shapes at the simulated instant `now` (nomad-model.ts); the
 * server adds routing, ACLs, pagination, version quirks, TLS and fault injection. It listens
 * on 127.0.0.1 only.
 *
 * Every reply's Date header is the simulated instant (to the second), as a real server's
 * Date is its own clock.
 *
 * Event stream. `GET /v1/event/stream?topic=Allocation&topic=Job:<id>&namespace=*&index=N`
 * answers 200 and holds the connection open, writing NDJSON: `{}` at once and then every
 * `heartbeatMs` (option, default 30000), and `{"Events":[...],"Index":N}` per raft write,
 * in index order, with the events of one write on one line. Every change of the simulator
 * is a write: job registrations (JobRegistered), placements, disconnects, lost and the stop
 * of a rescheduled allocation (PlanResult), and starts, restarts, reconnects and ends
 * (AllocationUpdated). An Allocation event carries `Payload.Allocation`, the allocation as
 * `GET /v1/allocation/:id` shows it at that instant but without its Job; a Job event carries
 * `Payload.Job` (Meta included), sent on registration and whenever the job's status changes.
 * Event indexes are the ModifyIndex values of the payloads, and X-Nomad-Index at an instant
 * is just above the last event up to it.
 *
 *   nomad.setNow(t) / nomad.advance(dUs)  moving forward publishes every change in between
 *                                         (going back is another history: streams are cut
 *                                         and the buffer is emptied)
 *   nomad.restart()         a restarted server: open streams are cut, the buffer is lost
 *   nomad.dropStreams()     a network cut: open streams are cut, the buffer stays
 *   nomad.silenceStreams()  open streams stay connected but get nothing, not even heartbeats
 *   nomad.openStreams       how many streams are open
 *
 * As Nomad (nomad/stream/event_buffer.go, event_broker.go, subscription.go):
 *   - The buffer keeps the last `eventBufferSize` writes (option, default 100), plus one once
 *     it has overflowed (Nomad drops its empty sentinel head first). A new server starts
 *     with a full buffer; after restart() it is empty.
 *   - `index=0` or none starts at the oldest buffered write; `index=N` at the write with
 *     index N, else the first after it; an N that left the buffer starts silently at the
 *     oldest; an N past every write sends the newest write again.
 *   - `topic=T` is `T:*`; no topic means every topic. An event matching several of the
 *     given keys is sent once per key.
 *   - ACL: a wrong token gets 403 "Permission denied". Allocation and Job need the namespace
 *     readable; `namespace=*` needs one readable namespace before 1.10.0 (and then streams
 *     every namespace, denied ones included), and every namespace from 1.10.0. Other topics,
 *     `*` included, need a management token: one without `namespacesDenied`.
 * A reader more than 64 MiB behind is cut, as Nomad cuts readers that fall out of the buffer.
 */

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { createCluster } from '../src/simulator/cluster.js';
import type { Cluster, SimJob } from '../src/simulator/model.js';
import type { SimulatorOptions } from '../src/simulator/options.js';
import { StateCursor, gcWindowUs, type AllocView, type ClusterState } from '../src/simulator/state.js';
import {
  allocStub,
  eventCountAt,
  eventIndexOf,
  eventItem,
  eventLine,
  fullAllocation,
  fullJob,
  jobStatusAt,
  jobStub,
  namespaceNames,
  namespaceObject,
  nomadIndex,
  serverIndexAt,
  toNomadJson,
  type JobStatusAt,
  type NomadIndex,
  type StreamEvent,
} from './nomad-model.js';
import { clampDelay, Faults, MAX_DELAY_MS, retryAfterHeader, sameToken, type FaultControl, type FaultSpec } from './faults.js';

export type { FaultControl, FaultSpec } from './faults.js';

export interface FakeNomadTls {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA that client certificates must chain to. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Refuse clients without a certificate signed by `ca` (Nomad's verify_https_client). */
  requireClientCert?: boolean;
}

export interface FakeNomadOptions {
  /** The simulated cluster to serve. Default: createCluster({ seed: 1, days: 2, ...simulator }). */
  cluster?: Cluster;
  /** Used only when `cluster` is absent. */
  simulator?: SimulatorOptions;
  /** Simulated instant served, µs since the epoch. Default: the first scheduled snapshot. */
  now?: number;
  /** When set, every ACL-checked request needs it in X-Nomad-Token or Authorization: Bearer. */
  token?: string;
  /** Reported Nomad version; gates features by the release that added them. Default 1.9.3. */
  version?: string;
  /** Terminal allocations stay listed this long. Default: the cluster's gcMinutes, else 60. */
  gcMinutes?: number;
  /** Dead jobs stay listed this long. Default: gcMinutes. 0 makes dead jobs vanish at once. */
  jobGcMinutes?: number;
  /** Server-side cap on page size (also applies when the client sends no per_page). */
  pageSizeLimit?: number;
  tls?: FakeNomadTls;
  /** Namespaces the token cannot read: 403 when asked for directly, left out of `*` and lists. */
  namespacesDenied?: string[];
  /** Delay before every response. */
  latencyMs?: number;
  /** Compress responses when the client sends Accept-Encoding: gzip, as Nomad does. Default false. */
  gzip?: boolean;
  /** Default 0 (ephemeral). */
  port?: number;
  /** How many requests the log keeps (oldest dropped first). Default 10000. */
  maxLoggedRequests?: number;
  /** Interval of the `{}` heartbeat on `/v1/event/stream`. Default 30000, as Nomad. */
  heartbeatMs?: number;
  /** Nomad's event_buffer_size: how many raft writes the event buffer keeps. Default 100. */
  eventBufferSize?: number;
}

export interface FakeNomadRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Request headers; token values are replaced by "[redacted]" (the auth scheme is kept). */
  headers: Record<string, string>;
  token: {
    present: boolean;
    via: 'x-nomad-token' | 'bearer' | null;
    /** Whether it equals the configured token; null when the server has none. */
    matches: boolean | null;
  };
  /** Whether the client presented a certificate the server verified (HTTPS only). */
  clientCert: boolean;
  /** Response status; null while pending or when the connection was reset. */
  status: number | null;
  fault: FaultSpec['kind'] | null;
  /** When the request arrived (ms since the epoch): how long a client waited between tries. */
  at: number;
}

export interface FakeNomad {
  readonly url: string;
  readonly port: number;
  readonly cluster: Cluster;
  readonly version: string;
  /** The simulated instant served (µs). */
  readonly now: number;
  /** Moves the served instant; moving forward publishes every change in between as events. */
  setNow(tUs: number): void;
  /** setNow(now + dUs). */
  advance(dUs: number): void;
  /** Open `/v1/event/stream` responses. */
  readonly openStreams: number;
  /** A server restart: open streams are cut and the event buffer is lost; serving goes on. */
  restart(): void;
  /** A network cut: open streams are cut, the buffer stays. Returns how many were cut. */
  dropStreams(): number;
  /** Open streams stay connected but receive nothing more, not even heartbeats. Returns how many. */
  silenceStreams(): number;
  /** Every request received, oldest first (bounded). Reset with `requests.length = 0`. */
  readonly requests: FakeNomadRequest[];
  readonly faults: FaultControl;
  close(): Promise<void>;
}

const LEADER = '127.0.0.1:4647';

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Reply {
  status: number;
  body: string;
  json: boolean;
  headers?: Record<string, string>;
}

function parseVersion(v: string): [number, number, number] {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v);
  if (!m) throw new RangeError(`version must look like 1.9.3, got "${v}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function atLeast(v: [number, number, number], major: number, minor: number, patch: number): boolean {
  if (v[0] !== major) return v[0] > major;
  if (v[1] !== minor) return v[1] > minor;
  return v[2] >= patch;
}

/** Go's strconv.ParseBool, which Nomad uses for query flags; "" means absent. */
function boolParam(q: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  throw new HttpError(400, `Failed to parse value of "${name}" (${raw}) as a bool: strconv.ParseBool: parsing "${raw}": invalid syntax`);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Page<T> {
  items: T[];
  nextToken: string | null;
}

/**
 * Nomad's paginator: start at the first item at or after `next_token` in iteration order,
 * return up to `perPage` items, and name the first item of the next page as the token.
 */
function paginate<T>(
  sorted: T[],
  perPage: number,
  token: string | null,
  reverse: boolean,
  compareToToken: (item: T, token: string) => number,
  tokenOf: (item: T) => string,
): Page<T> {
  const items = reverse ? [...sorted].reverse() : sorted;
  let start = 0;
  if (token !== null && token !== '') {
    start = items.findIndex((it) => {
      const c = compareToToken(it, token);
      return reverse ? c <= 0 : c >= 0;
    });
    if (start < 0) start = items.length;
  }
  if (!(perPage > 0) || !Number.isFinite(perPage)) return { items: items.slice(start), nextToken: null };
  const end = start + perPage;
  const next = items[end];
  return { items: items.slice(start, end), nextToken: next === undefined ? null : tokenOf(next) };
}

/** "<CreateIndex>.<ID>"; an unparsable token counts as index 0, as in Nomad's tokenizer. */
function compareAllocToToken(ix: NomadIndex, v: AllocView, token: string): number {
  const dot = token.indexOf('.');
  const idx = dot < 0 ? 0 : Number.parseInt(token.slice(0, dot), 10) || 0;
  const id = dot < 0 ? '' : token.slice(dot + 1);
  const own = ix.allocCreateIndex.get(v.alloc) ?? 0;
  return own !== idx ? (own < idx ? -1 : 1) : compareStrings(v.id, id);
}

/** "<Namespace>.<ID>": namespaces cannot contain dots, job ids can. */
function compareJobToToken(job: SimJob, token: string): number {
  const dot = token.indexOf('.');
  const ns = dot < 0 ? token : token.slice(0, dot);
  const id = dot < 0 ? '' : token.slice(dot + 1);
  return compareStrings(job.namespace, ns) || compareStrings(job.id, id);
}

function redactedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : value;
    if (name === 'x-nomad-token') out[name] = '[redacted]';
    else if (name === 'authorization') out[name] = `${text.split(/\s+/)[0] ?? ''} [redacted]`;
    else out[name] = text;
  }
  return out;
}

interface JobEntry {
  job: SimJob;
  st: JobStatusAt;
}

/** What the server shows at one instant, computed once and shared by every request at it. */
interface Snapshot {
  t: number;
  state: ClusterState;
  allocById: Map<string, AllocView>;
  /** Listed jobs sorted by (namespace, id), as Nomad iterates them. */
  jobs: JobEntry[];
  jobByKey: Map<string, JobEntry>;
}

export async function startFakeNomad(options: FakeNomadOptions = {}): Promise<FakeNomad> {
  const cluster = options.cluster ?? createCluster({ seed: 1, days: 2, ...options.simulator });
  const version = options.version ?? '1.9.3';
  const ver = parseVersion(version);
  // Features by the release that introduced them (see the API reference).
  const supportsResources = atLeast(ver, 1, 0, 0);
  const supportsPaging = atLeast(ver, 1, 3, 0);
  const supportsBearer = atLeast(ver, 1, 3, 2);
  const supportsListMeta = atLeast(ver, 1, 5, 0);

  const ix = nomadIndex(cluster);
  const gcUs = gcWindowUs(cluster, options.gcMinutes === undefined ? {} : { gcMinutes: options.gcMinutes });
  const jobGcMinutes = options.jobGcMinutes;
  if (jobGcMinutes !== undefined && !(jobGcMinutes >= 0)) throw new RangeError(`jobGcMinutes must be >= 0, got ${jobGcMinutes}`);
  const jobGcUs = jobGcMinutes === undefined ? gcUs : Math.round(jobGcMinutes * 60_000_000);
  const pageSizeLimit = options.pageSizeLimit;
  if (pageSizeLimit !== undefined && !(Number.isInteger(pageSizeLimit) && pageSizeLimit > 0)) {
    throw new RangeError(`pageSizeLimit must be a positive integer, got ${pageSizeLimit}`);
  }
  const latencyMs = clampDelay(options.latencyMs, 'latencyMs');
  const denied = new Set(options.namespacesDenied ?? []);
  const token = options.token;
  const maxLogged = Math.max(1, options.maxLoggedRequests ?? 10_000);

  let now = options.now ?? cluster.snapshots[0]?.timeUs ?? cluster.startUs;
  const checkNow = (t: number): void => {
    if (!Number.isSafeInteger(t)) throw new RangeError(`now must be an integer number of µs, got ${t}`);
  };
  checkNow(now);

  // A forward-only cursor makes sweeps over increasing instants cheap; going back restarts it.
  let cursor = new StateCursor(cluster, gcUs);
  let cursorT = -Infinity;
  let snap: Snapshot | null = null;

  // Jobs are registered in time order; each job's last terminal instant bounds its GC.
  const jobsBySubmit = [...cluster.jobs].sort((a, b) => a.submitUs - b.submitUs);
  const lastTerminal = new Map<SimJob, number>();
  for (const job of cluster.jobs) lastTerminal.set(job, Math.max(...job.allocs.map((a) => a.terminalUs)));

  function snapshotAt(t: number): Snapshot {
    if (snap && snap.t === t) return snap;
    if (t < cursorT) cursor = new StateCursor(cluster, gcUs);
    cursorT = t;
    const state = cursor.at(t);
    const allocById = new Map(state.allocations.map((v) => [v.id, v]));
    const jobs: JobEntry[] = [];
    for (const job of jobsBySubmit) {
      if (job.submitUs > t) break;
      // Cheap skip for jobs long gone: every allocation terminal and past the job GC window.
      if ((lastTerminal.get(job) ?? Infinity) + jobGcUs <= t) continue;
      const st = jobStatusAt(job, t);
      if (st.status === 'dead' && (st.deadSinceUs ?? t) + jobGcUs <= t) continue;
      jobs.push({ job, st });
    }
    jobs.sort((a, b) => compareStrings(a.job.namespace, b.job.namespace) || compareStrings(a.job.id, b.job.id));
    const jobByKey = new Map(jobs.map((e) => [`${e.job.namespace}\u0000${e.job.id}`, e]));
    snap = { t, state, allocById, jobs, jobByKey };
    return snap;
  }

  // ---- Event stream -------------------------------------------------------------------
  // The buffer is a window over the change instants (one item per raft write): items
  // [bufferStart(), published) of the model's list. A running server has been publishing all
  // along, so it starts full; restart() empties it.
  const heartbeatMs = options.heartbeatMs ?? 30_000;
  if (!(Number.isInteger(heartbeatMs) && heartbeatMs > 0)) throw new RangeError(`heartbeatMs must be a positive integer, got ${heartbeatMs}`);
  const bufferSize = options.eventBufferSize ?? 100;
  if (!(Number.isInteger(bufferSize) && bufferSize > 0)) throw new RangeError(`eventBufferSize must be a positive integer, got ${bufferSize}`);
  // Nomad 1.10 fixed the wildcard bypass: `namespace=*` needs every namespace readable.
  const wildcardNeedsEveryNamespace = atLeast(ver, 1, 10, 0);
  // Counted on first use, so that a server nobody streams from never builds the change list.
  let publishedCount: number | null = null;
  let restartedAt = 0;
  function publishedNow(): number {
    publishedCount ??= eventCountAt(ix, now);
    return publishedCount;
  }

  /**
   * Nomad's buffer drops its empty sentinel head first, so once it has overflowed it holds
   * eventBufferSize + 1 items (nomad/stream/event_buffer.go, appendItem/advanceHead).
   */
  function bufferStart(): number {
    const published = publishedNow();
    const held = published - restartedAt;
    return held > bufferSize ? published - (bufferSize + 1) : restartedAt;
  }

  interface CachedItem {
    index: number;
    events: { event: StreamEvent; json: string }[];
  }
  const itemCache = new Map<number, CachedItem>();
  function itemAt(pos: number): CachedItem {
    let item = itemCache.get(pos);
    if (!item) {
      const built = eventItem(ix, pos);
      item = { index: built.index, events: built.events.map((event) => ({ event, json: eventLine(built.index, [event]) })) };
      itemCache.set(pos, item);
      // Bounded: enough for every subscriber reading the buffer at once.
      if (itemCache.size > 4 * (bufferSize + 1) + 64) itemCache.delete(itemCache.keys().next().value as number);
    }
    return item;
  }

  interface Stream {
    res: ServerResponse;
    nextPos: number;
    silent: boolean;
    timer: NodeJS.Timeout;
    /** How many times Nomad's filter appends the event (0: left out). */
    copies: (e: StreamEvent) => number;
  }
  const streams = new Set<Stream>();
  /** A reader this far behind is cut, as Nomad cuts readers whose next item left the buffer. */
  const MAX_STREAM_BACKLOG = 64 * 1024 * 1024;

  function cutStream(st: Stream): void {
    clearInterval(st.timer);
    streams.delete(st);
    st.res.destroy();
  }

  function deliver(st: Stream): void {
    const published = publishedNow();
    while (st.nextPos < published && streams.has(st)) {
      const item = itemAt(st.nextPos++);
      const parts: string[] = [];
      for (const { event, json } of item.events) {
        const n = st.copies(event);
        // The event's own JSON sits inside its one-event line: `{"Events":[...],"Index":N}`.
        const inner = json.slice('{"Events":['.length, json.lastIndexOf('],"Index":'));
        for (let k = 0; k < n; k++) parts.push(inner);
      }
      if (parts.length > 0) st.res.write(`{"Events":[${parts.join(',')}],"Index":${item.index}}\n`);
      if (st.res.writableLength > MAX_STREAM_BACKLOG) cutStream(st);
    }
  }

  function publishTo(t: number): void {
    if (publishedCount === null) return;
    const count = eventCountAt(ix, t);
    if (count < publishedCount) {
      // Going back in time is another history: as after a restart, nothing is buffered.
      for (const st of [...streams]) cutStream(st);
      itemCache.clear();
      publishedCount = count;
      restartedAt = count;
      return;
    }
    publishedCount = count;
    for (const st of [...streams]) if (!st.silent) deliver(st);
  }

  const STREAM_TOPICS_IN_NAMESPACES = new Set(['Deployment', 'Evaluation', 'Allocation', 'Job', 'Service']);

  /** command/agent/event_endpoint.go: parseEventTopics / parseTopic. */
  function parseTopics(q: URLSearchParams): Map<string, string[]> {
    const raw = q.getAll('topic');
    const topics = new Map<string, string[]>();
    if (raw.length === 0) return new Map([['*', ['*']]]);
    for (const topic of raw) {
      const parts = topic.split(':');
      if (parts.length > 2) throw new HttpError(400, `Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: ${topic}`);
      const [name, key] = parts.length === 1 ? [topic, '*'] : [parts[0] as string, parts[1] as string];
      topics.set(name, [...(topics.get(name) ?? []), key]);
    }
    return topics;
  }

  /** nomad/stream/subscription.go: filter, including its quirk of adding an event once per matching key. */
  function topicFilter(namespace: string, topics: Map<string, string[]>): (e: StreamEvent) => number {
    const allKeys = topics.get('*') ?? [];
    return (e) => {
      if (namespace !== '*' && e.Namespace !== '' && e.Namespace !== namespace) return 0;
      if (allKeys.length === 1 && allKeys[0] === '*') return 1;
      const keys = [...allKeys, ...(topics.get(e.Topic) ?? [])];
      if (keys.length === 1 && keys[0] === '*') return 1;
      let n = 0;
      for (const key of keys) if (e.Key === key || (e.FilterKeys ?? []).includes(key)) n++;
      return n;
    };
  }

  /** Validates a stream request as Nomad does (parameters, then token, then ACL) and opens it. */
  function openStream(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, authorized: boolean, rec: FakeNomadRequest): void {
    if (req.method !== 'GET') throw new HttpError(405, 'Invalid method');
    const rawIndex = q.get('index') || '0';
    if (!/^[+-]?\d+$/.test(rawIndex)) throw new HttpError(400, `Unable to parse index: strconv.Atoi: parsing "${rawIndex}": invalid syntax`);
    // A negative index wraps to a huge uint64 in Nomad: past every item.
    const index = Number(rawIndex) < 0 ? Infinity : Number(rawIndex);
    const topics = parseTopics(q);
    const region = q.get('region');
    if (region && region !== 'global') throw new HttpError(500, 'No path to region');
    if (!authorized) throw new HttpError(403, 'Permission denied');
    const namespace = namespaceParam(q);
    const names = namespaceNames(cluster);
    const readable = (ns: string): boolean => !denied.has(ns);
    for (const topic of topics.keys()) {
      let ok: boolean;
      if (STREAM_TOPICS_IN_NAMESPACES.has(topic)) {
        if (namespace !== '*') ok = readable(namespace);
        else ok = wildcardNeedsEveryNamespace ? names.every(readable) : names.some(readable);
      } else {
        // Every other topic, `*` included, needs a management token: one with no denied namespace.
        ok = denied.size === 0;
      }
      if (!ok) throw new HttpError(403, 'Permission denied');
    }

    // nomad/stream/event_buffer.go StartAtClosest: the item at the index, else the first
    // after it (silently, when the index left the buffer), else the newest item again.
    const lo = bufferStart();
    const published = publishedNow();
    let start = lo;
    if (index !== 0) {
      start = published;
      for (let p = lo; p < published; p++) {
        if (eventIndexOf(ix, p) >= index) {
          start = p;
          break;
        }
      }
      if (start === published && published > lo) start = published - 1;
    }

    rec.status = 200;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache', Date: httpDate(now) });
    const st: Stream = {
      res,
      nextPos: start,
      silent: false,
      copies: topicFilter(namespace, topics),
      timer: setInterval(() => {
        if (!st.silent) res.write('{}\n');
      }, heartbeatMs),
    };
    streams.add(st);
    res.on('close', () => {
      clearInterval(st.timer);
      streams.delete(st);
    });
    // Nomad greets every new stream with a heartbeat.
    res.write('{}\n');
    deliver(st);
  }

  const faults = new Faults();
  const requests: FakeNomadRequest[] = [];
  const waiting = new Set<() => void>();
  let closed = false;

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiting.add(done);
    });
  }

  function json(body: string, extra?: Record<string, string>): Reply {
    return {
      status: 200,
      body,
      json: true,
      headers: { 'X-Nomad-Index': String(serverIndexAt(ix, now)), 'X-Nomad-KnownLeader': 'true', 'X-Nomad-LastContact': '0', ...extra },
    };
  }

  function namespaceParam(q: URLSearchParams): string {
    const ns = q.get('namespace');
    return ns === null || ns === '' ? 'default' : ns;
  }

  function requireNamespace(ns: string): void {
    if (denied.has(ns)) throw new HttpError(403, 'Permission denied');
  }

  /** Namespace selection for list endpoints: `*` means every readable namespace. */
  function namespaceFilter(q: URLSearchParams): (ns: string) => boolean {
    const ns = namespaceParam(q);
    if (ns === '*') return (n) => !denied.has(n);
    requireNamespace(ns);
    return (n) => n === ns;
  }

  function perPageOf(q: URLSearchParams): number {
    if (!supportsPaging) return 0;
    const raw = q.get('per_page');
    // Nomad ignores a per_page it cannot parse.
    let n = raw !== null && /^\d+$/.test(raw) ? Number(raw) : 0;
    if (pageSizeLimit !== undefined && (n === 0 || n > pageSizeLimit)) n = pageSizeLimit;
    return n;
  }

  function pagingHeaders(next: string | null): Record<string, string> {
    return next === null ? {} : { 'X-Nomad-NextToken': next };
  }

  function rejectFilter(q: URLSearchParams): void {
    // Silently ignoring a filter would hand back the wrong rows.
    if (q.get('filter')) throw new HttpError(400, 'the fake Nomad server does not evaluate filter expressions');
  }

  function listAllocations(q: URLSearchParams): Reply {
    rejectFilter(q);
    const inScope = namespaceFilter(q);
    const withResources = supportsResources && boolParam(q, 'resources', false);
    const withTaskStates = boolParam(q, 'task_states', true);
    const reverse = supportsPaging && boolParam(q, 'reverse', false);
    const prefix = q.get('prefix') ?? '';
    const s = snapshotAt(now);
    const views = s.state.allocations.filter((v) => inScope(v.namespace) && v.id.startsWith(prefix));
    const page = paginate(
      views,
      perPageOf(q),
      supportsPaging ? q.get('next_token') : null,
      reverse,
      (v, tok) => compareAllocToToken(ix, v, tok),
      (v) => `${ix.allocCreateIndex.get(v.alloc) ?? 0}.${v.id}`,
    );
    const stubs = page.items.map((v) => allocStub(ix, v, now, { resources: withResources, taskStates: withTaskStates }));
    return json(toNomadJson(stubs), pagingHeaders(page.nextToken));
  }

  function listJobs(q: URLSearchParams): Reply {
    rejectFilter(q);
    const inScope = namespaceFilter(q);
    const withMeta = supportsListMeta && boolParam(q, 'meta', false);
    const reverse = supportsPaging && boolParam(q, 'reverse', false);
    const prefix = q.get('prefix') ?? '';
    const s = snapshotAt(now);
    const entries = s.jobs.filter((e) => inScope(e.job.namespace) && e.job.id.startsWith(prefix));
    const page = paginate(
      entries,
      perPageOf(q),
      supportsPaging ? q.get('next_token') : null,
      reverse,
      (e, tok) => compareJobToToken(e.job, tok),
      (e) => `${e.job.namespace}.${e.job.id}`,
    );
    return json(toNomadJson(page.items.map((e) => jobStub(ix, e.job, e.st, withMeta))), pagingHeaders(page.nextToken));
  }

  function readJob(id: string, q: URLSearchParams): Reply {
    const ns = namespaceParam(q);
    requireNamespace(ns);
    const entry = snapshotAt(now).jobByKey.get(`${ns}\u0000${id}`);
    if (!entry) throw new HttpError(404, 'job not found');
    return json(toNomadJson(fullJob(ix, entry.job, now)));
  }

  /** `/v1/job/:id/allocations`: what a client that walks jobs one by one asks for. */
  function jobAllocations(id: string, q: URLSearchParams): Reply {
    const ns = namespaceParam(q);
    requireNamespace(ns);
    const s = snapshotAt(now);
    if (!s.jobByKey.has(`${ns}\u0000${id}`)) throw new HttpError(404, 'job not found');
    const views = s.state.allocations.filter((v) => v.namespace === ns && v.jobId === id);
    return json(toNomadJson(views.map((v) => allocStub(ix, v, now, { resources: false, taskStates: true }))));
  }

  function readAllocation(id: string): Reply {
    const v = snapshotAt(now).allocById.get(id);
    if (!v) throw new HttpError(404, 'alloc not found');
    // The ACL check needs the allocation's namespace, so it comes after the lookup.
    requireNamespace(v.namespace);
    return json(toNomadJson(fullAllocation(ix, v, now)));
  }

  function listNamespaces(q: URLSearchParams): Reply {
    const prefix = q.get('prefix') ?? '';
    const names = namespaceNames(cluster).filter((n) => !denied.has(n) && n.startsWith(prefix));
    return json(toNomadJson(names.map((n) => namespaceObject(cluster, n))));
  }

  function readNamespace(name: string): Reply {
    if (denied.has(name)) throw new HttpError(403, 'Permission denied');
    if (!namespaceNames(cluster).includes(name)) throw new HttpError(404, 'namespace not found');
    return json(toNomadJson(namespaceObject(cluster, name)));
  }

  function agentSelf(): Reply {
    return json(
      JSON.stringify({
        config: {
          Datacenter: 'dc1',
          Region: 'global',
          Version: { Revision: 'fake', Version: version.replace(/^v/, '').replace(/[-+].*$/, ''), VersionMetadata: '', VersionPrerelease: '' },
        },
        member: { Addr: '127.0.0.1', Name: 'fake-nomad.global', Port: 4648, Status: 'alive', Tags: { build: version, region: 'global', role: 'nomad' } },
        stats: {},
      }),
    );
  }

  /** Routes one request; throws HttpError for error replies. */
  function route(req: IncomingMessage, url: URL, authorized: boolean): Reply {
    if (req.method !== 'GET') throw new HttpError(405, 'Invalid method');
    const path = url.pathname;
    const q = url.searchParams;
    const region = q.get('region');
    if (region && region !== 'global') throw new HttpError(500, 'No path to region');

    // Endpoints Nomad serves without an ACL check.
    if (path === '/v1/status/leader') return json(JSON.stringify(LEADER));
    if (path === '/v1/status/peers') return json(JSON.stringify([LEADER]));
    if (path === '/v1/regions') return json(JSON.stringify(['global']));
    if (path === '/v1/agent/health') return json(JSON.stringify({ client: { message: 'ok', ok: true }, server: { message: 'ok', ok: true } }));

    const known =
      path === '/v1/allocations' ||
      path === '/v1/jobs' ||
      path === '/v1/namespaces' ||
      path === '/v1/agent/self' ||
      path.startsWith('/v1/job/') ||
      path.startsWith('/v1/allocation/') ||
      path.startsWith('/v1/namespace/');
    if (!known) throw new HttpError(404, '404 page not found');
    if (!authorized) throw new HttpError(403, 'Permission denied');

    if (path === '/v1/allocations') return listAllocations(q);
    if (path === '/v1/jobs') return listJobs(q);
    if (path === '/v1/namespaces') return listNamespaces(q);
    if (path === '/v1/agent/self') return agentSelf();
    const rest = (prefix: string): string => decodeURIComponent(path.slice(prefix.length));
    if (path.startsWith('/v1/job/') && path.endsWith('/allocations')) return jobAllocations(decodeURIComponent(path.slice('/v1/job/'.length, -'/allocations'.length)), q);
    if (path.startsWith('/v1/job/')) return readJob(rest('/v1/job/'), q);
    if (path.startsWith('/v1/namespace/')) return readNamespace(rest('/v1/namespace/'));
    const allocId = rest('/v1/allocation/');
    if (allocId === '' || allocId.includes('/')) throw new HttpError(404, '404 page not found');
    return readAllocation(allocId);
  }

  function send(req: IncomingMessage, res: ServerResponse, reply: Reply, truncate: boolean, rec: FakeNomadRequest): void {
    if (res.destroyed || req.socket.destroyed) return;
    let body = Buffer.from(reply.body, 'utf8');
    const headers: Record<string, string | number> = {
      'Content-Type': reply.json ? 'application/json' : 'text/plain; charset=utf-8',
      ...reply.headers,
    };
    const accept = req.headers['accept-encoding'];
    if (options.gzip && typeof accept === 'string' && /\bgzip\b/.test(accept)) {
      body = gzipSync(body);
      headers['Content-Encoding'] = 'gzip';
      headers.Vary = 'Accept-Encoding';
    }
    headers['Content-Length'] = body.length;
    // The server's clock is the simulated one, as a real server's Date is its own clock.
    headers.Date = httpDate(now);
    rec.status = reply.status;
    res.writeHead(reply.status, headers);
    if (truncate) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
    } else {
      res.end(body);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const tls = (req.socket as Partial<TLSSocket>).encrypted === true;
    const headerToken = req.headers['x-nomad-token'];
    const auth = req.headers.authorization;
    let given: string | null = null;
    let via: FakeNomadRequest['token']['via'] = null;
    if (typeof headerToken === 'string' && headerToken !== '') {
      given = headerToken;
      via = 'x-nomad-token';
    } else if (supportsBearer && typeof auth === 'string' && /^Bearer\s+\S/i.test(auth)) {
      given = auth.replace(/^Bearer\s+/i, '').trim();
      via = 'bearer';
    }
    const matches = token === undefined ? null : given !== null && sameToken(given, token);
    const rec: FakeNomadRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: redactedHeaders(req),
      token: { present: given !== null, via, matches },
      clientCert: tls && (req.socket as TLSSocket).authorized === true,
      status: null,
      fault: null,
      at: Date.now(),
    };
    requests.push(rec);
    if (requests.length > maxLogged) requests.splice(0, requests.length - maxLogged);

    const fault = faults.take(url.pathname);
    rec.fault = fault?.kind ?? null;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    const delay = latencyMs + (fault?.kind === 'slow' ? clampDelay(fault.ms, 'slow fault ms') : 0) + (fault?.kind === 'hang' ? MAX_DELAY_MS : 0);
    if (delay > 0) await sleep(delay);
    if (closed || fault?.kind === 'hang') return;

    if (url.pathname === '/v1/event/stream' && (fault === undefined || fault === null || fault.kind === 'slow')) {
      try {
        openStream(req, res, url.searchParams, token === undefined || matches === true, rec);
        return;
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        send(req, res, { status: err.status, body: err.message, json: false }, false, rec);
        return;
      }
    }

    let reply: Reply;
    if (fault?.kind === 'status') {
      reply = { status: fault.status, body: fault.body ?? `injected fault: HTTP ${fault.status}`, json: false, headers: retryAfterHeader(fault) };
    } else if (fault?.kind === 'body') {
      reply = { status: 200, body: fault.body, json: true, headers: { ...(fault.contentType ? { 'Content-Type': fault.contentType } : {}), ...fault.headers } };
    } else {
      try {
        reply = route(req, url, token === undefined || matches === true);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        reply = { status: err.status, body: err.message, json: false };
      }
      const given = url.searchParams.get('next_token');
      if (fault?.kind === 'repeat-token' && given) reply.headers = { ...reply.headers, 'X-Nomad-NextToken': given };
    }
    send(req, res, reply, fault?.kind === 'truncate', rec);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    // Drain any request body; only GETs are served.
    req.resume();
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(err instanceof Error ? err.message : String(err));
    });
  };

  const tlsOptions = options.tls;
  const server: Server = tlsOptions
    ? createHttpsServer(
        {
          key: tlsOptions.key,
          cert: tlsOptions.cert,
          ...(tlsOptions.ca === undefined ? {} : { ca: tlsOptions.ca }),
          requestCert: tlsOptions.requireClientCert === true,
          rejectUnauthorized: tlsOptions.requireClientCert === true,
        },
        handler,
      )
    : createHttpServer(handler);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  function setNow(tUs: number): void {
    checkNow(tUs);
    now = tUs;
    publishTo(tUs);
  }
  const url = `${tlsOptions ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url,
    port,
    cluster,
    version,
    get now() {
      return now;
    },
    setNow,
    advance(dUs: number): void {
      setNow(now + dUs);
    },
    get openStreams() {
      return streams.size;
    },
    restart(): void {
      for (const st of [...streams]) cutStream(st);
      restartedAt = publishedNow();
    },
    dropStreams(): number {
      const open = [...streams];
      for (const st of open) cutStream(st);
      return open.length;
    },
    silenceStreams(): number {
      for (const st of streams) st.silent = true;
      return streams.size;
    },
    requests,
    faults,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const st of [...streams]) cutStream(st);
      for (const wake of [...waiting]) wake();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** An HTTP date (RFC 9110, whole seconds) of a simulated instant in µs. */
function httpDate(us: number): string {
  return new Date(Math.floor(us / 1000)).toUTCString();
}
