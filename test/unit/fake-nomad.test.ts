import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { startFakeNomad, type FakeNomad, type FakeNomadOptions } from '../../fake/nomad-server.js';
import { clusterStateAt, createCluster, rfc3339Nano, unixNanos, type SimAlloc } from '../../src/simulator/index.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/nomad');
const MIN = 60_000_000;

// Busy enough to have lost, unknown, restarted and rescheduled allocations and queued jobs.
const cluster = createCluster({
  seed: 1,
  days: 7,
  disconnectsPerWeek: 4,
  reconnectProbability: 0.5,
  restartFraction: 0.3,
  rescheduleFraction: 0.2,
  targetConcurrent: 30,
});
const inHorizon = (a: SimAlloc): boolean => a.createUs > cluster.startUs && a.terminalUs < cluster.horizonUs;

const servers: FakeNomad[] = [];
async function start(options: FakeNomadOptions = {}): Promise<FakeNomad> {
  const s = await startFakeNomad({ cluster, ...options });
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Got {
  status: number;
  headers: Headers;
  text: string;
}
async function get(server: FakeNomad, path: string, headers: Record<string, string> = {}): Promise<Got> {
  const res = await fetch(server.url + path, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
async function getJson<T = any>(server: FakeNomad, path: string, headers: Record<string, string> = {}): Promise<T> {
  const r = await get(server, path, headers);
  expect(r.status, r.text).toBe(200);
  return JSON.parse(r.text) as T;
}

/** Follows X-Nomad-NextToken to the end, returning every page's raw text. */
async function allPages(server: FakeNomad, path: string, headers: Record<string, string> = {}): Promise<{ pages: Got[]; items: any[] }> {
  const pages: Got[] = [];
  const items: any[] = [];
  let next: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await get(server, next === null ? path : `${path}${sep}next_token=${encodeURIComponent(next)}`, headers);
    expect(r.status, r.text).toBe(200);
    pages.push(r);
    items.push(...(JSON.parse(r.text) as any[]));
    next = r.headers.get('x-nomad-nexttoken');
    if (next === null) return { pages, items };
  }
  throw new Error('pagination did not end');
}

function fixture(name: string): Promise<any> {
  return readFile(join(FIXTURES, name), 'utf8').then((t) => JSON.parse(t));
}

describe('fake Nomad: allocations', () => {
  it('returns every listed allocation exactly once across small pages, in CreateIndex order', async () => {
    const server = await start();
    const expected = clusterStateAt(cluster, server.now).allocations.map((v) => v.id);
    expect(expected.length).toBeGreaterThan(20);
    const { pages, items } = await allPages(server, '/v1/allocations?namespace=*&resources=true&per_page=7');
    expect(pages.length).toBe(Math.ceil(expected.length / 7));
    expect(items.map((a) => a.ID)).toEqual(expected);
    const indexes = items.map((a) => a.CreateIndex as number);
    expect([...indexes].sort((a, b) => a - b)).toEqual(indexes);
    // The token names the first item of the next page.
    const token = pages[0]!.headers.get('x-nomad-nexttoken')!;
    expect(token).toBe(`${items[7].CreateIndex}.${items[7].ID}`);
    for (const p of pages) {
      expect(p.headers.get('content-type')).toBe('application/json');
      expect(Number(p.headers.get('x-nomad-index'))).toBeGreaterThan(0);
      expect(p.headers.get('x-nomad-knownleader')).toBe('true');
      expect(p.headers.get('x-nomad-lastcontact')).toBe('0');
    }
    // reverse=true walks the same set backwards.
    const back = await allPages(server, '/v1/allocations?namespace=*&per_page=9&reverse=true');
    expect(back.items.map((a) => a.ID)).toEqual([...expected].reverse());
  });

  it('writes CreateTime and ModifyTime as exact Unix-nanosecond integers', async () => {
    const server = await start();
    const views = clusterStateAt(cluster, server.now).allocations;
    const r = await get(server, '/v1/allocations?namespace=*');
    const created = [...r.text.matchAll(/"CreateTime":(\d+)/g)].map((m) => BigInt(m[1]!));
    const modified = [...r.text.matchAll(/"ModifyTime":(\d+)/g)].map((m) => BigInt(m[1]!));
    expect(created).toEqual(views.map((v) => BigInt(unixNanos(v.createUs))));
    expect(modified).toEqual(views.map((v) => BigInt(unixNanos(v.modifyUs))));
    expect(created.every((n) => n > BigInt(Number.MAX_SAFE_INTEGER))).toBe(true);
  });

  it('has the key sets and value types of the fixtures', async () => {
    const [stubFixture] = await fixture('nomad-allocations-list.json');
    const server = await start();
    const [stub] = await getJson(server, '/v1/allocations?namespace=*&resources=true&per_page=1');
    expect(Object.keys(stub)).toEqual(Object.keys(stubFixture));
    expect(Object.keys(stub.AllocatedResources)).toEqual(Object.keys(stubFixture.AllocatedResources));
    expect(Object.keys(stub.AllocatedResources.Shared)).toEqual(Object.keys(stubFixture.AllocatedResources.Shared));
    expect(Object.keys(stub.AllocatedResources.TaskLifecycles)).toEqual(['main', 'storage_mount']);
    expect(Object.keys(stub.AllocatedResources.Tasks.main)).toEqual(Object.keys(stubFixture.AllocatedResources.Tasks.main));
    expect(Object.keys(stub.AllocatedResources.Tasks.main.Cpu)).toEqual(['CpuShares', 'ReservedCores']);
    expect(Object.keys(stub.AllocatedResources.Tasks.main.Memory)).toEqual(['MemoryMB', 'MemoryMaxMB']);
    expect(Object.keys(stub.TaskStates)).toEqual(['main', 'storage_mount']);
    expect(Object.keys(stub.TaskStates.main)).toEqual(Object.keys(stubFixture.TaskStates.main));
    expect(Object.keys(stub.TaskStates.main.Events[0])).toEqual(Object.keys(stubFixture.TaskStates.main.Events[0]));
    for (const key of Object.keys(stubFixture)) {
      if (stubFixture[key] !== null && stub[key] !== null) expect(typeof stub[key], key).toBe(typeof stubFixture[key]);
    }
    expect(stub.Name).toMatch(/^[a-z-]+-[0-9a-f-]{36}\.usergroup\[0\]$/);
    expect(stub.TaskGroup).toBe('usergroup');

    const [bare] = await getJson(server, '/v1/allocations?namespace=*&per_page=1&task_states=false');
    expect('AllocatedResources' in bare).toBe(false);
    expect(bare.TaskStates).toBeNull();
  });

  it('shows a lost allocation as Nomad does: lost/stop, task still running, ModifyTime = lost time', async () => {
    const a = cluster.allocations.find((x) => x.finalStatus === 'lost' && x.startUs !== null && inHorizon(x));
    expect(a).toBeDefined();
    const server = await start({ now: a!.terminalUs + 5 * MIN });
    const stub = (await getJson<any[]>(server, '/v1/allocations?namespace=*')).find((x) => x.ID === a!.id);
    expect(stub.ClientStatus).toBe('lost');
    expect(stub.DesiredStatus).toBe('stop');
    expect(stub.DesiredDescription).toBe('alloc is lost since its node is down');
    expect(stub.TaskStates.main.State).toBe('running');
    expect(stub.TaskStates.main.FinishedAt).toBeNull();
    const r = await get(server, `/v1/allocation/${a!.id}`);
    expect(r.text).toContain(`"ModifyTime":${unixNanos(a!.terminalUs)}`);
  });

  it('shows an allocation on a disconnected node as unknown', async () => {
    const a = cluster.allocations.find((x) => x.finalStatus !== 'lost' && x.unknown.length > 0 && inHorizon(x));
    expect(a).toBeDefined();
    const u = a!.unknown[0]!;
    const server = await start({ now: Math.floor((u.fromUs + u.toUs) / 2) });
    const stub = (await getJson<any[]>(server, '/v1/allocations?namespace=*')).find((x) => x.ID === a!.id);
    expect(stub.ClientStatus).toBe('unknown');
    expect(stub.DesiredStatus).toBe('run');
    expect(stub.ClientDescription).toBe('alloc is unknown since its node is disconnected');
  });

  it('reports restarts: StartedAt is the last start, Restarts and LastRestart are set', async () => {
    const a = cluster.allocations.find((x) => x.restarts.length > 0 && inHorizon(x));
    expect(a).toBeDefined();
    const restart = a!.restarts[0]!;
    const server = await start({ now: restart.startedUs + MIN });
    const full = await getJson(server, `/v1/allocation/${a!.id}`);
    expect(full.TaskStates.main.StartedAt).toBe(rfc3339Nano(restart.startedUs));
    expect(full.TaskStates.main.Restarts).toBe(1);
    expect(full.TaskStates.main.LastRestart).not.toBeNull();
    const types = full.TaskStates.main.Events.map((e: any) => e.Type as string);
    expect(types).toContain('Restarting');
    // The first start survives only in the events.
    expect(types.filter((t: string) => t === 'Started').length).toBeGreaterThanOrEqual(2);
  });

  it('links rescheduled allocations and serves the full allocation with its job copy', async () => {
    const a = cluster.allocations.find((x) => x.previous !== null && x.startUs !== null && x.terminalUs - x.startUs > 10 * MIN && inHorizon(x));
    expect(a).toBeDefined();
    const server = await start({ now: a!.startUs! + 5 * MIN, gcMinutes: 24 * 60 });
    const stubs = await getJson<any[]>(server, '/v1/allocations?namespace=*');
    const old = stubs.find((x) => x.ID === a!.previous!.id);
    expect(old.ClientStatus).toBe('failed');
    expect(old.NextAllocation).toBe(a!.id);
    expect(old.DesiredStatus).toBe('stop');

    const fixtureFull = await fixture('nomad-allocation-read.json');
    const full = await getJson(server, `/v1/allocation/${a!.id}`);
    expect(Object.keys(full)).toEqual(Object.keys(fixtureFull));
    expect(full.PreviousAllocation).toBe(a!.previous!.id);
    expect(full.RescheduleTracker.Events[0].PrevAllocID).toBe(a!.previous!.id);
    expect(full.Job.Meta.owner).toBe(a!.job.user.id);
    expect((await get(server, '/v1/allocation/00000000-0000-0000-0000-000000000000')).status).toBe(404);
  });
});

describe('fake Nomad: jobs and namespaces', () => {
  it('lists jobs with Meta on request, paged by "<namespace>.<id>"', async () => {
    const [fixtureJob] = await fixture('nomad-jobs-list.json');
    const server = await start();
    const { pages, items } = await allPages(server, '/v1/jobs?namespace=*&meta=true&per_page=5');
    expect(pages.length).toBeGreaterThan(2);
    expect(new Set(items.map((j) => `${j.Namespace}/${j.ID}`)).size).toBe(items.length);
    const token = pages[0]!.headers.get('x-nomad-nexttoken');
    expect(token).toBe(`${items[5].Namespace}.${items[5].ID}`);
    expect(Object.keys(items[0])).toEqual(Object.keys(fixtureJob));
    expect(Object.keys(items[0].JobSummary)).toEqual(Object.keys(fixtureJob.JobSummary));
    expect(Object.keys(items[0].Meta)).toEqual(['description', 'owner', 'owner_email', 'owner_name', 'title']);
    expect(pages[0]!.text).toMatch(/"SubmitTime":\d{19}[,}]/);
    // Every allocation listed has its job listed.
    const allocs = await getJson<any[]>(server, '/v1/allocations?namespace=*');
    const jobs = new Set(items.map((j) => j.ID));
    for (const a of allocs) expect(jobs.has(a.JobID)).toBe(true);

    const plain = await getJson<any[]>(server, '/v1/jobs?namespace=*');
    expect(plain.every((j) => !('Meta' in j))).toBe(true);
  });

  it('omits Meta from job stubs before Nomad 1.5', async () => {
    const server = await start({ version: '1.4.0' });
    const jobs = await getJson<any[]>(server, '/v1/jobs?namespace=*&meta=true');
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => !('Meta' in j))).toBe(true);
    // The per-job read still carries it.
    const job = await getJson(server, `/v1/job/${encodeURIComponent(jobs[0].ID)}?namespace=${jobs[0].Namespace}`);
    expect(job.Meta.owner).toMatch(/@egi\.eu$/);
    const self = await getJson(server, '/v1/agent/self');
    expect(self.config.Version.Version).toBe('1.4.0');
  });

  it('ignores pagination before Nomad 1.3', async () => {
    const server = await start({ version: '1.2.6' });
    const r = await get(server, '/v1/allocations?namespace=*&per_page=2');
    expect(r.headers.get('x-nomad-nexttoken')).toBeNull();
    expect(JSON.parse(r.text).length).toBe(clusterStateAt(cluster, server.now).allocations.length);
  });

  it('shows queued jobs as pending and dead jobs until job GC', async () => {
    const queued = cluster.jobs.find((j) => j.allocs[0]!.createUs - j.submitUs > 10 * MIN && j.submitUs > cluster.startUs);
    expect(queued).toBeDefined();
    const server = await start({ now: queued!.submitUs + 5 * MIN, jobGcMinutes: 30, gcMinutes: 60 });
    let stub = (await getJson<any[]>(server, '/v1/jobs?namespace=*')).find((j) => j.ID === queued!.id);
    expect(stub.Status).toBe('pending');
    expect(stub.JobSummary.Summary.usergroup.Queued).toBe(1);

    const last = queued!.allocs[queued!.allocs.length - 1]!;
    server.setNow(last.terminalUs + 10 * MIN);
    stub = (await getJson<any[]>(server, '/v1/jobs?namespace=*')).find((j) => j.ID === queued!.id);
    expect(stub.Status).toBe('dead');
    expect((await get(server, `/v1/job/${queued!.id}?namespace=${queued!.namespace}`)).status).toBe(200);

    // After job GC the job is gone while its allocation is still listed; its Meta survives
    // in the allocation's job copy.
    server.setNow(last.terminalUs + 40 * MIN);
    expect((await getJson<any[]>(server, '/v1/jobs?namespace=*')).some((j) => j.ID === queued!.id)).toBe(false);
    expect((await get(server, `/v1/job/${queued!.id}?namespace=${queued!.namespace}`)).status).toBe(404);
    const full = await getJson(server, `/v1/allocation/${last.id}`);
    expect(full.Job.Meta.owner_email).toBe(queued!.user.email);
  });

  it('lists namespaces like the fixture', async () => {
    const [fixtureNs] = await fixture('nomad-namespaces.json');
    const server = await start();
    const list = await getJson<any[]>(server, '/v1/namespaces');
    expect(list.map((n) => n.Name)).toEqual(['ai4eosc', 'ai4life', 'default', 'imagine']);
    expect(Object.keys(list[0])).toEqual(Object.keys(fixtureNs));
  });
});

describe('fake Nomad: ACLs', () => {
  it('requires the token and never logs its value', async () => {
    const secret = 'b1d2c3e4-0000-4a4a-9b9b-feedfacecafe';
    const server = await start({ token: secret });
    const denied = await get(server, '/v1/allocations?namespace=*');
    expect(denied.status).toBe(403);
    expect(denied.text).toBe('Permission denied');
    expect((await get(server, '/v1/allocations?namespace=*', { 'X-Nomad-Token': 'wrong' })).status).toBe(403);
    expect((await get(server, '/v1/allocations?namespace=*', { 'X-Nomad-Token': secret })).status).toBe(200);
    expect((await get(server, '/v1/jobs', { Authorization: `Bearer ${secret}` })).status).toBe(200);
    // Health checks need no token, as in Nomad.
    expect((await get(server, '/v1/status/leader')).status).toBe(200);

    expect(server.requests.map((r) => [r.token.present, r.token.matches, r.token.via])).toEqual([
      [false, false, null],
      [true, false, 'x-nomad-token'],
      [true, true, 'x-nomad-token'],
      [true, true, 'bearer'],
      [false, false, null],
    ]);
    expect(server.requests[2]!.query).toEqual({ namespace: '*' });
    expect(server.requests[2]!.status).toBe(200);
    expect(JSON.stringify(server.requests)).not.toContain(secret);
    expect(server.requests[3]!.headers.authorization).toBe('Bearer [redacted]');
  });

  it('hides denied namespaces and refuses them when asked for directly', async () => {
    const server = await start({ namespacesDenied: ['imagine'] });
    expect((await get(server, '/v1/allocations?namespace=imagine')).status).toBe(403);
    expect((await get(server, '/v1/jobs?namespace=imagine')).status).toBe(403);
    const all = await getJson<any[]>(server, '/v1/allocations?namespace=*');
    const expected = clusterStateAt(cluster, server.now).allocations.filter((v) => v.namespace !== 'imagine');
    expect(all.map((a) => a.ID)).toEqual(expected.map((v) => v.id));
    expect((await getJson<any[]>(server, '/v1/jobs?namespace=*')).some((j) => j.Namespace === 'imagine')).toBe(false);
    expect((await getJson<any[]>(server, '/v1/namespaces')).map((n) => n.Name)).not.toContain('imagine');
    const ai4eosc = await getJson<any[]>(server, '/v1/allocations?namespace=ai4eosc');
    expect(ai4eosc.length).toBeGreaterThan(0);
    expect(ai4eosc.every((a) => a.Namespace === 'ai4eosc')).toBe(true);
  });
});

describe('fake Nomad: faults and misc endpoints', () => {
  it('fails the next matching requests, then recovers', async () => {
    const server = await start();
    server.faults.enqueue({ kind: 'status', status: 500, times: 1 });
    server.faults.enqueue({ kind: 'status', status: 429, match: '/v1/jobs', retryAfterSeconds: 1 });
    expect((await get(server, '/v1/allocations?namespace=*')).status).toBe(500);
    expect((await get(server, '/v1/allocations?namespace=*')).status).toBe(200);
    const limited = await get(server, '/v1/jobs?namespace=*');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((await get(server, '/v1/jobs?namespace=*')).status).toBe(200);
    expect(server.faults.pending()).toEqual([]);
    expect(server.requests.map((r) => r.fault)).toEqual(['status', null, 'status', null]);
  });

  it('resets the connection without a response', async () => {
    const server = await start();
    server.faults.enqueue({ kind: 'reset' });
    await expect(fetch(`${server.url}/v1/allocations?namespace=*`)).rejects.toThrow();
    expect(server.requests[0]!.status).toBeNull();
    expect((await get(server, '/v1/allocations?namespace=*')).status).toBe(200);
  });

  it('truncates a body after announcing its full length', async () => {
    const server = await start();
    server.faults.enqueue({ kind: 'truncate', match: '/v1/allocations' });
    const read = async (): Promise<string> => (await fetch(`${server.url}/v1/allocations?namespace=*`)).text();
    await expect(read()).rejects.toThrow();
    const ok = await read();
    expect(JSON.parse(ok).length).toBeGreaterThan(0);
  });

  it('delays responses by latencyMs and slow faults', async () => {
    const server = await start({ latencyMs: 40 });
    server.faults.enqueue({ kind: 'slow', ms: 80 });
    let t0 = performance.now();
    await get(server, '/v1/status/leader');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    t0 = performance.now();
    await get(server, '/v1/status/leader');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
  });

  it('serves leader and agent info, 404 for unknown paths, 405 for other methods', async () => {
    const server = await start();
    expect(await getJson(server, '/v1/status/leader')).toBe('127.0.0.1:4647');
    expect((await getJson(server, '/v1/agent/self')).config.Version.Version).toBe('1.9.3');
    const missing = await get(server, '/v1/nope');
    expect(missing.status).toBe(404);
    expect((await get(server, '/v1/job/does-not-exist')).status).toBe(404);
    const post = await fetch(`${server.url}/v1/jobs`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    await post.text();
  });

  it('gzips responses when enabled and asked to', async () => {
    const server = await start({ gzip: true });
    const res = await fetch(`${server.url}/v1/allocations?namespace=*`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect((JSON.parse(await res.text()) as unknown[]).length).toBe(clusterStateAt(cluster, server.now).allocations.length);
  });

  it('serves a later instant after setNow', async () => {
    const server = await start({ pageSizeLimit: 10 });
    const first = await allPages(server, '/v1/allocations?namespace=*');
    expect(first.pages.length).toBeGreaterThan(1);
    const later = cluster.snapshots[3]!.timeUs;
    server.setNow(later);
    const second = await allPages(server, '/v1/allocations?namespace=*');
    expect(second.items.map((a) => a.ID)).toEqual(clusterStateAt(cluster, later).allocations.map((v) => v.id));
    expect(Number(second.pages[0]!.headers.get('x-nomad-index'))).toBeGreaterThan(Number(first.pages[0]!.headers.get('x-nomad-index')));
    // Going back in time works too.
    server.setNow(cluster.snapshots[1]!.timeUs);
    const third = await allPages(server, '/v1/allocations?namespace=*');
    expect(third.items.map((a) => a.ID)).toEqual(clusterStateAt(cluster, cluster.snapshots[1]!.timeUs).allocations.map((v) => v.id));
  });
});

describe('fake Nomad: HTTPS with client certificates', () => {
  let dir: string;
  let certs: TestCertificates;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourmeter-certs-'));
    certs = await makeTestCertificates(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function httpsGet(url: string, extra: { cert?: string; key?: string; servername?: string }): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { ca: certs.caCert, ...extra, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('refuses clients without a certificate and serves those with one', async () => {
    const server = await start({
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.caCert, requireClientCert: true },
    });
    expect(server.url.startsWith('https://127.0.0.1:')).toBe(true);
    await expect(httpsGet(`${server.url}/v1/status/leader`, {})).rejects.toThrow();
    const ok = await httpsGet(`${server.url}/v1/allocations?namespace=*&per_page=2`, { cert: certs.clientCert, key: certs.clientKey });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toHaveLength(2);
    expect(server.requests.at(-1)!.clientCert).toBe(true);
    // The server certificate names localhost too (checked through SNI: the server listens on IPv4 only).
    const byName = await httpsGet(`${server.url}/v1/status/leader`, { cert: certs.clientCert, key: certs.clientKey, servername: 'localhost' });
    expect(JSON.parse(byName.body)).toBe('127.0.0.1:4647');
  });
});
