import { describe, expect, it } from 'vitest';
import { DEFAULT_ATTRIBUTION, mapPod, parseAttributionSource, type AttributionConfig } from '../../src/sources/kubernetes/map.js';
import type { Pod } from '../../src/sources/kubernetes/types.js';
import { shellQuote, unattributedPods } from '../../src/sources/kubernetes/unattributed.js';

const pod = (meta: Partial<Pod['metadata']>, phase = 'Running'): Pod => ({
  metadata: { name: 'p1', namespace: 'ns', uid: 'u1', ...meta },
  spec: { nodeName: 'n1', containers: [{ name: 'c', resources: { requests: { cpu: '1' } } }] },
  status: { phase, conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2025-01-01T00:00:00Z' }] },
});

function commands(pods: Pod[], config: AttributionConfig = DEFAULT_ATTRIBUTION): string[] {
  return unattributedPods(pods, pods.map((p) => mapPod(p, config)), config).pods.flatMap((s) => s.commands);
}

describe('the commands that would attribute a pod', () => {
  it('keep the fields a JSON annotation already has, and overwrite it', () => {
    const p = pod({ annotations: { 'primehub.io/usage': '{"component":"jupyter","group":"phusers"}' } });
    // The pod has a group already: only the user is asked for.
    expect(commands([p])).toEqual([`kubectl -n ns annotate pod p1 --overwrite 'primehub.io/usage={"component":"jupyter","group":"phusers","user":"<user>"}'`]);
  });

  it('set a plain annotation, and a group source of another key in a second command', () => {
    const config: AttributionConfig = { user: [parseAttributionSource('annotation:example.org/owner')], group: [parseAttributionSource('label:team')], component: [] };
    expect(commands([pod({})], config)).toEqual(["kubectl -n ns annotate pod p1 'example.org/owner=<user>'", "kubectl -n ns label pod p1 'team=<group>'"]);
  });

  it('skip pods that hold nothing or have a user', () => {
    expect(commands([pod({}, 'Succeeded'), pod({}, 'Pending'), pod({ annotations: { 'hub.jupyter.org/username': 'ann' } })])).toHaveLength(1);
    const done = pod({ annotations: { 'hub.jupyter.org/username': 'ann' } });
    const r = unattributedPods([done], [mapPod(done, DEFAULT_ATTRIBUTION)], DEFAULT_ATTRIBUTION);
    expect(r).toEqual({ checked: 1, pods: [] });
  });
});

describe('shellQuote', () => {
  it('leaves plain words and quotes the rest, quotes included', () => {
    expect(shellQuote('jupyter-foo')).toBe('jupyter-foo');
    expect(shellQuote('a.b/c=d')).toBe('a.b/c=d');
    expect(shellQuote('x=<user>')).toBe("'x=<user>'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
  });
});
