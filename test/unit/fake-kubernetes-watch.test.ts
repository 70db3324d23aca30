import { request } from 'node:https';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, type TestCertificates } from '../../fake/certs.js';
import { changeInstants, podAt, podsAt, simulatedPodLives, type PodLife } from '../../fake/kubernetes-pods.js';
import { startFakeKubernetes, type FakeKubernetes, type FakeKubernetesOptions } from '../../fake/kubernetes-server.js';
import type { Pod } from '../../src/sources/kubernetes/types.js';
import { tempDir } from '../helpers/cli.js';

/** Watches of the fake API server, read over real HTTPS with a bearer token. */

const TOKEN = 'k8s-watch-token-91c3';
let certs: TestCertificates;
const servers: FakeKubernetes[] = [];
const readers: WatchReader[] = [];

beforeAll(async () => {
  certs = await makeTestCertificates(tempDir());
}, 60_000);
afterEach(async () => {
  for (const r of readers.splice(0)) r.stop();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const T0 = Date.parse('2025-03-12T10:00:00Z');
const s = (n: number) => T0 + n * 1000;

// A: a notebook deleted while running. B: a batch pod that completes and stays.
const A: PodLife = {
  namespace: 'jhub',
  name: 'jupyter-alice',
  uid: 'aaaaaaaa-0000-4000-8000-000000000001',
  createdMs: s(0),
  scheduledMs: s(5),
  finishedMs: null,
  deletedMs: s(60),
  requests: { cpu: '1', memory: '2Gi' },
  labels: { 'app.kubernetes.io/component': 'singleuser-server' },
  annotations: { 'hub.jupyter.org/username': 'alice@example.org' },
};
const B: PodLife = {
  namespace: 'ml-batch',
  name: 'train-bob',
  uid: 'bbbbbbbb-0000-4000-8000-000000000002',
  createdMs: s(10),
  scheduledMs: s(12),
  finishedMs: s(40),
  deletedMs: null,
  requests: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' },
  labels: { owner: 'bob' },
};
const LIVES = [A, B];
// Revisions: 1000 at s(0), then 1001 s(5) A runs, 1002 s(10) B created, 1003 s(12) B runs,
// 1004 s(40) B completes, 1005 s(60) A deleted.
const INSTANTS = [s(5), s(10), s(12), s(40), s(60)];

/** The pod as the API shows it at `atMs`, with the resourceVersion it last changed in. */
function pod(life: PodLife, atMs: number, rv: number): Pod {
  const p = podAt(life, atMs)!;
  return { ...p, metadata: { ...p.metadata, resourceVersion: String(rv) } };
}

/** The final object of a pod deleted at `deletedMs`: a grace period of 0 and the delete's time. */
function deleted(life: PodLife, atMs: number, rv: number, deletedMs: number): Pod {
  const p = pod(life, atMs, rv);
  return { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date(deletedMs).toISOString().replace('.000Z', 'Z'), deletionGracePeriodSeconds: 0 } };
}

async function start(options: Partial<FakeKubernetesOptions> = {}): Promise<FakeKubernetes> {
  const fake = await startFakeKubernetes({ tls: { key: certs.serverKey, cert: certs.serverCert }, tokens: [TOKEN], pods: podsAt(LIVES, s(0)), ...options });
  servers.push(fake);
  return fake;
}

/** Reads a watch and keeps every JSON line; `ended` tells a clean end from a cut connection. */
class WatchReader {
  readonly lines: string[] = [];
  status = 0;
  date: string | null = null;
  body = '';
  ended: 'end' | 'cut' | null = null;
  private buffered = '';
  private readonly req;
  private readonly opened: Promise<void>;
  constructor(server: FakeKubernetes, path: string, token = TOKEN) {
    let resolveOpened!: () => void;
    this.opened = new Promise((r) => (resolveOpened = r));
    this.req = request(`${server.url}${path}`, { ca: certs.caCert, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      this.date = res.headers.date ?? null;
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
      res.on('end', () => (this.ended ??= 'end'));
      res.on('error', () => (this.ended ??= 'cut'));
      res.on('close', () => (this.ended ??= 'cut'));
      resolveOpened();
    });
    this.req.on('error', () => {
      this.ended ??= 'cut';
      resolveOpened();
    });
    this.req.end();
    readers.push(this);
  }
  async open(): Promise<this> {
    await this.opened;
    return this;
  }
  async waitLines(n: number): Promise<any[]> {
    await this.opened;
    await until(() => this.lines.length >= n || this.ended !== null);
    return this.events();
  }
  async waitEnded(): Promise<void> {
    await until(() => this.ended !== null);
  }
  events(): any[] {
    return this.lines.map((l) => JSON.parse(l));
  }
  /** The whole body of a plain (not watch) answer. */
  async json(): Promise<any> {
    await this.waitEnded();
    return JSON.parse(this.status === 200 ? this.buffered : this.body);
  }
  stop(): void {
    this.req.destroy();
  }
}

async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!done()) throw new Error('timed out waiting for the watch');
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const playHistory = (fake: FakeKubernetes, instants = INSTANTS) => instants.forEach((t) => fake.setPods(podsAt(LIVES, t), t));
const bookmark = (rv: number) => ({ type: 'BOOKMARK', object: { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } } });

describe('watch events', () => {
  it('streams every change after the resourceVersion, with the objects of their revisions', async () => {
    const fake = await start();
    playHistory(fake);
    expect(fake.resourceVersion).toBe(1005);
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000');
    expect(await w.waitLines(5)).toEqual([
      { type: 'MODIFIED', object: pod(A, s(5), 1001) },
      { type: 'ADDED', object: pod(B, s(10), 1002) },
      { type: 'MODIFIED', object: pod(B, s(12), 1003) },
      { type: 'MODIFIED', object: pod(B, s(40), 1004) },
      // Deleted while running: the final object has no finishedAt, and the delete's version.
      { type: 'DELETED', object: deleted(A, s(59), 1005, s(60)) },
    ]);
    expect(w.status).toBe(200);
    expect(w.events()[4].object.status.containerStatuses).toEqual([{ name: 'main', state: { running: { startedAt: '2025-03-12T10:00:05Z' } } }]);
    expect(w.events()[3].object.status.containerStatuses[0].state.terminated.finishedAt).toBe('2025-03-12T10:00:40Z');
    expect(w.ended).toBeNull();
    expect(fake.openWatches).toBe(1);
  });

  it('sends changes live as setPods makes them, after those it caught up on', async () => {
    const fake = await start();
    playHistory(fake, INSTANTS.slice(0, 2));
    const w = await new WatchReader(fake, '/api/v1/pods?watch=true&resourceVersion=1001').open();
    expect(await w.waitLines(1)).toEqual([{ type: 'ADDED', object: pod(B, s(10), 1002) }]);
    playHistory(fake, INSTANTS.slice(2));
    expect(await w.waitLines(4)).toEqual([
      { type: 'ADDED', object: pod(B, s(10), 1002) },
      { type: 'MODIFIED', object: pod(B, s(12), 1003) },
      { type: 'MODIFIED', object: pod(B, s(40), 1004) },
      { type: 'DELETED', object: deleted(A, s(59), 1005, s(60)) },
    ]);
    // A setPods that changes nothing sends nothing (and no bookmark unless asked for).
    fake.setPods(podsAt(LIVES, s(60)));
    fake.setPods(podsAt(LIVES, s(61)));
    await pause(100);
    expect(w.lines).toHaveLength(4);
  });

  it('without a resourceVersion sends the current pods as ADDED first; a list names its revision', async () => {
    const fake = await start();
    playHistory(fake, INSTANTS.slice(0, 4));
    const w = new WatchReader(fake, '/api/v1/pods?watch=1');
    expect(await w.waitLines(2)).toEqual([
      { type: 'ADDED', object: pod(A, s(40), 1001) },
      { type: 'ADDED', object: pod(B, s(40), 1004) },
    ]);
    const list = await new WatchReader(fake, '/api/v1/pods').json();
    expect(list.metadata).toEqual({ resourceVersion: '1004' });
    expect(list.items).toEqual([podAt(A, s(40)), podAt(B, s(40))]);
  });

  it('a pod re-created under its name with a new uid is DELETED then ADDED', async () => {
    const fake = await start({ pods: [podAt(A, s(5))!] });
    const again = { ...A, uid: 'aaaaaaaa-0000-4000-8000-000000000099', createdMs: s(70), scheduledMs: s(70), deletedMs: null };
    fake.setPods([podAt(again, s(70))!], s(70));
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000');
    expect(await w.waitLines(2)).toEqual([
      { type: 'DELETED', object: deleted(A, s(5), 1001, s(70)) },
      { type: 'ADDED', object: pod(again, s(70), 1001) },
    ]);
  });
});

describe('watch filters', () => {
  it('a namespace watch sees its pods only, and a bookmark when a change is elsewhere', async () => {
    const fake = await start();
    const w = await new WatchReader(fake, '/api/v1/namespaces/jhub/pods?watch=1&resourceVersion=1000&allowWatchBookmarks=true').open();
    playHistory(fake, INSTANTS.slice(0, 3));
    expect(await w.waitLines(3)).toEqual([{ type: 'MODIFIED', object: pod(A, s(5), 1001) }, bookmark(1002), bookmark(1003)]);
  });

  it('a field selector adds pods entering it and deletes pods leaving it', async () => {
    const fake = await start();
    playHistory(fake);
    const w = new WatchReader(fake, `/api/v1/pods?watch=1&resourceVersion=1000&fieldSelector=${encodeURIComponent('status.phase=Running')}`);
    expect(await w.waitLines(4)).toEqual([
      { type: 'ADDED', object: pod(A, s(5), 1001) },
      { type: 'ADDED', object: pod(B, s(12), 1003) },
      { type: 'DELETED', object: pod(B, s(40), 1004) },
      { type: 'DELETED', object: deleted(A, s(59), 1005, s(60)) },
    ]);
  });

  it('a label selector keeps the matching pods', async () => {
    const fake = await start();
    playHistory(fake);
    const w = new WatchReader(fake, `/api/v1/pods?watch=1&resourceVersion=1003&labelSelector=${encodeURIComponent('owner in (bob,carol)')}`);
    expect(await w.waitLines(1)).toEqual([{ type: 'MODIFIED', object: pod(B, s(40), 1004) }]);
    // 1005 deletes A only: nothing for this watch, and it did not ask for bookmarks.
    await pause(100);
    expect(w.lines).toHaveLength(1);
  });

  it('refuses a forbidden namespace and a wrong token as a list does', async () => {
    const fake = await start({ forbiddenNamespaces: ['jhub'] });
    const forbidden = new WatchReader(fake, '/api/v1/namespaces/jhub/pods?watch=1');
    await forbidden.waitEnded();
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.body).message).toBe('pods is forbidden: User "token-user" cannot watch resource "pods" in API group "" in the namespace "jhub"');
    const wrong = new WatchReader(fake, '/api/v1/pods?watch=1', 'nope');
    await wrong.waitEnded();
    expect(wrong.status).toBe(401);
  });
});

describe('bookmarks', () => {
  it('come every bookmarkMs with the latest resourceVersion, only when allowed', async () => {
    const fake = await start({ bookmarkMs: 30 });
    playHistory(fake, INSTANTS.slice(0, 2));
    const plain = await new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1002').open();
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1002&allowWatchBookmarks=true');
    expect((await w.waitLines(2)).slice(0, 2)).toEqual([bookmark(1002), bookmark(1002)]);
    fake.setPods(podsAt(LIVES, s(12)));
    await until(() => w.events().some((e) => e.type === 'MODIFIED'));
    const after = w.events().slice(w.events().findIndex((e) => e.type === 'MODIFIED'));
    expect(after[0]).toEqual({ type: 'MODIFIED', object: pod(B, s(12), 1003) });
    expect(after.slice(1).every((e) => JSON.stringify(e) === JSON.stringify(bookmark(1003)))).toBe(true);
    // The watch without allowWatchBookmarks got the event alone.
    expect(await plain.waitLines(1)).toEqual([{ type: 'MODIFIED', object: pod(B, s(12), 1003) }]);
  });
});

describe('410 Gone', () => {
  const status = (message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Expired', code: 410 });

  it('answers an expired resourceVersion with HTTP 410 and a Status', async () => {
    const fake = await start({ keepRevisions: 2 });
    playHistory(fake, INSTANTS.slice(0, 4)); // 1001..1004; 1002..1004 kept
    const gone = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1001');
    await gone.waitEnded();
    expect(gone.status).toBe(410);
    expect(JSON.parse(gone.body)).toEqual(status('too old resource version: 1001 (1002)'));
    const kept = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1002');
    expect(await kept.waitLines(2)).toEqual([
      { type: 'MODIFIED', object: pod(B, s(12), 1003) },
      { type: 'MODIFIED', object: pod(B, s(40), 1004) },
    ]);
  });

  it('with expiredAs event, answers 200 with one ERROR event and ends the stream', async () => {
    const fake = await start({ keepRevisions: 2, expiredAs: 'event' });
    playHistory(fake, INSTANTS.slice(0, 4));
    const gone = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000&allowWatchBookmarks=true');
    await gone.waitEnded();
    expect(gone.status).toBe(200);
    expect(gone.ended).toBe('end');
    expect(gone.events()).toEqual([{ type: 'ERROR', object: status('too old resource version: 1000 (1002)') }]);
  });

  it('expireWatches makes the next watches expire, both ways, whatever their resourceVersion', async () => {
    const fake = await start();
    playHistory(fake, INSTANTS.slice(0, 1));
    fake.expireWatches(1, 'event');
    fake.expireWatches(1, 'status');
    const first = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1001');
    await first.waitEnded();
    expect([first.status, first.ended, first.events()]).toEqual([200, 'end', [{ type: 'ERROR', object: status('too old resource version: 1001 (1000)') }]]);
    const second = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1001');
    await second.waitEnded();
    expect([second.status, JSON.parse(second.body)]).toEqual([410, status('too old resource version: 1001 (1000)')]);
    const third = await new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000').waitLines(1);
    expect(third).toEqual([{ type: 'MODIFIED', object: pod(A, s(5), 1001) }]);
  });
});

describe('ends, stalls and cuts', () => {
  it('timeoutSeconds ends the stream cleanly', async () => {
    const fake = await start();
    const w = await new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000&timeoutSeconds=1').open();
    await w.waitEnded();
    expect([w.status, w.ended, w.lines]).toEqual([200, 'end', []]);
    expect(fake.openWatches).toBe(0);
  });

  it('watchTimeoutMs ends every watch without timeoutSeconds', async () => {
    const fake = await start({ watchTimeoutMs: 50 });
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000');
    await w.waitEnded();
    expect([w.status, w.ended]).toEqual([200, 'end']);
  });

  it('a stalled watch stays connected and gets nothing: no events, bookmarks or end', async () => {
    const fake = await start({ bookmarkMs: 20, watchTimeoutMs: 200 });
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000&allowWatchBookmarks=true');
    await w.waitLines(1);
    expect(fake.stallWatches()).toBe(1);
    const seen = w.lines.length;
    playHistory(fake);
    await pause(400); // past several bookmarks and the server's timeout
    expect(w.lines).toHaveLength(seen);
    expect(w.ended).toBeNull();
    expect(fake.openWatches).toBe(1);
    // A new watch is served as usual.
    expect(await new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1004').waitLines(1)).toEqual([{ type: 'DELETED', object: deleted(A, s(59), 1005, s(60)) }]);
  });

  it('dropWatches cuts the connections', async () => {
    const fake = await start();
    const w = await new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000').open();
    await until(() => fake.openWatches === 1);
    expect(fake.dropWatches()).toBe(1);
    await w.waitEnded();
    expect(w.ended).toBe('cut');
    expect(fake.openWatches).toBe(0);
  });
});

describe('simulated histories', () => {
  it('podsAt at each change instant, fed to setPods, makes one event per change of a pod', async () => {
    const lives = simulatedPodLives({ seed: 'watch', count: 30, fromMs: s(0), toMs: s(3600) });
    const instants = changeInstants(lives);
    const fake = await start({ pods: [], keepRevisions: instants.length });
    for (const t of instants) fake.setPods(podsAt(lives, t));
    // Each life: ADDED at creation (MODIFIED too when scheduled later), MODIFIED when it
    // finishes, DELETED when deleted; instants shared by two of its steps make one event.
    let expected = 0;
    for (const l of lives) expected += new Set([l.createdMs, l.scheduledMs, l.finishedMs, l.deletedMs].filter((t) => t !== null)).size;
    const w = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1000');
    const events = await w.waitLines(expected);
    expect(events).toHaveLength(expected);
    expect(events.filter((e) => e.type === 'ADDED')).toHaveLength(30);
    expect(events.filter((e) => e.type === 'DELETED')).toHaveLength(lives.filter((l) => l.deletedMs !== null).length);
    expect(events.map((e) => Number(e.object.metadata.resourceVersion))).toEqual([...events.map((e) => Number(e.object.metadata.resourceVersion))].sort((a, b) => a - b));
    expect(fake.resourceVersion).toBe(1000 + instants.length);
  });
});

describe('a simulated clock', () => {
  it("dates replies by the history's time, and a delete by the revision that made it", async () => {
    const fake = await start({ now: s(0) });
    const first = new WatchReader(fake, '/api/v1/pods');
    await first.json();
    expect(first.date).toBe('Wed, 12 Mar 2025 10:00:00 GMT');
    playHistory(fake);
    const later = new WatchReader(fake, '/api/v1/pods?watch=1&resourceVersion=1004');
    expect(await later.waitLines(1)).toEqual([{ type: 'DELETED', object: deleted(A, s(59), 1005, s(60)) }]);
    expect(later.date).toBe('Wed, 12 Mar 2025 10:01:00 GMT');
    fake.setNow(s(3600));
    const last = new WatchReader(fake, '/api/v1/namespaces');
    await last.json();
    expect(last.date).toBe('Wed, 12 Mar 2025 11:00:00 GMT');
  });
});
