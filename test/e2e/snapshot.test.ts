import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates } from '../../fake/certs.js';
import { startFakeNomad, type FakeNomad } from '../../fake/nomad-server.js';
import { createCluster } from '../../src/simulator/index.js';
import type { NativeSnapshot } from '../../src/snapshots/format.js';
import { runAsync, tempDir } from '../helpers/cli.js';

/** `hourmeter snapshot` as a process, against a fake Nomad API on 127.0.0.1. */

const TOKEN = 'c0ffee00-secret-token-4d1a';
const cluster = createCluster({ seed: 5, days: 2, intervalMinutes: 60, targetConcurrent: 40 });
const at = (i: number) => cluster.snapshots[i]!.timeUs;
const iso = (us: number) => new Date(us / 1000).toISOString();

let fake: FakeNomad;
beforeAll(async () => {
  fake = await startFakeNomad({ cluster, token: TOKEN, now: at(10) });
});
afterAll(async () => fake.close());
afterEach(() => {
  fake.faults.clear();
  fake.setNow(at(10));
});

const env = (extra: Record<string, string> = {}) => ({ NOMAD_ADDR: fake.url, NOMAD_TOKEN: TOKEN, ...extra });

function snapshotsIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')).sort() : [];
}

async function listed(path: string): Promise<unknown[]> {
  const res = await fetch(`${fake.url}${path}`, { headers: { 'X-Nomad-Token': TOKEN } });
  return (await res.json()) as unknown[];
}

describe('hourmeter snapshot', () => {
  it('captures every allocation in a handful of paged requests, with the token sent and never written', async () => {
    const cwd = tempDir();
    const allocs = await listed('/v1/allocations?namespace=*');
    const jobs = (await listed('/v1/jobs?namespace=*')) as { ID: string }[];
    const jobIds = new Set(jobs.map((j) => j.ID));
    const orphans = (allocs as { JobID: string }[]).filter((a) => !jobIds.has(a.JobID)).length;
    const before = fake.requests.length;
    const r = await runAsync(['snapshot', '--now', iso(at(10)), '--per-page', '7'], { cwd, env: env() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = snapshotsIn(join(cwd, 'snapshots'));
    expect(files).toEqual([`${iso(at(10)).slice(0, 19)}Z.json`]);
    const snap = JSON.parse(readFileSync(join(cwd, 'snapshots', files[0]!), 'utf8')) as NativeSnapshot;
    expect(snap.allocations.map((a) => a.id).sort()).toEqual((allocs as { ID: string }[]).map((a) => a.ID).sort());
    expect(snap.scope).toEqual({ requested: ['*'], namespaces: ['ai4eosc', 'ai4life', 'default', 'imagine'].filter((n) => snap.scope.namespaces.includes(n)), failed: [] });
    // Namespaces, then pages of 7: the count grows with pages, not with jobs.
    const requests = fake.requests.slice(before);
    expect(requests.length).toBe(1 + Math.ceil(allocs.length / 7) + Math.ceil(jobs.length / 7) + orphans);
    expect(r.stdout).toContain(`(${requests.length} requests)`);
    expect(requests.every((q) => q.token.present && q.token.matches === true)).toBe(true);
    // The secret appears in no file and no output.
    for (const f of [join('snapshots', files[0]!), join('snapshots', '.hourmeter', 'nomad-meta-cache.json'), join('userdb', 'users.json')]) {
      expect(readFileSync(join(cwd, f), 'utf8')).not.toContain(TOKEN);
    }
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    // Owners land in the user database.
    const users = JSON.parse(readFileSync(join(cwd, 'userdb', 'users.json'), 'utf8'));
    const owner = snap.allocations.find((a) => a.user)!;
    expect(users[owner.user!]).toMatchObject({ first_seen: snap.captured_at, last_seen: snap.captured_at });
    expect(users[owner.user!].name).toBeTruthy();
    const csv = await runAsync(['userdb', 'export', '-o', 'csv'], { cwd });
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('id,name,email,first_seen,last_seen,groups');
    expect(lines).toHaveLength(Object.keys(users).length + 1);
    // The export speaks the report form of instants: six fraction digits where users.json keeps Date's three.
    const sixDigits = (t: string) => t.replace(/\.(\d{3})Z$/, '.$1000Z');
    const exported = Object.fromEntries(Object.entries(users as Record<string, { first_seen: string; last_seen: string }>).map(([id, u]) => [id, { ...u, first_seen: sixDigits(u.first_seen), last_seen: sixDigits(u.last_seen) }]));
    expect(exported[owner.user!]!.first_seen).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(JSON.parse((await runAsync(['userdb', 'export', '--json'], { cwd })).stdout)).toEqual(exported);
  });

  it('fails with exit 3 and writes nothing when the token is refused', async () => {
    const cwd = tempDir();
    const r = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env({ NOMAD_TOKEN: 'wrong' }) });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/HTTP 403/);
    expect(r.stderr).not.toContain('wrong');
    expect(snapshotsIn(join(cwd, 'snapshots'))).toEqual([]);
  });

  it('ignores NOMAD_NAMESPACE, and --namespace narrows the scope', async () => {
    const cwd = tempDir();
    await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env({ NOMAD_NAMESPACE: 'imagine' }) });
    const all = JSON.parse(readFileSync(join(cwd, 'snapshots', snapshotsIn(join(cwd, 'snapshots'))[0]!), 'utf8')) as NativeSnapshot;
    expect(all.scope.namespaces.length).toBeGreaterThan(1);
    const cwd2 = tempDir();
    const r = await runAsync(['snapshot', '--now', iso(at(10)), '--namespace', 'imagine'], { cwd: cwd2, env: env() });
    expect(r.code).toBe(0);
    const one = JSON.parse(readFileSync(join(cwd2, 'snapshots', snapshotsIn(join(cwd2, 'snapshots'))[0]!), 'utf8')) as NativeSnapshot;
    expect(one.scope).toEqual({ requested: ['imagine'], namespaces: ['imagine'], failed: [] });
    expect(new Set(one.allocations.map((a) => a.namespace))).toEqual(new Set(['imagine']));
  });

  for (const [name, fault] of [
    ['two 500s', { kind: 'status', status: 500, times: 2, match: '/v1/allocations' }],
    ['a 429', { kind: 'status', status: 429, times: 1, match: '/v1/allocations' }],
    ['a connection reset', { kind: 'reset', match: '/v1/allocations' }],
    ['a truncated body', { kind: 'truncate', match: '/v1/jobs' }],
    ['a slow response', { kind: 'slow', ms: 300, match: '/v1/jobs' }],
  ] as const) {
    it(`retries after ${name}, then succeeds`, async () => {
      const cwd = tempDir();
      fake.faults.enqueue(fault as never);
      const r = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env() });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(snapshotsIn(join(cwd, 'snapshots'))).toHaveLength(1);
    });
  }

  it('gives up after bounded retries with one line per failure, exit 3, and no file', async () => {
    const cwd = tempDir();
    fake.faults.enqueue({ kind: 'status', status: 503, times: 100, match: '/v1/allocations' });
    const before = fake.requests.length;
    const r = await runAsync(['snapshot', '--now', iso(at(10)), '--retries', '2'], { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n').length).toBeGreaterThanOrEqual(2);
    expect(r.stderr).toMatch(/listing allocations: GET \/v1\/allocations: HTTP 503 .*\(after 2 attempts\)/);
    expect(snapshotsIn(join(cwd, 'snapshots'))).toEqual([]);
    // `*` twice, then each namespace twice: bounded.
    const allocRequests = fake.requests.slice(before).filter((q) => q.path === '/v1/allocations').length;
    expect(allocRequests).toBeLessThanOrEqual(2 + 2 * 4);
  });

  it('never retries another 4xx', async () => {
    const cwd = tempDir();
    fake.faults.enqueue({ kind: 'status', status: 404, times: 1, match: '/v1/namespaces' });
    const before = fake.requests.length;
    const r = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(fake.requests.slice(before).filter((q) => q.path === '/v1/namespaces')).toHaveLength(1);
  });

  it('records a namespace it could not read, writes the rest, and exits 3', async () => {
    const denied = await startFakeNomad({ cluster, token: TOKEN, now: at(10), namespacesDenied: ['ai4life'] });
    try {
      const cwd = tempDir();
      const r = await runAsync(['snapshot', '--now', iso(at(10)), '--namespace', 'imagine', '--namespace', 'ai4life'], { cwd, env: { NOMAD_ADDR: denied.url, NOMAD_TOKEN: TOKEN } });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/namespace ai4life: no such namespace, or the token cannot read it/);
      const snap = JSON.parse(readFileSync(join(cwd, 'snapshots', snapshotsIn(join(cwd, 'snapshots'))[0]!), 'utf8')) as NativeSnapshot;
      expect(snap.scope).toEqual({ requested: ['imagine', 'ai4life'], namespaces: ['imagine'], failed: [{ namespace: 'ai4life', reason: 'no such namespace, or the token cannot read it' }] });
    } finally {
      await denied.close();
    }
  });

  it('handles overlapping runs: the second waits for the first', async () => {
    const slow = await startFakeNomad({ cluster, token: TOKEN, now: at(10), latencyMs: 150 });
    try {
      const cwd = tempDir();
      const e = { NOMAD_ADDR: slow.url, NOMAD_TOKEN: TOKEN };
      const [a, b] = await Promise.all([
        runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: e }),
        runAsync(['snapshot', '--now', iso(at(11))], { cwd, env: e }),
      ]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const files = snapshotsIn(join(cwd, 'snapshots'));
      expect(files).toHaveLength(2);
      for (const f of files) expect(JSON.parse(readFileSync(join(cwd, 'snapshots', f), 'utf8')).format).toBe('hourmeter.snapshot');
      expect(existsSync(join(cwd, 'snapshots', '.hourmeter', 'snapshot.lock'))).toBe(false);
    } finally {
      await slow.close();
    }
  });

  it('gives up on a lock held too long with a clear message', async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, 'snapshots', '.hourmeter'), { recursive: true });
    writeFileSync(join(cwd, 'snapshots', '.hourmeter', 'snapshot.lock'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), since: '2024-09-01T00:00:00Z' }));
    const r = await runAsync(['snapshot', '--now', iso(at(10)), '--lock-wait', '1s'], { cwd, env: env() });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`another snapshot is running \\(pid ${process.pid} `));
  });

  it('fails with exit 3 on a full disk and leaves earlier files intact', async () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48k', 'tmpfs', dir]);
    try {
      writeFileSync(join(dir, '2024-09-01T00:00:00Z.json'), '{"earlier": true}');
      const r = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env() });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/the disk is full \(ENOSPC\); earlier files are untouched/);
      expect(snapshotsIn(dir)).toEqual(['2024-09-01T00:00:00Z.json']);
      expect(readFileSync(join(dir, '2024-09-01T00:00:00Z.json'), 'utf8')).toBe('{"earlier": true}');
      expect(readdirSync(join(dir, '.hourmeter')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [dir]);
    }
  });

  it('fails with exit 3 on a read-only folder', async () => {
    const cwd = tempDir();
    const dir = join(cwd, 'snapshots');
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    try {
      writeFileSync(join(dir, '2024-09-01T00:00:00Z.json'), '{}');
      mkdirSync(join(dir, '.hourmeter'));
      execFileSync('mount', ['-o', 'remount,ro', dir]);
      const r = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: env() });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/read-only|not writable|EROFS/);
      expect(snapshotsIn(dir)).toEqual(['2024-09-01T00:00:00Z.json']);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('job meta on servers before Nomad 1.5, and for garbage-collected jobs', () => {
  it('fetches meta per job once per job version, then from the cache', async () => {
    const old = await startFakeNomad({ cluster, token: TOKEN, now: at(10), version: '1.4.3' });
    try {
      const cwd = tempDir();
      const e = { NOMAD_ADDR: old.url, NOMAD_TOKEN: TOKEN };
      const jobs = (await (await fetch(`${old.url}/v1/jobs?namespace=*`, { headers: { 'X-Nomad-Token': TOKEN } })).json()) as unknown[];
      const before = old.requests.length;
      expect((await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: e })).code).toBe(0);
      const first = old.requests.slice(before).filter((q) => /^\/v1\/job\/[^/]+$/.test(q.path)).length;
      expect(first).toBe(jobs.length);
      const snap = JSON.parse(readFileSync(join(cwd, 'snapshots', snapshotsIn(join(cwd, 'snapshots'))[0]!), 'utf8')) as NativeSnapshot;
      expect(snap.allocations.filter((a) => a.user !== null).length).toBeGreaterThan(0);
      // The same jobs an hour later: no per-job request at all.
      old.setNow(at(11));
      const mid = old.requests.length;
      expect((await runAsync(['snapshot', '--now', iso(at(11))], { cwd, env: e })).code).toBe(0);
      const jobsNow = (await (await fetch(`${old.url}/v1/jobs?namespace=*`, { headers: { 'X-Nomad-Token': TOKEN } })).json()) as { ID: string }[];
      const seen = new Set((jobs as { ID: string }[]).map((j) => j.ID));
      const second = old.requests.slice(mid).filter((q) => /^\/v1\/job\/[^/]+$/.test(q.path)).length;
      expect(second).toBe(jobsNow.filter((j) => !seen.has(j.ID)).length);
    } finally {
      await old.close();
    }
  });

  it("takes a garbage-collected job's meta from the allocation's job copy, once", async () => {
    const gc = await startFakeNomad({ cluster, token: TOKEN, now: at(10), jobGcMinutes: 0 });
    try {
      // A moment when some listed allocation's job is already gone.
      let when = -1;
      for (let i = 2; i < cluster.snapshots.length && when < 0; i++) {
        gc.setNow(at(i));
        const jobIds = new Set(((await (await fetch(`${gc.url}/v1/jobs?namespace=*`, { headers: { 'X-Nomad-Token': TOKEN } })).json()) as { ID: string }[]).map((j) => j.ID));
        const allocs = (await (await fetch(`${gc.url}/v1/allocations?namespace=*`, { headers: { 'X-Nomad-Token': TOKEN } })).json()) as { JobID: string }[];
        if (allocs.some((a) => !jobIds.has(a.JobID))) when = at(i);
      }
      expect(when).toBeGreaterThan(0);
      const cwd = tempDir();
      const e = { NOMAD_ADDR: gc.url, NOMAD_TOKEN: TOKEN };
      const before = gc.requests.length;
      expect((await runAsync(['snapshot', '--now', iso(when)], { cwd, env: e })).code).toBe(0);
      const reads = gc.requests.slice(before).filter((q) => q.path.startsWith('/v1/allocation/'));
      expect(reads.length).toBeGreaterThan(0);
      const snap = JSON.parse(readFileSync(join(cwd, 'snapshots', snapshotsIn(join(cwd, 'snapshots'))[0]!), 'utf8')) as NativeSnapshot;
      const ids = new Set(reads.map((q) => q.path.slice('/v1/allocation/'.length)));
      const orphans = snap.allocations.filter((a) => ids.has(a.id));
      expect(orphans.every((a) => a.user !== null)).toBe(true);
      const mid = gc.requests.length;
      expect((await runAsync(['snapshot', '--now', iso(when + 1_000_000)], { cwd, env: e })).code).toBe(0);
      expect(gc.requests.slice(mid).filter((q) => q.path.startsWith('/v1/allocation/'))).toHaveLength(0);
    } finally {
      await gc.close();
    }
  });
});

describe('HTTPS with mutual TLS', () => {
  it('captures with the CA and a client certificate, and fails cleanly without one', async () => {
    const certs = await makeTestCertificates(tempDir());
    const tls = await startFakeNomad({ cluster, token: TOKEN, now: at(10), tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.caCert, requireClientCert: true } });
    try {
      const cwd = tempDir();
      const base = { NOMAD_ADDR: tls.url, NOMAD_TOKEN: TOKEN, NOMAD_CACERT: certs.paths.caCert };
      const ok = await runAsync(['snapshot', '--now', iso(at(10))], { cwd, env: { ...base, NOMAD_CLIENT_CERT: certs.paths.clientCert, NOMAD_CLIENT_KEY: certs.paths.clientKey } });
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(tls.url.startsWith('https://')).toBe(true);
      const denied = await runAsync(['snapshot', '--now', iso(at(11)), '--retries', '1'], { cwd: tempDir(), env: base });
      expect(denied.code).toBe(3);
      const untrusted = await runAsync(['snapshot', '--now', iso(at(11)), '--retries', '1'], { cwd: tempDir(), env: { NOMAD_ADDR: tls.url, NOMAD_TOKEN: TOKEN, NOMAD_CLIENT_CERT: certs.paths.clientCert, NOMAD_CLIENT_KEY: certs.paths.clientKey } });
      expect(untrusted.code).toBe(3);
      expect(untrusted.stderr).toMatch(/certificate/i);
    } finally {
      await tls.close();
    }
  });
});
