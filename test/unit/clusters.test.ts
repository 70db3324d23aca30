import { describe, expect, it } from 'vitest';
import { bareName, clusterLabel, clusterNameFrom, clusterNameProblem, clusterOf, hostPort, qualify } from '../../src/accounting/clusters.js';
import { Reconstructor, type StoredTrack } from '../../src/accounting/reconstruct.js';
import type { SnapshotDelta } from '../../src/accounting/types.js';
import { obs, us } from '../helpers/builders.js';

/** docs/accounting.md#clusters: names, and what one cluster's snapshots and watchers say of another's allocations. */

describe('cluster names', () => {
  it('qualify namespaces and keys, and split them back', () => {
    expect(qualify('', 'default')).toBe('default');
    expect(qualify('global@10.0.0.1:4646', 'default')).toBe('global@10.0.0.1:4646/default');
    expect(clusterOf('global@10.0.0.1:4646/nomad:x')).toBe('global@10.0.0.1:4646');
    expect(bareName('global@10.0.0.1:4646/nomad:x')).toBe('nomad:x');
    expect([clusterOf('default'), bareName('default')]).toEqual(['', 'default']);
    expect(clusterLabel('')).toBe('(unnamed)');
  });

  it('are made from what a source says of itself, and checked when given', () => {
    expect(clusterNameFrom(['global', hostPort('https://nomad.example.org')])).toBe('global@nomad.example.org:443');
    expect(clusterNameFrom([null, hostPort('http://127.0.0.1:4646')])).toBe('127.0.0.1:4646');
    expect(clusterNameFrom(['arn:aws:eks:eu-west-1:123:cluster/prod'])).toBe('arn:aws:eks:eu-west-1:123:cluster-prod');
    expect(clusterNameProblem('prod-1')).toBeNull();
    expect(clusterNameProblem('a/b')).toMatch(/letters, digits/);
    expect(clusterNameProblem('')).toMatch(/letters, digits/);
  });
});

/** A delta of one cluster at `at`, listing `changed`, covering `covered` (bare names). */
function delta(cluster: string, at: string, changed: ReturnType<typeof obs>[], covered: string[], gone: string[] = []): SnapshotDelta {
  return {
    file: `${cluster}@${at}`,
    timeUs: us(at),
    covered: new Set(covered.map((n) => qualify(cluster, n))),
    failedScopes: [],
    changed,
    gone,
    queued: [],
    skips: [],
    kind: 'native',
    cluster,
  };
}

/** An observation of allocation `id` in cluster `cluster`, namespace ns1. */
const of = (cluster: string, p: Parameters<typeof obs>[0]) => {
  const o = obs(p);
  return { ...o, key: qualify(cluster, o.key), namespace: qualify(cluster, o.namespace) };
};

describe('one cluster says nothing of another', () => {
  it("an allocation listed by A's last snapshot was last seen then, whatever B's snapshots and watcher say later", () => {
    const rec = new Reconstructor();
    const x = of('A', { id: 'x', status: 'running', start: '2026-12-01T00:00:00Z' });
    rec.apply(delta('A', '2026-12-01T01:00:00Z', [x], ['ns1']));
    // B's watcher goes on to 05:00 (a line every hour): each says B's allocations held, not A's.
    for (const h of ['02', '03', '04', '05']) rec.apply(delta('B', `2026-12-01T${h}:00:00Z`, [], ['ns1']));
    const [t] = rec.tracksWithLifetime();
    expect(t!.key).toBe('A/nomad:x');
    expect(t!.lastHoldingUs).toBe(us('2026-12-01T01:00:00Z'));
    expect(rec.latestByCluster()).toEqual({ A: us('2026-12-01T01:00:00Z'), B: us('2026-12-01T05:00:00Z') });
  });

  it("B's snapshot leaves A's allocation holding; A's next snapshot that lacks it ends it between A's two", () => {
    const rec = new Reconstructor();
    const x = of('A', { id: 'x', status: 'running', start: '2026-12-01T00:00:00Z' });
    const y = of('B', { id: 'x', status: 'running', start: '2026-12-01T00:30:00Z' });
    rec.apply(delta('A', '2026-12-01T01:00:00Z', [x], ['ns1']));
    // B lists its own x (same id, same namespace name): A's x leaves the listing, not the cluster.
    rec.apply(delta('B', '2026-12-01T02:00:00Z', [y], ['ns1'], ['A/nomad:x']));
    rec.apply(delta('A', '2026-12-01T03:00:00Z', [], ['ns1']));
    const byKey = new Map(rec.tracksWithLifetime().map((t) => [t.key, t]));
    const a = byKey.get('A/nomad:x')!;
    expect([a.state, a.lastHoldingUs, a.nextUs]).toEqual(['vanished', us('2026-12-01T01:00:00Z'), us('2026-12-01T03:00:00Z')]);
    // B's x is still listed by B's latest snapshot, at 02:00, not A's 03:00.
    const b = byKey.get('B/nomad:x')!;
    expect([b.state, b.lastHoldingUs, b.startUs]).toEqual(['holding', us('2026-12-01T02:00:00Z'), us('2026-12-01T00:30:00Z')]);
  });

  it('a resumed reconstruction keeps each cluster its own last time', () => {
    const first = new Reconstructor();
    const x = of('A', { id: 'x', status: 'running', start: '2026-12-01T00:00:00Z' });
    first.apply(delta('A', '2026-12-01T01:00:00Z', [x], ['ns1']));
    first.apply(delta('B', '2026-12-01T02:00:00Z', [], ['ns1']));
    const saved: StoredTrack[] = [];
    first.flush((t, f) => saved.push({ ...t, ...f }), true);
    const again = new Reconstructor();
    again.resume(saved, us('2026-12-01T02:00:00Z'), false, first.latestByCluster());
    again.apply(delta('B', '2026-12-01T03:00:00Z', [], ['ns1']));
    expect(again.tracksWithLifetime()[0]!.lastHoldingUs).toBe(us('2026-12-01T01:00:00Z'));
  });
});
