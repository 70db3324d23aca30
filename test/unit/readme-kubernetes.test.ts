import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { readJournalFile } from '../../src/snapshots/journal.js';
import { ROOT, run, tempDir } from '../helpers/cli.js';

/** The README's Kubernetes manifests and RBAC rules must stay what the watcher needs and accepts. */

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The text of the first fenced block of `lang` after `heading`. */
function blockAfter(text: string, heading: string, lang: string): string {
  const at = text.indexOf(`\n${heading}\n`);
  expect(at, `README heading ${heading}`).toBeGreaterThan(-1);
  const m = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'm').exec(text.slice(at));
  expect(m, `a \`\`\`${lang} block after ${heading}`).not.toBeNull();
  return m![1]!;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

function manifests(): Manifest[] {
  const docs = parseAllDocuments(blockAfter(readme, '#### Running it in Kubernetes', 'yaml'));
  if (!Array.isArray(docs)) throw new Error('the manifest block is empty');
  for (const d of docs) expect(d.errors.map((e) => e.message)).toEqual([]);
  return docs.map((d) => d.toJS() as Manifest);
}

function one(all: Manifest[], kind: string): Manifest {
  const found = all.filter((m) => m.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
}

const RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] },
];

describe('README, "Running it in Kubernetes"', () => {
  it('has a Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding, PersistentVolumeClaim and Deployment', () => {
    expect(manifests().map((m) => m.kind)).toEqual(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolumeClaim', 'Deployment']);
  });

  it('grants exactly get/list/watch on pods and get/list on namespaces, to the ServiceAccount', () => {
    const all = manifests();
    const account = one(all, 'ServiceAccount');
    const role = one(all, 'ClusterRole');
    const binding = one(all, 'ClusterRoleBinding');
    expect(account.metadata).toEqual({ name: 'hourmeter', namespace: 'hourmeter' });
    expect(one(all, 'Namespace').metadata.name).toBe(account.metadata.namespace);
    expect(role.rules).toEqual(RULES);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }]);
  });

  it('shows the same rules where the watch section names its RBAC', () => {
    const section = readme.slice(readme.indexOf('\n### hourmeter watch\n'), readme.indexOf('\n#### Running it in Kubernetes\n'));
    const rules = parseAllDocuments(blockAfter(section, '#### Kubernetes', 'yaml'));
    expect(Array.isArray(rules) ? rules.map((d) => d.toJS()) : []).toEqual([{ rules: RULES }]);
  });

  it('runs one watcher, replaced by Recreate, as the ServiceAccount, on the claim mounted at /data', () => {
    const all = manifests();
    const account = one(all, 'ServiceAccount');
    const claim = one(all, 'PersistentVolumeClaim');
    const deployment = one(all, 'Deployment');
    expect(claim.metadata.namespace).toBe(account.metadata.namespace);
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(deployment.metadata.namespace).toBe(account.metadata.namespace);
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    expect(deployment.spec.template.metadata.labels).toEqual(deployment.spec.selector.matchLabels);
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(pod.containers).toHaveLength(1);
    const container = pod.containers[0];
    expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    const volume = pod.volumes.find((v: Manifest) => v.persistentVolumeClaim);
    expect(volume.persistentVolumeClaim.claimName).toBe(claim.metadata.name);
    expect(container.volumeMounts).toEqual([{ name: volume.name, mountPath: '/data' }]);
    const args: string[] = [...container.command.slice(1), ...container.args];
    expect(container.command[0]).toBe('hourmeter');
    expect(args.slice(0, 6)).toEqual(['watch', '--source', 'kubernetes', '--in-cluster', '--snapshots', '/data/snapshots']);
  });

  it("passes the watcher only flags that `hourmeter watch --help` lists, which it accepts", () => {
    const container = one(manifests(), 'Deployment').spec.template.spec.containers[0];
    const args: string[] = [...container.command.slice(1), ...container.args];
    const help = run(['watch', '--help'], { cwd: tempDir() });
    expect(help.code).toBe(0);
    const flags = args.filter((a) => a.startsWith('-'));
    expect(flags.length).toBeGreaterThan(0);
    for (const flag of flags) expect(help.stdout, flag).toMatch(new RegExp(`^ {2}(-[a-zA-Z], )?${flag}( |$)`, 'm'));
    // Outside a pod the same command line gets through option parsing and stops at the
    // in-cluster credentials it asks for.
    const r = run(args, { cwd: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('in-cluster credentials need KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT');
  });
});

describe('docs/snapshot-format.md, the Kubernetes journal lines', () => {
  it('shows a pod deleted while running as a valid `lost` line, dated by its delete', () => {
    const markdown = readFileSync(join(ROOT, 'docs/snapshot-format.md'), 'utf8');
    const example = blockAfter(markdown, 'A pod deleted while running, as the line of its `DELETED` event:', 'jsonl').trim();
    const dir = join(tempDir(), 'journal', 'kubernetes-10.96.0.1-443');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, '2026-12-05T18Z.jsonl');
    const header = { type: 'journal', at: '2026-12-05T18:00:00.000000Z', format: 'hourmeter.journal', version: 1, source: { kind: 'kubernetes', address: 'https://10.96.0.1:443', region: null } };
    writeFileSync(path, `${JSON.stringify(header)}\n${example}\n`);
    const read = readJournalFile(path);
    expect(read.problems).toEqual([]);
    expect(read.entries).toHaveLength(2);
    const line = read.entries[1]!.line as { type: string; at: string; event: string; allocation: { status: string; end: null; modified: string } };
    expect([line.type, line.event, line.allocation.status, line.allocation.end]).toEqual(['allocation', 'DELETED', 'lost', null]);
    expect(line.allocation.modified).toBe(line.at);
  });
});
