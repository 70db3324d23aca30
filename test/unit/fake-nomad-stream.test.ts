import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeNomad, type FakeNomad, type FakeNomadOptions } from '../../fake/nomad-server.js';
import { createCluster, rfc3339Nano, unixNanos, viewAt, type SimAlloc } from '../../src/simulator/index.js';

const MIN = 60_000_000;

// Busy enough to have restarts, reschedules, lost and unknown allocations.
const cluster = createCluster({
  seed: 1,
  days: 3,
  disconnectsPerWeek: 20,
  reconnectProbability: 0.5,
  restartFraction: 0.3,
  rescheduleFraction: 0.2,
  targetConcurrent: 30,
});
const next = new Map<SimAlloc, SimAlloc>();
for (const a of cluster.allocations) if (a.previous) next.set(a.previous, a);

/** The instants the server records a change of `a`, worked out from the simulator's fields. */
function changeInstants(a: SimAlloc): number[] {
  const out = [a.createUs];
  if (a.startUs !== null) out.push(a.startUs);
  for (const r of a.restarts) out.push(r.atUs, r.startedUs);
  for (const u of a.unknown) {
    out.push(u.fromUs);
    if (!(a.finalStatus === 'lost' && u.toUs === a.terminalUs)) out.push(u.toUs);
  }
  out.push(a.terminalUs);
  const n = next.get(a);
  if (n) out.push(n.createUs);
  return [...new Set(out)].sort((x, y) => x - y);
}

interface Expected {
  us: number;
  alloc: SimAlloc;
}
/** Every allocation change in (t0, t1], in stream order: by instant, then creation order. */
function expectedAllocChanges(t0: number, t1: number, keep: (a: SimAlloc) => boolean = () => true): Expected[] {
  const out: Expected[] = [];
  for (const alloc of cluster.allocations) {
    if (!keep(alloc)) continue;
    for (const us of changeInstants(alloc)) if (us > t0 && us <= t1) out.push({ us, alloc });
  }
  // cluster.allocations is in creation order, and the sort is stable.
  return out.sort((x, y) => x.us - y.us);
}

const servers: FakeNomad[] = [];
async function start(options: FakeNomadOptions = {}): Promise<FakeNomad> {
  const s = await startFakeNomad({ cluster, ...options });
  servers.push(s);
  return s;
}
const readers: StreamReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) r.stop();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Nanosecond integers as strings, so they read back exactly. */
function parseLine(line: string): any {
  return JSON.parse(line.replace(/"(CreateTime|ModifyTime|SubmitTime|Time|RescheduleTime)":(-?\d{16,})/g, '"$1":"$2"'));
}

/** Reads a stream with a real HTTP client and keeps every NDJSON line. */
class StreamReader {
  readonly lines: string[] = [];
  status = 0;
  body = '';
  ended = false;
  private buffered = '';
  private readonly req;
  private readonly opened: Promise<void>;
  constructor(server: FakeNomad, query: string, headers: Record<string, string> = {}) {
    let resolveOpened!: () => void;
    this.opened = new Promise((r) => (resolveOpened = r));
    this.req = request(`${server.url}/v1/event/stream${query}`, { headers, agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (this.status !== 200) {
          this.body += chunk;
          return;
        }
        this.buffered += chunk;
        let nl = this.buffered.indexOf('\n');
        while (nl >= 0) {
          this.lines.push(this.buffered.slice(0, nl));
          this.buffered = this.buffered.slice(nl + 1);
          nl = this.buffered.indexOf('\n');
        }
      });
      const end = (): void => {
        this.ended = true;
      };
      res.on('end', end);
      res.on('aborted', end);
      res.on('error', end);
      res.on('close', end);
      resolveOpened();
    });
    this.req.on('error', () => {
      this.ended = true;
      resolveOpened();
    });
    this.req.end();
    readers.push(this);
  }
  /** Resolves once the response has started and `lines` holds at least `n` lines. */
  async waitLines(n: number): Promise<string[]> {
    await this.opened;
    await until(() => this.lines.length >= n || this.ended);
    return this.lines;
  }
  async waitEnded(): Promise<void> {
    await until(() => this.ended);
  }
  events(): any[] {
    return this.lines.filter((l) => l !== '{}').map(parseLine);
  }
  stop(): void {
    this.req.destroy();
  }
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error('timed out waiting for the stream');
}

async function getJson(server: FakeNomad, path: string): Promise<{ index: number; body: any; text: string }> {
  const res = await fetch(server.url + path);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return { index: Number(res.headers.get('x-nomad-index')), body: parseLine(text), text };
}

/** A twelve-hour window with a few dozen changes. */
const T0 = cluster.startUs + 6 * 60 * MIN;
const T1 = T0 + 12 * 60 * MIN;

describe('fake Nomad event stream', () => {
  it('sends a heartbeat on connecting, then one every heartbeatMs and nothing else while the clock stands', async () => {
    const server = await start({ now: T0, heartbeatMs: 30 });
    server.restart();
    const r = new StreamReader(server, '?topic=Allocation&namespace=*');
    const lines = await r.waitLines(4);
    expect(r.status).toBe(200);
    expect(lines.slice(0, 4)).toEqual(['{}', '{}', '{}', '{}']);

    // With the default interval only the greeting arrives before the first event.
    const slow = await start({ now: T0 });
    const s = new StreamReader(slow, '?topic=Allocation&namespace=*&index=999999999');
    await s.waitLines(1);
    slow.setNow(T1);
    await s.waitLines(2);
    expect(s.lines[0]).toBe('{}');
    expect(s.lines.filter((l) => l === '{}')).toHaveLength(1);
  });

  it('turns every allocation change between two instants into an event, with the payload the server shows at that instant', async () => {
    // The whole simulated history, in one step and then in small steps.
    const from = cluster.startUs;
    const to = cluster.horizonUs;
    const server = await start({ now: from });
    const at = await start({ now: from });
    const listed = await getJson(server, '/v1/allocations?namespace=*');
    // An empty buffer, so that nothing older comes first.
    server.restart();
    const r = new StreamReader(server, `?topic=Allocation&namespace=*&index=${listed.index}`);
    await r.waitLines(1);
    server.setNow(to);
    const stepped = await start({ now: from });
    stepped.restart();
    const s = new StreamReader(stepped, '?topic=Allocation&namespace=*');
    await s.waitLines(1);
    for (let t = from; t < to; t += 7 * MIN) stepped.advance(Math.min(7 * MIN, to - t));

    const expected = expectedAllocChanges(from, to);
    const instants = new Set(expected.map((e) => e.us));
    expect(expected.length).toBeGreaterThan(10);
    await r.waitLines(1 + instants.size);
    const lines = r.events();
    expect(lines).toHaveLength(instants.size);
    expect(lines[0].Index).toBeGreaterThan(listed.index);
    const got = lines.flatMap((l) => l.Events.map((e: any) => ({ line: l.Index, ...e })));
    expect(got.map((e) => e.Key)).toEqual(expected.map((e) => e.alloc.id));

    // Index lines ascend, and the events of one instant share one line.
    const lineIndexes = lines.map((l) => l.Index as number);
    expect([...lineIndexes].sort((x, y) => x - y)).toEqual(lineIndexes);
    expect(new Set(lineIndexes).size).toBe(instants.size);

    await s.waitLines(1 + instants.size);
    expect(s.lines).toEqual(r.lines);

    // Every kind of change is there.
    const statuses = got.map((e) => e.Payload.Allocation.ClientStatus);
    for (const status of ['pending', 'running', 'complete', 'failed', 'lost', 'unknown']) expect(statuses).toContain(status);
    expect(got.some((e) => e.Payload.Allocation.TaskStates.main.Restarts > 0)).toBe(true);
    expect(got.some((e) => e.Payload.Allocation.NextAllocation && e.Payload.Allocation.DesiredStatus === 'stop')).toBe(true);

    for (const [k, e] of expected.entries()) {
      const ev = got[k];
      const v = viewAt(e.alloc, e.us);
      expect(ev.Topic).toBe('Allocation');
      expect(ev.Namespace).toBe(e.alloc.job.namespace);
      expect(ev.FilterKeys[0]).toBe(e.alloc.job.id);
      expect(ev.Index).toBe(ev.line);
      const alloc = ev.Payload.Allocation;
      expect(alloc.Job).toBeUndefined();
      expect(alloc.ClientStatus).toBe(v.status);
      expect(alloc.ModifyTime).toBe(unixNanos(v.modifyUs));
      expect(alloc.TaskStates.main.StartedAt).toBe(v.startedAtUs === null ? null : rfc3339Nano(v.startedAtUs));
      expect(alloc.TaskStates.main.Restarts).toBe(v.restarts);
      expect(ev.Type).toBe(e.us === e.alloc.createUs || e.us === next.get(e.alloc)?.createUs || (v.status === 'lost' && e.us === e.alloc.terminalUs) || e.alloc.unknown.some((u) => u.fromUs === e.us) ? 'PlanResult' : 'AllocationUpdated');

      // The same allocation read at that instant: ModifyIndex is the event's index and the
      // server's index is just above it.
      at.setNow(e.us);
      const read = await getJson(at, `/v1/allocation/${e.alloc.id}`);
      delete read.body.Job;
      expect(alloc).toEqual(read.body);
      expect(alloc.ModifyIndex).toBe(ev.Index);
      expect(read.index).toBe(ev.Index + 1);
    }
  });

  it('publishes both the start and the end of an allocation that lives between two instants', async () => {
    const short = cluster.allocations.find(
      (a) => a.startUs !== null && a.finalStatus === 'complete' && a.restarts.length === 0 && a.unknown.length === 0 && !next.has(a) && a.terminalUs - a.createUs < 20 * MIN,
    );
    expect(short).toBeDefined();
    const a = short!;
    const server = await start({ now: a.createUs - 1 });
    server.restart();
    const r = new StreamReader(server, `?topic=Allocation:${a.job.id}&namespace=*`);
    await r.waitLines(1);
    server.setNow(a.terminalUs + 1);
    const ofAlloc = (): any[] => r.events().flatMap((l) => l.Events).filter((e: any) => e.Key === a.id);
    await until(() => ofAlloc().length >= 3);
    const events = ofAlloc();
    expect(events.map((e: any) => [e.Type, e.Payload.Allocation.ClientStatus, e.Payload.Allocation.ModifyTime])).toEqual([
      ['PlanResult', 'pending', unixNanos(a.createUs)],
      ['AllocationUpdated', 'running', unixNanos(a.startUs!)],
      ['AllocationUpdated', 'complete', unixNanos(a.terminalUs)],
    ]);
    const last = events[2].Payload.Allocation.TaskStates.main;
    expect([last.State, last.StartedAt, last.FinishedAt]).toEqual(['dead', rfc3339Nano(a.startUs!), rfc3339Nano(a.endUs!)]);
  });

  it('publishes job registrations and status changes with the job and its Meta', async () => {
    const job = cluster.jobs.find((j) => j.submitUs > T0 && j.allocs.length > 0 && j.allocs[0]!.createUs < j.allocs[0]!.terminalUs && j.allocs[0]!.terminalUs < T0 + 12 * 60 * MIN);
    expect(job).toBeDefined();
    const j = job!;
    const server = await start({ now: j.submitUs - 1 });
    server.restart();
    const r = new StreamReader(server, `?topic=Job:${j.id}&namespace=${j.namespace}`);
    // What a watcher asks for: both topics, every namespace.
    const both = new StreamReader(server, `?topic=Allocation&topic=Job&namespace=*`);
    await Promise.all([r.waitLines(1), both.waitLines(1)]);
    server.setNow(j.submitUs);
    server.setNow(j.allocs[0]!.createUs);
    await r.waitLines(3);
    await both.waitLines(3);
    const placement = both.events().find((l) => l.Events.some((e: any) => e.Key === j.allocs[0]!.id));
    // The placement and the job's new status are one write: one line, one index.
    expect(placement.Events.map((e: any) => [e.Topic, e.Type, e.Key, e.Index])).toEqual([
      ['Allocation', 'PlanResult', j.allocs[0]!.id, placement.Index],
      ['Job', 'PlanResult', j.id, placement.Index],
    ]);
    const [registered, placed] = r.events().flatMap((l) => l.Events);
    expect([registered.Topic, registered.Type, registered.Key, registered.Namespace, registered.FilterKeys]).toEqual(['Job', 'JobRegistered', j.id, j.namespace, null]);
    expect(registered.Payload.Job.Meta).toEqual({ description: j.description, owner: j.user.id, owner_email: j.user.email, owner_name: j.user.name, title: j.title });
    expect(registered.Payload.Job.SubmitTime).toBe(unixNanos(j.submitUs));
    expect(registered.Payload.Job.Status).toBe('pending');
    expect([placed.Type, placed.Payload.Job.Status]).toEqual(['PlanResult', 'running']);
    const listed = await getJson(server, `/v1/job/${j.id}?namespace=${j.namespace}`);
    expect(placed.Payload.Job.ModifyIndex).toBe(listed.body.ModifyIndex);
    expect(placed.Index).toBe(listed.index - 1);
  });

  it('resumes exactly from an index still in the buffer', async () => {
    const server = await start({ now: T0 });
    server.restart();
    const first = new StreamReader(server, '?topic=Allocation&namespace=*');
    await first.waitLines(1);
    server.setNow(T1);
    const n = new Set(expectedAllocChanges(T0, T1).map((e) => e.us)).size;
    await first.waitLines(1 + n);
    const resumeFrom = first.events()[3].Index as number;
    const again = new StreamReader(server, `?topic=Allocation&namespace=*&index=${resumeFrom}`);
    await again.waitLines(1 + n - 3);
    expect(again.lines).toEqual(['{}', ...first.lines.slice(4)]);
  });

  it('starts silently at the oldest buffered item when the index has left the buffer, and holds eventBufferSize + 1 items', async () => {
    const full = await start({ now: T0 });
    const listed = await getJson(full, '/v1/jobs?namespace=*');
    // Asked for an index past every item, Nomad sends the newest item again first.
    const all = new StreamReader(full, `?topic=*&namespace=*&index=${listed.index}`);
    await all.waitLines(2);
    const tail = parseLine(all.lines[1]!);
    expect(tail.Index).toBe(listed.index - 1);
    expect(tail.Events.every((e: any) => e.Index === tail.Index)).toBe(true);
    full.setNow(T1);
    const items = new Set([...expectedAllocChanges(T0, T1).map((e) => e.us), ...cluster.jobs.map((j) => j.submitUs).filter((t) => t > T0 && t <= T1)]).size;
    expect(items).toBeGreaterThan(8);
    await all.waitLines(2 + items);
    const lines = all.lines.slice(2);
    expect(lines).toHaveLength(items);

    const small = await start({ now: T1, eventBufferSize: 5 });
    const oldIndex = parseLine(lines[0]!).Index as number;
    const resumed = new StreamReader(small, `?topic=*&namespace=*&index=${oldIndex}`);
    await resumed.waitLines(7);
    expect(resumed.status).toBe(200);
    expect(resumed.lines).toEqual(['{}', ...lines.slice(-6)]);
    const fromZero = new StreamReader(small, '?topic=*&namespace=*');
    await fromZero.waitLines(7);
    expect(fromZero.lines).toEqual(['{}', ...lines.slice(-6)]);
  });

  it('restart() cuts open streams and loses the buffer; serving goes on', async () => {
    const server = await start({ now: T0 });
    const r = new StreamReader(server, '?topic=Allocation&namespace=*');
    await r.waitLines(2);
    expect(server.openStreams).toBe(1);
    server.restart();
    await r.waitEnded();
    expect(server.openStreams).toBe(0);

    const after = new StreamReader(server, '?topic=Allocation&namespace=*&index=1');
    await after.waitLines(1);
    const listed = await getJson(server, '/v1/allocations?namespace=*');
    expect(listed.body.length).toBeGreaterThan(0);
    // Nothing buffered: the first thing after the greeting is the first change after T0.
    const firstChange = expectedAllocChanges(T0, Infinity)[0]!;
    server.setNow(firstChange.us);
    await after.waitLines(2);
    expect(after.lines[0]).toBe('{}');
    expect(parseLine(after.lines[1]!).Events[0].Key).toBe(firstChange.alloc.id);
    expect(after.lines).toHaveLength(2);

    // close() ends open streams too.
    await server.close();
    await after.waitEnded();
  });

  it('dropStreams() cuts streams but keeps the buffer; silenceStreams() stops heartbeats and events', async () => {
    const server = await start({ now: T0, heartbeatMs: 20 });
    // topic=* so that every buffered item is a line: the buffer holds 101 of them.
    const cut = new StreamReader(server, '?topic=*&namespace=*');
    await until(() => cut.lines.filter((l) => l !== '{}').length >= 101);
    const before = cut.lines.filter((l) => l !== '{}');
    expect(server.dropStreams()).toBe(1);
    await cut.waitEnded();
    const again = new StreamReader(server, '?topic=*&namespace=*');
    await until(() => again.lines.filter((l) => l !== '{}').length >= 101);
    expect(again.lines.filter((l) => l !== '{}')).toEqual(before);

    const quiet = new StreamReader(server, '?topic=Allocation&namespace=*&index=999999999');
    await quiet.waitLines(1);
    again.stop();
    await until(() => server.openStreams === 1);
    expect(server.silenceStreams()).toBe(1);
    const heard = quiet.lines.length;
    server.setNow(T1);
    const live = new StreamReader(server, `?topic=Allocation&namespace=*&index=${T0}`);
    // Several heartbeats of a live stream later, the silenced one has still received nothing.
    await live.waitLines(8);
    await until(() => live.lines.slice(2).filter((l) => l === '{}').length >= 3);
    expect(quiet.lines).toHaveLength(heard);
    expect(quiet.ended).toBe(false);
  });

  it('refuses a wrong token and unreadable namespaces with 403 "Permission denied"', async () => {
    const server = await start({ now: T0, token: 's3cret', namespacesDenied: [cluster.namespaces[0]!] });
    const wrong = new StreamReader(server, '?topic=Allocation&namespace=*', { 'X-Nomad-Token': 'nope' });
    await wrong.waitEnded();
    expect([wrong.status, wrong.body]).toEqual([403, 'Permission denied']);
    const denied = new StreamReader(server, `?topic=Allocation&namespace=${cluster.namespaces[0]}`, { 'X-Nomad-Token': 's3cret' });
    await denied.waitEnded();
    expect([denied.status, denied.body]).toEqual([403, 'Permission denied']);
    // Every topic needs a management token.
    const all = new StreamReader(server, '?namespace=default', { 'X-Nomad-Token': 's3cret' });
    await all.waitEnded();
    expect(all.status).toBe(403);
    const bad = new StreamReader(server, '?topic=Allocation:a:b', { 'X-Nomad-Token': 's3cret' });
    await bad.waitEnded();
    expect([bad.status, bad.body]).toEqual([400, 'Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Allocation:a:b']);
    expect(server.requests.map((q) => q.status)).toEqual([403, 403, 403, 400]);

    // Nomad 1.10 refuses `*` unless every namespace is readable; before, `*` leaked them all.
    const fixed = await start({ now: T0, version: '1.10.0', namespacesDenied: [cluster.namespaces[0]!] });
    const wildcard = new StreamReader(fixed, '?topic=Allocation&namespace=*');
    await wildcard.waitEnded();
    expect([wildcard.status, wildcard.body]).toEqual([403, 'Permission denied']);
    const old = await start({ now: T0, version: '1.9.3', namespacesDenied: [cluster.namespaces[0]!] });
    old.restart();
    const leaky = new StreamReader(old, '?topic=Allocation&namespace=*');
    await leaky.waitLines(1);
    old.setNow(T1);
    const expected = expectedAllocChanges(T0, T1);
    await leaky.waitLines(1 + new Set(expected.map((e) => e.us)).size);
    const namespaces = new Set(leaky.events().flatMap((l) => l.Events.map((e: any) => e.Namespace)));
    expect(namespaces).toEqual(new Set(expected.map((e) => e.alloc.job.namespace)));
    expect(namespaces.has(cluster.namespaces[0]!)).toBe(true);
  });

  it('rejects an unparsable index, and sends an event once per matching key as Nomad does', async () => {
    const server = await start({ now: T0 });
    const bad = new StreamReader(server, '?topic=Allocation&index=abc');
    await bad.waitEnded();
    expect([bad.status, bad.body]).toEqual([400, 'Unable to parse index: strconv.Atoi: parsing "abc": invalid syntax']);

    const a = expectedAllocChanges(T0, T1)[0]!;
    server.restart();
    const twice = new StreamReader(server, `?topic=Allocation:${a.alloc.job.id}&topic=Allocation:${a.alloc.id}&namespace=*`);
    await twice.waitLines(1);
    server.setNow(a.us);
    await twice.waitLines(2);
    const line = parseLine(twice.lines[1]!);
    expect(line.Events.map((e: any) => e.Key)).toEqual([a.alloc.id, a.alloc.id]);
  });

  it('filters by namespace and by topic key', async () => {
    const ns = cluster.namespaces[1]!;
    const server = await start({ now: T0 });
    server.restart();
    const byNs = new StreamReader(server, `?topic=Allocation&namespace=${ns}`);
    const job = expectedAllocChanges(T0, T1)[0]!.alloc.job;
    const byJob = new StreamReader(server, `?topic=Allocation:${job.id}&namespace=*`);
    const jobsOnly = new StreamReader(server, `?topic=Job&namespace=*`);
    await Promise.all([byNs.waitLines(1), byJob.waitLines(1), jobsOnly.waitLines(1)]);
    server.setNow(T1);

    const inNs = expectedAllocChanges(T0, T1, (a) => a.job.namespace === ns);
    await byNs.waitLines(1 + new Set(inNs.map((e) => e.us)).size);
    expect(byNs.events().flatMap((l) => l.Events.map((e: any) => e.Key))).toEqual(inNs.map((e) => e.alloc.id));

    const ofJob = expectedAllocChanges(T0, T1, (a) => a.job === job);
    await byJob.waitLines(1 + new Set(ofJob.map((e) => e.us)).size);
    expect(byJob.events().flatMap((l) => l.Events.map((e: any) => [e.Key, e.Topic]))).toEqual(ofJob.map((e) => [e.alloc.id, 'Allocation']));

    const registered = cluster.jobs.filter((j) => j.submitUs > T0 && j.submitUs <= T1);
    await until(() => jobsOnly.events().flatMap((l) => l.Events).filter((e: any) => e.Type === 'JobRegistered').length >= registered.length);
    const jobEvents = jobsOnly.events().flatMap((l) => l.Events);
    expect(jobEvents.every((e: any) => e.Topic === 'Job')).toBe(true);
    expect(jobEvents.filter((e: any) => e.Type === 'JobRegistered').map((e: any) => e.Key)).toEqual(registered.sort((x, y) => x.submitUs - y.submitUs).map((j) => j.id));
  });
});
